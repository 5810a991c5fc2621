//! The handle a caller keeps on a checkpointed run (`durable::run_controlled`): the job that
//! runs now (a run is a chain of jobs, one per checkpoint), the counters of the jobs that
//! ended plus the live ones, the checkpoints' statistics, and a stop that ends the run at a
//! last checkpoint — what `weir serve` shows and does for a pipeline.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::durable::CheckpointStats;
use crate::job::recent::RecentDeadLetters;
use crate::job::report::sum_counters;
use crate::job::{JobError, PipelineMetrics, RunReport};
use crate::runtime::{JobHandle, StopMode};

/// Watches and stops a run that is a chain of jobs.
#[derive(Default)]
pub struct Control {
    stop: AtomicBool,
    /// The job that runs now; `None` between two jobs and after the last.
    current: Mutex<Option<JobHandle>>,
    /// The counters of the jobs that ended.
    ended: Mutex<Vec<PipelineMetrics>>,
    stats: Mutex<CheckpointStats>,
    /// Model versions switched during the run (model → version): every later job of the run
    /// starts with them current (a checkpointed run's next job builds its models from the
    /// plan again).
    alters: Mutex<Vec<(String, String)>>,
    /// Model versions added during the run (uploaded to the server): declared in the job
    /// running now and in every later job of the run.
    added: Mutex<Vec<weir_queries::plan::ModelDef>>,
    /// The newest dead letters of every job of the run.
    recent_dead: Arc<RecentDeadLetters>,
}

impl Control {
    /// Asks the run to end: a checkpointed run suspends its job at a last checkpoint, a plain
    /// one drains (its sources stop, open windows close).
    pub fn stop(&self, checkpointed: bool) {
        self.stop.store(true, Ordering::SeqCst);
        if !checkpointed {
            if let Some(j) = self.job() {
                j.stop(StopMode::Drain);
            }
        }
    }

    /// Whether [`Control::stop`] was called.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The job that runs now.
    pub fn job(&self) -> Option<JobHandle> {
        self.current.lock().ok().and_then(|c| c.clone())
    }

    /// Whether a job of the run has run: one ended, or the current one is running (a run
    /// between two of its jobs still runs).
    pub fn started(&self) -> bool {
        let ended = self.ended.lock().is_ok_and(|e| !e.is_empty());
        ended
            || self
                .job()
                .is_some_and(|j| j.status() == crate::runtime::JobStatus::Running)
    }

    /// The newest dead letters of the run (every job of it keeps them here).
    pub fn recent_dead(&self) -> Arc<RecentDeadLetters> {
        self.recent_dead.clone()
    }

    /// The run's checkpoints so far.
    pub fn checkpoints(&self) -> CheckpointStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Each pipeline's counters over the whole run: the jobs that ended and the one running.
    pub fn metrics(&self) -> Vec<PipelineMetrics> {
        let current = self.current.lock();
        let mut total = self.ended.lock().map(|e| e.clone()).unwrap_or_default();
        let live = match current.as_ref().ok().and_then(|c| c.as_ref()) {
            Some(j) => j.metrics(),
            None => Vec::new(),
        };
        if total.is_empty() {
            return live;
        }
        for (t, m) in total.iter_mut().zip(live) {
            add_metrics(t, m);
        }
        total
    }

    /// Applies `ALTER MODEL …` to the job running now and to every later job of the run.
    pub fn alter_model(&self, statement: &str) -> crate::Result<String> {
        let (model, version) = weir_queries::parse_alter_model(statement)?;
        let done = match self.job() {
            Some(j) => j.alter_model(statement)?,
            None => format!("model {model} at version {version} from the next job"),
        };
        if let Ok(mut a) = self.alters.lock() {
            a.retain(|(m, _)| *m != model);
            a.push((model, version));
        }
        Ok(done)
    }

