//! The jobs a process knows, and one job's state there: its status, its resources (opened once
//! per process by the first worker that sees the job), how many of the process's workers
//! still run it, and its result once the last of them is done. [`JobHandle`] is the caller's
//! view of a job submitted to this process's runtime.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::command::{Command, StopMode};
use crate::job::snapshot::Cut;
use crate::job::{JobError, JobResources, PipelineMetrics, RunReport};

/// Where a job stands.
#[derive(Debug, Clone, PartialEq)]
pub enum JobStatus {
    /// Submitted; workers are building it.
    Starting,
    /// Its dataflow runs on every worker.
    Running,
    /// Told to stop; sources have stopped, open windows are closing.
    Stopping,
    /// Every source ended and every output is written.
    Finished,
    /// Stopped by a person or the runtime's shutdown.
    Stopped,
    /// Stopped at a cut, its state snapshotted ([`JobHandle::snapshot`]).
    Suspended,
    /// Ended by a failure.
    Failed(JobError),
}

impl JobStatus {
    /// Whether the job has ended.
    pub fn is_done(&self) -> bool {
        matches!(
            self,
            JobStatus::Finished | JobStatus::Stopped | JobStatus::Suspended | JobStatus::Failed(_)
        )
    }

    /// The status's name (`running`, `failed`, …).
    pub fn name(&self) -> &'static str {
        match self {
            JobStatus::Starting => "starting",
            JobStatus::Running => "running",
            JobStatus::Stopping => "stopping",
            JobStatus::Finished => "finished",
            JobStatus::Stopped => "stopped",
            JobStatus::Suspended => "suspended",
            JobStatus::Failed(_) => "failed",
        }
    }
}

type Opened = Option<Result<Arc<JobResources>, JobError>>;

/// One job, in this process.
pub struct JobState {
    /// The job's id.
    pub id: u64,
    /// A job the runtime runs for itself (a baseline's query), left out of a process's list.
    pub internal: bool,
    status: Mutex<JobStatus>,
    changed: Condvar,
    opened: Mutex<Opened>,
    error: Mutex<Option<JobError>>,
    remaining: AtomicUsize,
    result: Mutex<Option<Result<RunReport, JobError>>>,
    /// Whether a worker of this process has sequenced the job's failure.
    pub announced: AtomicBool,
    stop_asked: AtomicBool,
    /// Where to suspend, what the job's operators snapshot, what it restores.
    cut: Arc<Cut>,
}

impl JobState {
    fn new(id: u64, internal: bool, workers: usize, cut: Arc<Cut>) -> Self {
        JobState {
            cut,
            id,
            internal,
            status: Mutex::new(JobStatus::Starting),
            changed: Condvar::new(),
            opened: Mutex::new(None),
            error: Mutex::new(None),
            remaining: AtomicUsize::new(workers),
            result: Mutex::new(None),
            announced: AtomicBool::new(false),
            stop_asked: AtomicBool::new(false),
        }
    }

    /// The job's resources in this process, opened by the first caller.
    pub fn open(
        &self,
        plan: &str,
        baselines: &[(String, Vec<f64>)],
        process: usize,
    ) -> Result<Arc<JobResources>, JobError> {
        let mut opened = self.opened.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = opened.as_ref() {
            return r.clone();
        }
        let r = weir_queries::job_plan::JobPlan::from_json(plan)
            .map_err(|e| JobError::build(self.id, "", e))
            .and_then(|plan| {
                JobResources::open(self.id, plan, process, baselines, self.cut.clone())
            })
            .map(Arc::new);
        *opened = Some(r.clone());
        r
    }

    /// The job's resources, if they opened.
    pub fn resources(&self) -> Option<Arc<JobResources>> {
        let opened = self.opened.lock().ok()?;
        opened.as_ref().and_then(|r| r.as_ref().ok().cloned())
    }

    fn set_status(&self, s: JobStatus) {
        if let Ok(mut st) = self.status.lock() {
            if !st.is_done() {
                *st = s;
            }
        }
        self.changed.notify_all();
    }

    /// The job's dataflow is installed.
    pub fn running(&self) {
        if !self.stop_asked.load(Ordering::Relaxed) {
            self.set_status(JobStatus::Running);
        }
    }

    /// The job is told to stop.
    pub fn stopping(&self, mode: StopMode) {
        self.stop_asked.store(true, Ordering::Relaxed);
        match mode {
            StopMode::Drain => {
                if let Some(r) = self.resources() {
                    r.stop.store(true, Ordering::Relaxed);
                }
            }
            StopMode::Suspend => self.cut.ask(weir_operators::EventTime::MIN),
            StopMode::Cancel => {}
        }
        self.set_status(JobStatus::Stopping);
    }

    /// Records the job's failure (the first one wins).
    pub fn failed(&self, e: JobError) {
        if let Ok(mut err) = self.error.lock() {
            err.get_or_insert(e);
        }
    }

    /// One of this process's workers is done with the job; the last one closes its outputs
    /// and records the result.
    pub fn worker_done(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let error = self.error.lock().ok().and_then(|e| e.clone());
        let closed = self.resources().map(|r| r.close());
        let result = match (error, closed) {
            (Some(e), _) => Err(e),
            (None, Some(r)) => r,
            (None, None) => Err(JobError::build(self.id, "", "the job did not open")),
        };
        let status = match &result {
            Err(e) => JobStatus::Failed(e.clone()),
            Ok(_) if self.cut.suspended() => JobStatus::Suspended,
            Ok(_) if self.stop_asked.load(Ordering::Relaxed) => JobStatus::Stopped,
            Ok(_) => JobStatus::Finished,
        };
        if let Ok(mut r) = self.result.lock() {
            *r = Some(result);
        }
        self.set_status(status);
    }

