//! The runtime: timely workers started once (`--workers` threads, or one process of a cluster)
//! that take jobs while others run. Entry point: [`Runtime::start`], then
//! [`Runtime::submit`] → [`JobHandle`] (`status`, `metrics`, `stop`, `alter_model`, `wait`).
//!
//! Commands ([`command::Command`]) reach every worker of every process in one order through
//! timely's `Sequencer`; process 0 compiles and submits, the other processes never see SQL, only
//! the plan. A job's failure — an error or a panic in any operator on any worker — ends that
//! job with its [`JobError`]; other jobs keep running.
pub mod command;
pub mod jobs;
mod worker;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};

use timely::WorkerConfig;
use weir_queries::job_plan::JobPlan;

pub use command::{Command, StopMode};
pub use jobs::{JobHandle, JobState, JobStatus, Jobs};

use crate::job::snapshot::Cut;
use crate::job::{JobError, RunReport};
use crate::{Error, Result};

/// This process's place in a cluster of weir processes.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// This process's index.
    pub process: usize,
    /// `host:port` of every process, in process order.
    pub addresses: Vec<String>,
}

/// How to start a runtime.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Worker threads in this process.
    pub workers: usize,
    /// Run as one process of a cluster (timely's cluster mode).
    pub cluster: Option<Cluster>,
}

/// Long-lived workers that run jobs.
pub struct Runtime {
    inbox: Sender<Command>,
    jobs: Arc<Jobs>,
    guards: Mutex<Option<timely::communication::WorkerGuards<()>>>,
    next: AtomicU64,
    process: usize,
    processes: usize,
}

/// How to submit a job beyond its plan.
#[derive(Debug, Default)]
pub struct SubmitOptions {
    /// Suspend the job at this event time: its sources stop before their first row at or
    /// after it (plus their watermark delay) and it ends with a snapshot.
    pub suspend_at: Option<weir_operators::EventTime>,
    /// Continue from this snapshot (of a suspended job of the same plan).
    pub restore: Option<crate::job::JobSnapshot>,
    /// The job keeps durable checkpoints: its sources commit progress (Kafka offsets to the
    /// group) only for completed checkpoints.
    pub checkpointed: bool,
    /// The job's directory in the state dir: sinks that stage their output until a
    /// checkpoint completes (Kafka `delivery = 'exactly_once'`) keep it under `sinks/`.
    pub state_dir: Option<std::path::PathBuf>,
    /// Opened once the snapshot in `restore` is durable (checkpoints written while the next
    /// job runs): what may only follow a durable checkpoint waits for it.
    pub durable: Option<weir_connectors::gate::Gate>,
    /// Where the job keeps the newest dead letters (a run's jobs share one).
    pub recent_dead: Option<Arc<crate::job::recent::RecentDeadLetters>>,
}

impl Runtime {
    /// Starts the workers.
    pub fn start(opts: &RuntimeOptions) -> Result<Runtime> {
        let workers = opts.workers.max(1);
        let process = opts.cluster.as_ref().map(|c| c.process).unwrap_or(0);
        let config = match &opts.cluster {
            None => timely::Config::process(workers),
            Some(c) => timely::Config {
                communication: timely::CommunicationConfig::Cluster {
                    threads: workers,
                    process: c.process,
                    addresses: c.addresses.clone(),
                    report: false,
                    zerocopy: false,
                },
                worker: WorkerConfig::default(),
            },
        };
        let (inbox, rx) = channel();
        // Only worker 0 of process 0 sequences the caller's commands.
        let rx = Arc::new(Mutex::new((process == 0).then_some(rx)));
        let jobs = Arc::new(Jobs::new(workers));
        let wjobs = jobs.clone();
        let epoch = std::time::Instant::now();
        let guards = timely::execute(config, move |worker| {
            let inbox = match worker.index() {
                0 => rx.lock().ok().and_then(|mut r| r.take()),
                _ => None,
            };
            worker::work(worker, wjobs.clone(), process, inbox, epoch);
        })
        .map_err(Error::Workers)?;
        Ok(Runtime {
            inbox,
            jobs,
            guards: Mutex::new(Some(guards)),
            next: AtomicU64::new(1),
            process,
            processes: opts.cluster.as_ref().map_or(1, |c| c.addresses.len()),
        })
    }

    /// Submits a job; `baselines` gives the values of baselines computed from queries.
    pub fn submit(&self, plan: &JobPlan, baselines: Vec<(String, Vec<f64>)>) -> Result<JobHandle> {
        self.submit_as(plan, baselines, false, Cut::default())
    }

    /// Submits a job that continues from `opts.restore` (a suspended job's snapshot of the
    /// same plan) and/or suspends at event time `opts.suspend_at`. Single-process runtimes
    /// only: the snapshot lives in this process.
    pub fn submit_with(
        &self,
        plan: &JobPlan,
        baselines: Vec<(String, Vec<f64>)>,
        opts: SubmitOptions,
    ) -> Result<JobHandle> {
        if self.processes > 1 && (opts.restore.is_some() || opts.suspend_at.is_some()) {
            return Err(Error::Request(
                "suspending and restoring jobs needs a single-process runtime".into(),
            ));
        }
        let mut cut = Cut::new(opts.suspend_at, opts.restore);
        cut.checkpointed = opts.checkpointed;
        cut.state_dir = opts.state_dir;
        cut.durable = opts.durable;
        cut.recent_dead = opts.recent_dead;
        self.submit_as(plan, baselines, false, cut)
    }

    pub(crate) fn submit_as(
        &self,
        plan: &JobPlan,
        baselines: Vec<(String, Vec<f64>)>,
        internal: bool,
        cut: Cut,
    ) -> Result<JobHandle> {
        if self.process != 0 {
            return Err(Error::Request(
                "jobs are submitted to process 0 of a cluster".into(),
            ));
        }
        // The plan crosses to the workers as JSON, exactly as it does to another process.
        let text = plan.to_json().map_err(Error::Request)?;
        let job = self.next.fetch_add(1, Ordering::Relaxed);
        let state = self.jobs.get_or_insert_with(job, internal, cut);
        self.inbox
            .send(Command::Submit {
                job,
                plan: text,
                baselines,
                internal,
            })
            .map_err(|_| Error::Workers("the runtime has shut down".into()))?;
        Ok(JobHandle::new(state, self.inbox.clone()))
    }

    /// Every job this process has run or runs, with its id and status.
    pub fn jobs(&self) -> Vec<Arc<JobState>> {
        self.jobs.all()
    }

    /// Cancels what still runs, stops the workers and waits for them (process 0), or waits
    /// until process 0 shuts the cluster down (other processes). Gives each job's result, in
    /// id order, leaving out the runtime's own jobs.
    pub fn shutdown(&self) -> Result<Vec<(u64, Result<RunReport, JobError>)>> {
        if self.process == 0 {
            let _ = self.inbox.send(Command::Shutdown);
        }
        let guards = self.guards.lock().ok().and_then(|mut g| g.take());
        if let Some(g) = guards {
            for r in g.join() {
                r.map_err(Error::Workers)?;
            }
        }
        Ok(self
            .jobs
            .all()
            .into_iter()
            .filter(|j| !j.internal)
            .filter_map(|j| j.wait(Some(std::time::Duration::ZERO)).map(|r| (j.id, r)))
            .collect())
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