    /// Adds a version of a model the plan declares: to the job running now (loaded into its
    /// catalog) and to every later job of the run. Not current until switched to.
    pub fn add_version(&self, def: weir_queries::plan::ModelDef) -> crate::Result<()> {
        // Recorded first: a job that starts after this reads it from the plan.
        if let Ok(mut a) = self.added.lock() {
            a.retain(|m| !(m.name == def.name && m.version == def.version));
            a.push(def.clone());
        }
        match self.job() {
            Some(j) if !j.status().is_done() => j.add_model_version(&def),
            _ => Ok(()),
        }
    }

    /// `plan` with the run's added model versions declared and its switched ones current.
    pub(crate) fn with_versions(
        &self,
        plan: &weir_queries::job_plan::JobPlan,
    ) -> weir_queries::job_plan::JobPlan {
        let alters = self.alters.lock().map(|a| a.clone()).unwrap_or_default();
        let added = self.added.lock().map(|a| a.clone()).unwrap_or_default();
        let mut plan = plan.clone();
        let models = &mut plan.script.models;
        for def in added {
            let known = models.iter().any(|m| m.name == def.name);
            let has = models
                .iter()
                .any(|m| m.name == def.name && m.version == def.version);
            if known && !has {
                models.push(weir_queries::plan::ModelDef {
                    current: false,
                    ..def
                });
            }
        }
        for (model, version) in alters {
            for m in plan.script.models.iter_mut().filter(|m| m.name == model) {
                m.current = m.version == version;
            }
        }
        plan
    }

    /// `job` is the one that runs now. A stop asked before it started reaches it.
    pub(crate) fn running(&self, job: &JobHandle) {
        if let Ok(mut c) = self.current.lock() {
            *c = Some(job.clone());
        }
    }

    /// Waits up to `timeout` for `job` to end, less if the run is told to stop (`None`:
    /// it still runs).
    pub(crate) fn wait(
        &self,
        job: &JobHandle,
        timeout: Duration,
    ) -> Option<Result<RunReport, JobError>> {
        let until = Instant::now() + timeout;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let slice = left.min(Duration::from_millis(50));
            if let Some(r) = job.wait_timeout(slice) {
                return Some(r);
            }
            if self.stopping() || left.is_zero() {
                return None;
            }
        }
    }

    /// The job that ran has ended with `part`: its counters join the run's.
    pub(crate) fn add(&self, part: &RunReport) {
        let mut current = self.current.lock();
        if let Ok(mut ended) = self.ended.lock() {
            let more = part.pipelines.iter().map(|p| PipelineMetrics {
                name: p.name.clone(),
                rows_in: p.rows_in,
                rows_out: p.rows_out,
                late: p.late,
                dead_letter: p.dead_letter,
                lag: lag_of(&p.source_metrics),
                source: p.source_metrics.clone(),
                sink: p.sink_metrics.clone(),
                watermark: p.watermark,
                operators: p.operators.clone(),
            });
            if ended.is_empty() {
                ended.extend(more);
            } else {
                for (t, m) in ended.iter_mut().zip(more) {
                    add_metrics(t, m);
                }
            }
        }
        if let Ok(c) = current.as_mut() {
            **c = None;
        }
    }

    /// The run's checkpoint statistics are now `stats`.
    pub(crate) fn stats(&self, stats: &CheckpointStats) {
        if let Ok(mut s) = self.stats.lock() {
            *s = stats.clone();
        }
    }
}

fn lag_of(counters: &[(&'static str, u64)]) -> u64 {
    counters
        .iter()
        .find(|(n, _)| *n == "lag")
        .map_or(0, |(_, v)| *v)
}

/// Adds a later job's counters to `total` (the lag is a reading: the latest wins).
fn add_metrics(total: &mut PipelineMetrics, more: PipelineMetrics) {
    total.rows_in += more.rows_in;
    total.rows_out += more.rows_out;
    total.late += more.late;
    total.dead_letter += more.dead_letter;
    total.lag = more.lag;
    total.watermark = total.watermark.max(more.watermark);
    crate::job::report::sum_operators(&mut total.operators, more.operators);
    sum_counters(&mut total.source, more.source);
    sum_counters(&mut total.sink, more.sink);
}
