//! One worker's loop: take the sequenced commands, build and install jobs, step the dataflows,
//! sequence a job's failure once this process sees it, and tell the job when this worker is
//! done with it (its dataflow completed or was dropped). Worker 0 of process 0 also sequences
//! the commands the runtime's caller sends.
use std::collections::HashMap;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use timely::synchronization::Sequencer;
use timely::worker::Worker;

use super::command::{Command, StopMode};
use super::jobs::{JobState, Jobs};
use crate::job::build::{prepare, WorkerParts};
use crate::job::wire::install;
use crate::job::{JobError, JobResources};

/// A job on this worker.
enum Local {
    /// Built here; waiting for every worker's `Ready`.
    Pending {
        parts: Option<WorkerParts>,
        ready: usize,
        error: Option<JobError>,
    },
    /// Installed as dataflow `dataflow`.
    Running {
        dataflow: usize,
        res: Arc<JobResources>,
    },
}

/// A worker's view of the runtime.
struct Work<'w> {
    worker: &'w mut Worker,
    seq: Sequencer<Command>,
    jobs: Arc<Jobs>,
    process: usize,
    local: HashMap<u64, Local>,
    shutdown: bool,
}

/// Runs a worker until the runtime shuts down.
pub fn work(
    worker: &mut Worker,
    jobs: Arc<Jobs>,
    process: usize,
    inbox: Option<Receiver<Command>>,
    epoch: std::time::Instant,
) {
    let seq = Sequencer::new(worker, epoch);
    let mut w = Work {
        worker,
        seq,
        jobs,
        process,
        local: HashMap::new(),
        shutdown: false,
    };
    loop {
        if let Some(rx) = &inbox {
            while let Ok(c) = rx.try_recv() {
                w.seq.push(c);
            }
        }
        while let Some(c) = w.seq.next() {
            w.handle(c);
        }
        w.announce_failures();
        if w.shutdown && w.local.is_empty() {
            break;
        }
        let park = if w.local.is_empty() { 10 } else { 1 };
        w.worker.step_or_park(Some(Duration::from_millis(park)));
        w.reap();
    }
}

impl Work<'_> {
    fn state(&self, job: u64) -> Option<Arc<JobState>> {
        self.jobs.get(job)
    }

    fn handle(&mut self, c: Command) {
        match c {
            Command::Submit {
                job,
                plan,
                baselines,
                internal,
            } => self.submit(job, &plan, &baselines, internal),
            Command::Ready { job, error, .. } => self.ready(job, error),
            Command::Stop { job, mode } => self.stop(job, mode),
            Command::Fail { job, error } => {
                if let Some(st) = self.state(job) {
                    st.failed(error);
                }
                self.end(job);
            }
            Command::AlterModel {
                job,
                model,
                version,
            } => {
                if let Some(res) = self.state(job).and_then(|s| s.resources()) {
                    if let Err(e) = res.models.set_current(&model, &version) {
                        tracing::warn!(job, %e, "alter model");
                    }
                }
            }
            Command::Checkpoint { job, epoch } => {
                tracing::warn!(
                    job,
                    epoch,
                    "checkpoint asked for; checkpoints are not taken yet"
                );
            }
            Command::Shutdown => {
                self.shutdown = true;
                let jobs: Vec<u64> = self.local.keys().copied().collect();
                for job in jobs {
                    if let Some(st) = self.state(job) {
                        st.stopping(StopMode::Cancel);
                    }
                    self.end(job);
                }
            }
        }
    }

    /// Opens the job (once per process), builds this worker's part, and says so.
    fn submit(&mut self, job: u64, plan: &str, baselines: &[(String, Vec<f64>)], internal: bool) {
        let st = self.jobs.get_or_insert(job, internal);
        let (index, peers) = (self.worker.index(), self.worker.peers());
        let built = st
            .open(plan, baselines, self.process)
            .and_then(|res| prepare(&res, index, peers));
        let (parts, error) = match built {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e)),
        };
        self.local.insert(
            job,
            Local::Pending {
                parts,
                ready: 0,
                error: None,
            },
        );
        self.seq.push(Command::Ready {
            job,
            worker: index,
            error,
        });
    }

    /// Counts a worker's `Ready`; with all of them in, installs the job or ends it.
    fn ready(&mut self, job: u64, e: Option<JobError>) {
        let peers = self.worker.peers();
        let Some(Local::Pending {
            parts,
            ready,
            error,
        }) = self.local.get_mut(&job)
        else {
            return;
        };
        *ready += 1;
        if error.is_none() {
            *error = e;
        }
        if *ready < peers {
            return;
        }
        let (parts, error) = (parts.take(), error.take());
        let st = self.state(job);
        match (parts, error, st.as_ref().and_then(|s| s.resources())) {
            (Some(parts), None, Some(res)) => {
                let dataflow = install(self.worker, parts);
                self.local.insert(job, Local::Running { dataflow, res });
                if let Some(st) = st {
                    st.running();
                }
            }
            (_, error, _) => {
                if let (Some(st), Some(e)) = (st, error) {
                    st.failed(e);
                }
                self.end(job);
            }
        }
    }

    fn stop(&mut self, job: u64, mode: StopMode) {
        if let Some(st) = self.state(job) {
            st.stopping(mode);
        }
        if mode == StopMode::Cancel {
            self.end(job);
        }
    }

    /// This worker is done with `job`: its dataflow (if any) is dropped.
    fn end(&mut self, job: u64) {
        let Some(l) = self.local.remove(&job) else {
            return;
        };
        if let Local::Running { dataflow, .. } = l {
            self.worker.drop_dataflow(dataflow);
        }
        if let Some(st) = self.state(job) {
            st.worker_done();
        }
    }

    /// Sequences the failure of each job that failed in this process (once per process).
    fn announce_failures(&mut self) {
        for (job, l) in &self.local {
            let Local::Running { res, .. } = l else {
                continue;
            };
            let Some(error) = res.failure.lock().ok().and_then(|f| f.clone()) else {
                continue;
            };
            if let Some(st) = self.jobs.get(*job) {
                if !st.announced.swap(true, std::sync::atomic::Ordering::AcqRel) {
                    self.seq.push(Command::Fail { job: *job, error });
                }
            }
        }
    }

    /// Ends the jobs whose dataflow completed on this worker.
    fn reap(&mut self) {
        let installed = self.worker.installed_dataflows();
        let done: Vec<u64> = self
            .local
            .iter()
            .filter_map(|(job, l)| match l {
                Local::Running { dataflow, .. } if !installed.contains(dataflow) => Some(*job),
                _ => None,
            })
            .collect();
        for job in done {
            if let Some(Local::Running { .. }) = self.local.remove(&job) {
                if let Some(st) = self.state(job) {
                    st.worker_done();
                }
            }
        }
    }
}
