//! `weir run FILE`: start a runtime, submit the script as one job, wait, report — with what
//! the command adds around a job: progress lines, OpenLineage run events, and a control file
//! whose appended `ALTER MODEL` lines reach the job while it runs. Baselines computed from a
//! query run first, as jobs of their own.
use std::time::{Duration, Instant};

use datafusion::arrow::datatypes::DataType;
use weir_queries::job_plan::JobPlan;
use weir_queries::plan::{PipelinePlan, ScriptPlan};

use crate::job::{JobError, PipelineMetrics, RunReport};
use crate::runtime::{Cluster, JobHandle, Runtime, RuntimeOptions};
use crate::{Error, Result};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Worker threads.
    pub workers: usize,
    /// Print progress to stderr every this often (None: quiet).
    pub progress: Option<Duration>,
    /// Run as one process of a cluster (timely's cluster mode).
    pub cluster: Option<Cluster>,
    /// A control file whose appended lines are applied while the pipelines run
    /// (`ALTER MODEL name SET VERSION 'v'`).
    pub control: Option<std::path::PathBuf>,
    /// Send OpenLineage run events to this file or `http://` URL, RUNNING ones this often.
    pub lineage: Option<(String, Duration)>,
    /// The job's name, which its nodes' ids derive from (`weir run` uses the script's file
    /// name, so a run of the same file gives the same ids).
    pub job_name: String,
    /// Durable checkpoints in a state directory (`--state-dir`).
    pub state: Option<crate::durable::Durable>,
    /// Stop gracefully at SIGTERM or SIGINT, within this long ([`crate::shutdown`]); `None`
    /// leaves signals alone (a library caller's own handling).
    pub shutdown_timeout: Option<Duration>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            workers: 1,
            progress: None,
            cluster: None,
            control: None,
            lineage: None,
            job_name: "main".into(),
            state: None,
            shutdown_timeout: None,
        }
    }
}

fn job_err(e: JobError) -> Error {
    Error::Job(e)
}

/// Runs every pipeline of `plan` to completion (bounded sources) or until failure, as one job
/// on a runtime started for it. On process `p > 0` of a cluster, runs what process 0 submits
/// and gives the report of the (last) job it ran.
pub fn run(plan: &ScriptPlan, opts: &RunOptions) -> Result<RunReport> {
    if opts.cluster.as_ref().is_some_and(|c| c.process > 0) {
        return follow(opts);
    }
    let rt = Runtime::start(&RuntimeOptions {
        workers: opts.workers,
        cluster: opts.cluster.clone(),
    })?;
    let result = run_on(&rt, plan, opts);
    rt.shutdown()?;
    result
}

/// Process `p > 0` of a cluster: runs the jobs process 0 submits (it never compiles the
/// script) until process 0 shuts the cluster down; gives the report of the last job.
pub fn follow(opts: &RunOptions) -> Result<RunReport> {
    let rt = Runtime::start(&RuntimeOptions {
        workers: opts.workers,
        cluster: opts.cluster.clone(),
    })?;
    let jobs = rt.shutdown()?;
    match jobs.into_iter().last() {
        Some((_, r)) => r.map_err(job_err),
        None => Err(Error::Request("process 0 submitted no job".into())),
    }
}