    /// The job's status now.
    pub fn status(&self) -> JobStatus {
        self.status
            .lock()
            .map(|s| s.clone())
            .unwrap_or(JobStatus::Starting)
    }

    /// Waits for the job to end (at most `timeout`, if given); gives its result.
    pub fn wait(&self, timeout: Option<Duration>) -> Option<Result<RunReport, JobError>> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        while !st.is_done() {
            st = match deadline {
                None => self.changed.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    self.changed
                        .wait_timeout(st, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
        drop(st);
        self.result.lock().ok().and_then(|r| r.clone())
    }
}

/// Every job this process has seen.
pub struct Jobs {
    map: Mutex<HashMap<u64, Arc<JobState>>>,
    workers: usize,
}

impl Jobs {
    /// No jobs yet; `workers` is the number of this process's workers.
    pub fn new(workers: usize) -> Self {
        Jobs {
            map: Mutex::new(HashMap::new()),
            workers,
        }
    }

    /// Job `id`, made if this process has not seen it.
    pub fn get_or_insert(&self, id: u64, internal: bool) -> Arc<JobState> {
        self.get_or_insert_with(id, internal, Cut::default())
    }

    /// Job `id`, made with `cut` if this process has not seen it.
    pub fn get_or_insert_with(&self, id: u64, internal: bool, cut: Cut) -> Arc<JobState> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id)
            .or_insert_with(|| Arc::new(JobState::new(id, internal, self.workers, Arc::new(cut))))
            .clone()
    }

    /// Job `id`, if this process has seen it.
    pub fn get(&self, id: u64) -> Option<Arc<JobState>> {
        self.map.lock().ok()?.get(&id).cloned()
    }

    /// Every job, in id order.
    pub fn all(&self) -> Vec<Arc<JobState>> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = map.values().cloned().collect();
        v.sort_by_key(|j| j.id);
        v
    }
}

/// A job submitted to the runtime.
#[derive(Clone)]
pub struct JobHandle {
    state: Arc<JobState>,
    inbox: Sender<Command>,
}

impl JobHandle {
    pub(crate) fn new(state: Arc<JobState>, inbox: Sender<Command>) -> Self {
        JobHandle { state, inbox }
    }

    /// The job's id.
    pub fn id(&self) -> u64 {
        self.state.id
    }

    /// Where the job stands.
    pub fn status(&self) -> JobStatus {
        self.state.status()
    }

    /// Each pipeline's counters now (empty until the job has opened).
    pub fn metrics(&self) -> Vec<PipelineMetrics> {
        self.state
            .resources()
            .map(|r| r.metrics())
            .unwrap_or_default()
    }

    /// Stops the job (on every worker of every process).
    pub fn stop(&self, mode: StopMode) {
        let _ = self.inbox.send(Command::Stop {
            job: self.state.id,
            mode,
        });
    }

    /// Applies `ALTER MODEL name SET VERSION 'v'` to this job's catalog; says what it did.
    pub fn alter_model(&self, statement: &str) -> crate::Result<String> {
        let (model, version) = weir_queries::parse_alter_model(statement)?;
        let res = self.opened().ok_or_else(|| {
            crate::Error::Request(format!("job {} is not running", self.state.id))
        })?;
        // Applied here at once (this process's workers see it at their next batch), and on
        // every other process through the sequencer.
        res.models
            .set_current(&model, &version)
            .map_err(|e| crate::Error::Request(e.to_string()))?;
        let done = format!("model {model} now at version {version}");
        let job = self.state.id;
        let _ = self.inbox.send(Command::AlterModel {
            job,
            model,
            version,
        });
        Ok(done)
    }

    /// Loads another version of a model the job declares into its catalog (this process's;
    /// a server runs its jobs in one process). Not current until switched to.
    pub fn add_model_version(&self, def: &weir_queries::plan::ModelDef) -> crate::Result<()> {
        let res = self.opened().ok_or_else(|| {
            crate::Error::Request(format!("job {} is not running", self.state.id))
        })?;
        res.models
            .declare(&def.name, &def.version, &def.path, def.features)
            .map(|_| ())
            .map_err(|e| crate::Error::Request(e.to_string()))
    }

    /// The job's resources in this process, once its workers have opened it (`None` if it
    /// ended without).
    fn opened(&self) -> Option<std::sync::Arc<JobResources>> {
        loop {
            if let Some(r) = self.state.resources() {
                return Some(r);
            }
            if self.state.status() != JobStatus::Starting {
                return None;
            }
            let _ = self.state.wait(Some(Duration::from_millis(2)));
        }
    }

    /// The snapshot of a job that was suspended ([`StopMode::Suspend`], or submitted with a
    /// cut) and has ended; `None` for a job that ended otherwise.
    pub fn snapshot(&self) -> Option<crate::job::JobSnapshot> {
        (self.state.status() == JobStatus::Suspended).then(|| self.state.cut.taken())
    }

    /// Waits for the job to end; gives its report or its error.
    pub fn wait(&self) -> Result<RunReport, JobError> {
        self.state
            .wait(None)
            .unwrap_or_else(|| Err(JobError::build(self.state.id, "", "the job has no result")))
    }

    /// Waits at most `timeout` for the job to end.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<RunReport, JobError>> {
        self.state.wait(Some(timeout))
    }
}
