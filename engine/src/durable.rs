//! `weir run FILE --state-dir DIR [--checkpoint-every 1s] [--reset]`: the script's job with
//! durable checkpoints. Every interval the job is suspended at once (a consistent cut:
//! `job/snapshot.rs`), its snapshot written to the state directory (`checkpoint/store.rs`) and
//! a job of the same plan continued from it; started again on the same directory — after
//! kill -9 or a power cut — weir continues from the newest complete checkpoint: sources seek
//! to its positions, operators take its state, file sinks drop what was written after it. A
//! changed plan for the same job name is refused unless `--reset` discards the state.
//!
//! The cut stops the job for as long as it takes to snapshot its state in memory and start the
//! next one; the checkpoint is written and fsynced on another thread while the next job runs
//! (`checkpoint/background.rs`), and what may only follow a durable checkpoint waits for its
//! gate. (Letting rows through the cut itself would need a frontier barrier: not yet.)
use std::path::PathBuf;
use std::time::{Duration, Instant};

use weir_queries::job_plan::JobPlan;
use weir_queries::plan::ScriptPlan;

use crate::checkpoint::background::{Background, Written};
pub use crate::checkpoint::control::Control;
use crate::checkpoint::Store;
use crate::job::report::sum_counters;
use crate::job::{JobSnapshot, RunReport};
use crate::runtime::{Runtime, StopMode, SubmitOptions};
use crate::{Error, Result};
use weir_connectors::gate::Gate;

/// Where and how often to checkpoint.
#[derive(Debug, Clone)]
pub struct Durable {
    /// The state directory.
    pub dir: PathBuf,
    /// Time between checkpoints.
    pub every: Duration,
    /// Discard the job's state first.
    pub reset: bool,
}

/// What the checkpoints of a run did.
#[derive(Debug, Clone, Default)]
pub struct CheckpointStats {
    /// Checkpoints written.
    pub taken: u64,
    /// The checkpoint restored at the start (its epoch), if any.
    pub restored: Option<u64>,
    /// The last checkpoint's time from asking the job to suspend until it was durable.
    pub last_duration: Duration,
    /// The last cut's pause: from asking the job to suspend until the job continuing it was
    /// started (the checkpoint is written meanwhile, on another thread).
    pub last_pause: Duration,
    /// The last checkpoint's state rows.
    pub last_rows: usize,
    /// The last checkpoint's size on disk.
    pub last_bytes: u64,
    /// Time to read the checkpoint restored at the start.
    pub restore: Duration,
}

/// Counts a checkpoint that became durable.
fn record(stats: &mut CheckpointStats, done: Option<Written>) {
    if let Some(w) = done {
        stats.taken += 1;
        stats.last_bytes = w.bytes;
        stats.last_rows = w.rows;
        stats.last_duration = w.took;
    }
}

fn ckpt_err(e: crate::checkpoint::CheckpointError) -> Error {
    Error::Request(e.to_string())
}

/// Adds `more`'s counters and rows to `total`, pipeline by pipeline.
fn add(total: &mut Option<RunReport>, more: RunReport) {
    let Some(t) = total else {
        *total = Some(more);
        return;
    };
    for (a, b) in t.pipelines.iter_mut().zip(more.pipelines) {
        a.rows_in += b.rows_in;
        a.rows_out += b.rows_out;
        a.late += b.late;
        a.dead_letter += b.dead_letter;
        a.results.extend(b.results);
        sum_counters(&mut a.source_metrics, b.source_metrics);
        sum_counters(&mut a.sink_metrics, b.sink_metrics);
    }
}

/// Refuses a plan with a stream source that cannot continue from a position (a table is read
/// again from its start, so any table will do).
fn resumable(plan: &ScriptPlan) -> Result<()> {
    let mut read: std::collections::BTreeSet<&str> =
        plan.pipelines.iter().map(|p| p.source.as_str()).collect();
    for st in plan.pipelines.iter().flat_map(|p| &p.stages) {
        if let weir_queries::plan::OperatorSpec::IntervalJoin { right, .. } = &st.op {
            read.insert(right.source.as_str());
        }
    }
    for s in plan.sources.iter().filter(|s| s.table.is_none()) {
        if !read.contains(s.name.as_str()) {
            continue;
        }
        let why = match weir_connectors::registry().source_spec(&s.connector) {
            Some(spec) => spec.resumable.check(&s.options),
            None => Err("it is not a known connector".into()),
        };
        if let Err(why) = why {
            return Err(Error::Request(format!(
                "--state-dir: source '{}' ({}) cannot continue from a checkpoint: {why}; or run it without --state-dir",
                s.name, s.connector
            )));
        }
    }
    Ok(())
}