/// Runs `plan` as one job on `rt`, with progress, lineage events and a control file.
pub fn run_on(rt: &Runtime, plan: &ScriptPlan, opts: &RunOptions) -> Result<RunReport> {
    let values = baselines(rt, plan)?;
    if let Some(d) = &opts.state {
        let control = std::sync::Arc::new(crate::checkpoint::control::Control::default());
        if let Some(t) = opts.shutdown_timeout {
            let c = control.clone();
            crate::shutdown::on_signal(move || c.stop(true), t);
        }
        let (report, stats) =
            crate::durable::run_controlled(rt, plan, &opts.job_name, values, d, &control)?;
        eprintln!(
            "checkpoints: {} taken{}, the last in {} ms with {} state rows ({} bytes), the job paused {} ms for it",
            stats.taken,
            stats
                .restored
                .map(|e| format!(
                    ", continued from checkpoint {e} (read in {} ms)",
                    stats.restore.as_millis()
                ))
                .unwrap_or_default(),
            stats.last_duration.as_millis(),
            stats.last_rows,
            stats.last_bytes,
            stats.last_pause.as_millis()
        );
        return Ok(report);
    }
    let started = Instant::now();
    let job = rt.submit(&JobPlan::new(&opts.job_name, plan.clone()), values)?;
    if let Some(t) = opts.shutdown_timeout {
        let j = job.clone();
        crate::shutdown::on_signal(move || j.stop(crate::runtime::StopMode::Drain), t);
    }
    let mut threads = Vec::new();
    if let Some(every) = opts.progress {
        let j = job.clone();
        threads.push(crate::threads::every(every, move || progress(&j, started)));
    }
    if let Some(path) = opts.control.clone() {
        threads.push(crate::control::spawn(path, job.clone()));
    }
    let emitter = match &opts.lineage {
        None => None,
        Some((target, every)) => {
            let e = crate::openlineage::Emitter::new(target, plan).map_err(Error::Request)?;
            let e = std::sync::Arc::new(e);
            e.emit("START", None, &counts(&job.metrics()));
            let (e2, j) = (e.clone(), job.clone());
            threads.push(crate::threads::every(*every, move || {
                e2.emit("RUNNING", None, &counts(&j.metrics()))
            }));
            Some(e)
        }
    };
    let result = job.wait();
    for (stop, handle) in threads {
        let _ = stop.send(());
        let _ = handle.join();
    }
    if let Some(e) = &emitter {
        let (kind, msg) = match &result {
            Ok(_) => ("COMPLETE", None),
            Err(err) => ("FAIL", Some(err.to_string())),
        };
        e.emit(kind, msg.as_deref(), &counts(&job.metrics()));
    }
    let mut report = result.map_err(job_err)?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// The values of the script's baselines that are computed from a query, each by a job of its
/// own on `rt`.
pub fn baselines(rt: &Runtime, plan: &ScriptPlan) -> Result<Vec<(String, Vec<f64>)>> {
    let mut values = Vec::new();
    for b in &plan.baselines {
        if let Some(q) = &b.query {
            values.push((b.name.clone(), baseline_values(rt, plan, &b.name, q)?));
        }
    }
    Ok(values)
}

/// Rows in and out so far, per pipeline.
fn counts(metrics: &[PipelineMetrics]) -> crate::openlineage::Counts {
    metrics
        .iter()
        .map(|m| (m.name.clone(), (m.rows_in, m.rows_out)))
        .collect()
}

/// Prints each pipeline's counters.
fn progress(job: &JobHandle, started: Instant) {
    for m in job.metrics() {
        eprintln!(
            "[{:>6.1}s] {}: in {} out {} late {} dead-letter {} lag {}",
            started.elapsed().as_secs_f64(),
            m.name,
            m.rows_in,
            m.rows_out,
            m.late,
            m.dead_letter,
            m.lag
        );
    }
}

/// Runs a baseline's query as a job of its own until its `LIMIT` of rows arrived; gives their
/// values.
fn baseline_values(
    rt: &Runtime,
    plan: &ScriptPlan,
    name: &str,
    query: &PipelinePlan,
) -> Result<Vec<f64>> {
    let sub = ScriptPlan {
        sources: plan.sources.clone(),
        sinks: Vec::new(),
        pipelines: vec![query.clone()],
        models: plan.models.clone(),
        baselines: Vec::new(),
    };
    let sub = JobPlan::new(&format!("baseline-{name}"), sub);
    let report = rt
        .submit_as(&sub, Vec::new(), true, Default::default())?
        .wait()
        .map_err(job_err)?;
    let err = |message: String| Error::Runtime {
        pipeline: query.name.clone(),
        message,
    };
    let limit = query.limit.unwrap_or(u64::MAX) as usize;
    let mut values = Vec::new();
    for b in report
        .pipelines
        .first()
        .map(|p| p.results.as_slice())
        .unwrap_or(&[])
    {
        let col = datafusion::arrow::compute::cast(b.column(0), &DataType::Float64)
            .map_err(|e| err(e.to_string()))?;
        let col = col
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Float64Array>()
            .ok_or_else(|| err("a baseline query gives one numeric column".into()))?;
        values.extend(col.iter().flatten());
    }
    values.truncate(limit);
    if values.len() < 10 {
        return Err(err(format!(
            "baseline '{name}' got {} values; at least 10 are needed",
            values.len()
        )));
    }
    Ok(values)
}