/// Runs `plan` as job `name` on `rt` with checkpoints in `d`; `values` are the baselines
/// computed from queries.
pub fn run(
    rt: &Runtime,
    plan: &ScriptPlan,
    name: &str,
    values: Vec<(String, Vec<f64>)>,
    d: &Durable,
) -> Result<(RunReport, CheckpointStats)> {
    run_controlled(rt, plan, name, values, d, &Control::default())
}

/// Whether every stream source `plan` reads can continue from a checkpoint (`Err` says which
/// cannot, and why).
pub fn check_resumable(plan: &ScriptPlan) -> Result<()> {
    resumable(plan)
}

/// [`run`], with `control` to watch the job that runs now and to stop it at a last
/// checkpoint ([`Control::stop`]): a run started again on the same directory continues there.
pub fn run_controlled(
    rt: &Runtime,
    plan: &ScriptPlan,
    name: &str,
    values: Vec<(String, Vec<f64>)>,
    d: &Durable,
    control: &Control,
) -> Result<(RunReport, CheckpointStats)> {
    resumable(plan)?;
    let graph = JobPlan::new(name, plan.clone());
    let text = graph.to_json().map_err(Error::Request)?;
    let store = Store::open(&d.dir, name, &text).map_err(ckpt_err)?;
    if d.reset {
        store.reset().map_err(ckpt_err)?;
    }
    let mut stats = CheckpointStats::default();
    let mut restore: Option<JobSnapshot> = None;
    let mut epoch = 1;
    let loading = Instant::now();
    if let Some(l) = store.load().map_err(ckpt_err)? {
        for s in &l.skipped {
            eprintln!("weir: skipped a damaged checkpoint: {s}");
        }
        stats.restored = Some(l.epoch);
        epoch = l.epoch + 1;
        restore = Some(l.snapshot);
        stats.restore = loading.elapsed();
    }
    let started = Instant::now();
    let mut total = None;
    // Without a checkpoint, the first is taken before any row is read: the sources' starting
    // positions (an MQTT archive's end, say). Whatever a source takes in after it — and may
    // acknowledge to a broker — a restart then finds after a checkpoint, never before the first.
    let mut fresh = restore.is_none();
    // A job whose sources made no progress between two cuts waits twice as long before the
    // next (up to 30 s): one that needs longer to start than the interval, or to end at the
    // end of a bounded input, is not cut over and over before it gets there.
    let mut wait = d.every;
    // A checkpoint loaded from disk is durable; each one taken here is once its write is done.
    let mut durable = Gate::opened();
    let mut writer = Background::new(store.clone());
    let mut paused: Option<Instant> = None;
    loop {
        let before = restore.as_ref().map(|r| r.sources.clone());
        let opts = SubmitOptions {
            suspend_at: fresh.then_some(weir_operators::EventTime::MIN),
            restore: restore.take(),
            checkpointed: true,
            state_dir: Some(store.dir().to_path_buf()),
            durable: Some(durable.clone()),
            recent_dead: Some(control.recent_dead()),
        };
        let this_wait = if fresh { Duration::ZERO } else { wait };
        let first = std::mem::take(&mut fresh);
        let job = rt.submit_with(&control.with_versions(&graph), values.clone(), opts)?;
        control.running(&job);
        if let Some(p) = paused.take() {
            stats.last_pause = p.elapsed();
        }
        let ended = control.wait(&job, this_wait);
        let asked = Instant::now();
        let part = match ended {
            Some(done) => done.map_err(Error::Job)?,
            None => {
                job.stop(StopMode::Suspend);
                job.wait().map_err(Error::Job)?
            }
        };
        control.add(&part);
        add(&mut total, part);
        let Some(snap) = job.snapshot() else {
            // It finished before the cut.
            break;
        };
        durable = Gate::default();
        let done = writer
            .start(epoch, snap.clone(), durable.clone(), asked)
            .map_err(ckpt_err)?;
        record(&mut stats, done);
        if first || control.stopping() {
            // Nothing before it to fall back to: the first checkpoint is on disk before any
            // source reads (and acknowledges) a message. A run told to stop ends on disk.
            record(&mut stats, writer.finish().map_err(ckpt_err)?);
        }
        paused = Some(asked);
        epoch += 1;
        wait = match before.as_ref() == Some(&snap.sources) {
            true => (wait * 2).min(Duration::from_secs(30).max(d.every)),
            false => d.every,
        };
        restore = Some(snap);
        control.stats(&stats);
        if control.stopping() {
            break;
        }
    }
    record(&mut stats, writer.finish().map_err(ckpt_err)?);
    control.stats(&stats);
    let mut report = total.ok_or_else(|| Error::Request("the job gave no report".into()))?;
    report.elapsed = started.elapsed();
    Ok((report, stats))
}
