//! One pipeline the server runs: its record, its compiled plan, and the thread that runs it as
//! a chain of checkpointed jobs (`durable::run_controlled`) when every source it reads can
//! continue from a checkpoint, or as one plain job when not. Stopping a checkpointed pipeline
//! ends it at a last checkpoint; starting it again continues from there.
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;
use weir_queries::job_plan::JobPlan;
use weir_queries::plan::ScriptPlan;

use super::catalog::Record;
use crate::durable::{Control, Durable};
use crate::runtime::Runtime;
use crate::{Error, Result};

/// Where a pipeline stands.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Its job is being built (or its baselines computed).
    Starting,
    /// It runs.
    Running,
    /// Told to stop; ending at a last checkpoint (or draining).
    Stopping,
    /// Stopped by a person (or by the server's shutdown).
    Stopped,
    /// Every source ended and every output is written.
    Finished,
    /// Ended by a failure (see `error`).
    Failed,
}

impl State {
    /// The state's name, as serialized (`running`, …).
    pub fn name(&self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Running => "running",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::Finished => "finished",
            State::Failed => "failed",
        }
    }
}

/// Why a pipeline failed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Failure {
    /// `build`, `source`, `sink`, `operator` or `runtime`.
    pub kind: String,
    /// The pipeline (`CREATE PIPELINE`) it failed in, if known.
    pub query: String,
    /// The operator it failed in, if known.
    pub operator: String,
    /// What went wrong.
    pub message: String,
    /// Whether starting it again may help (a lost broker, say).
    pub retryable: bool,
}

impl Failure {
    fn of(e: &Error) -> Failure {
        match e {
            Error::Job(j) => Failure {
                kind: j.kind.name().into(),
                query: j.pipeline.clone(),
                operator: j.operator.clone(),
                message: j.message.clone(),
                retryable: j.retryable,
            },
            other => Failure {
                kind: "runtime".into(),
                query: String::new(),
                operator: String::new(),
                message: other.to_string(),
                retryable: false,
            },
        }
    }
}

/// A pipeline the server runs (or ran).
pub struct Served {
    /// Its record.
    pub record: Mutex<Record>,
    /// Its compiled script.
    pub plan: ScriptPlan,
    /// `Ok`: it keeps checkpoints; `Err`: why it cannot (a source that cannot continue).
    pub checkpoints: std::result::Result<(), String>,
    run: Mutex<Run>,
}

/// The current (or last) run.
struct Run {
    state: State,
    failure: Option<Failure>,
    control: Arc<Control>,
    thread: Option<JoinHandle<()>>,
    started_ms: u64,
}

/// Where the server keeps job state and how often it checkpoints.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The directory of the jobs' checkpoints (`STATE_DIR/jobs`).
    pub jobs_dir: PathBuf,
    /// Time between checkpoints.
    pub every: Duration,
    /// Model versions uploaded to the server.
    pub uploads: Arc<super::uploads::Uploads>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Served {
    /// A pipeline of `record` whose script compiled to `plan`; not started.
    pub fn new(record: Record, plan: ScriptPlan) -> Served {
        let checkpoints = crate::durable::check_resumable(&plan).map_err(|e| e.to_string());
        Served {
            record: Mutex::new(record),
            plan,
            checkpoints,
            run: Mutex::new(Run {
                state: State::Stopped,
                failure: None,
                control: Arc::new(Control::default()),
                thread: None,
                started_ms: 0,
            }),
        }
    }

    /// The pipeline's name.
    pub fn name(&self) -> String {
        self.record
            .lock()
            .map(|r| r.name.clone())
            .unwrap_or_default()
    }

    /// Its state, its failure, the control of its run, and when that run started.
    pub fn state(&self) -> (State, Option<Failure>, Arc<Control>, u64) {
        let Ok(r) = self.run.lock() else {
            return (State::Failed, None, Arc::default(), 0);
        };
        let mut state = r.state.clone();
        if state == State::Starting && r.control.started() {
            state = State::Running;
        }
        (state, r.failure.clone(), r.control.clone(), r.started_ms)
    }

    /// Whether its run has not ended.
    pub fn active(&self) -> bool {
        matches!(
            self.state().0,
            State::Starting | State::Running | State::Stopping
        )
    }

    /// Whether an earlier run finished (every source ended): a server started again shows it
    /// finished instead of running it again.
    pub fn finished_before(&self, settings: &Settings) -> bool {
        finished_marker(settings, &self.name()).exists()
    }

    /// Shows the pipeline as finished (by an earlier run).
    pub fn show_finished(&self) {
        if let Ok(mut run) = self.run.lock() {
            run.state = State::Finished;
        }
    }

    /// Starts a run on `rt` (a no-op when one is active).
    pub fn start(self: &Arc<Self>, rt: &Arc<Runtime>, settings: &Settings) -> Result<()> {
        let mut run = self
            .run
            .lock()
            .map_err(|_| Error::Request("pipeline state poisoned".into()))?;
        if run.thread.as_ref().is_some_and(|t| !t.is_finished()) {
            return Ok(());
        }
        let _ = std::fs::remove_file(finished_marker(settings, &self.name()));
        let control = Arc::new(Control::default());
        // Versions uploaded are declared, and versions switched earlier current, from the
        // run's first job on.
        for def in settings.uploads.for_plan(&self.plan) {
            control.add_version(def)?;
        }
        let switched = self
            .record
            .lock()
            .map(|r| r.models.clone())
            .unwrap_or_default();
        for (model, version) in switched {
            control.alter_model(&format!("ALTER MODEL {model} SET VERSION '{version}'"))?;
        }
        run.state = State::Starting;
        run.failure = None;
        run.control = control.clone();
        run.started_ms = now_ms();
        let (me, rt, settings) = (self.clone(), rt.clone(), settings.clone());
        let thread = std::thread::Builder::new()
            .name(format!("serve-{}", self.name()))
            .spawn(move || me.run(&rt, &settings, &control))
            .map_err(|e| Error::Request(format!("starting the pipeline's thread: {e}")))?;
        run.thread = Some(thread);
        Ok(())
    }

    /// Stops the run and waits for it to end (at a last checkpoint when it keeps them).
    pub fn stop(&self) {
        let thread = match self.run.lock() {
            Ok(mut run) => {
                if matches!(run.state, State::Starting | State::Running) {
                    run.state = State::Stopping;
                }
                run.control.stop(self.checkpoints.is_ok());
                run.thread.take()
            }
            Err(_) => None,
        };
        if let Some(t) = thread {
            let _ = t.join();
        }
    }

    /// The run thread: baselines, then the job(s), then the final state.
    fn run(&self, rt: &Runtime, settings: &Settings, control: &Control) {
        let name = self.name();
        let result = (|| {
            let values = crate::run::baselines(rt, &self.plan)?;
            if self.checkpoints.is_ok() {
                let d = Durable {
                    dir: settings.jobs_dir.clone(),
                    every: settings.every,
                    reset: false,
                };
                crate::durable::run_controlled(rt, &self.plan, &name, values, &d, control)
                    .map(|_| ())
            } else {
                plain(rt, &self.plan, &name, values, control)
            }
        })();
        if let Ok(mut run) = self.run.lock() {
            match result {
                Ok(()) if control.stopping() => run.state = State::Stopped,
                Ok(()) => {
                    run.state = State::Finished;
                    // A server started again does not run a finished pipeline again.
                    let marker = finished_marker(settings, &name);
                    let written = marker
                        .parent()
                        .map(std::fs::create_dir_all)
                        .unwrap_or(Ok(()))
                        .and_then(|_| std::fs::write(&marker, b""));
                    if let Err(e) = written {
                        tracing::warn!(pipeline = %name, error = %e, "recording that the pipeline finished");
                    }
                }
                Err(e) => {
                    tracing::warn!(pipeline = %name, error = %e, "pipeline failed");
                    run.state = State::Failed;
                    run.failure = Some(Failure::of(&e));
                }
            }
        }
    }
}

/// The file whose presence says the pipeline's last run finished.
fn finished_marker(settings: &Settings, name: &str) -> PathBuf {
    settings.jobs_dir.join(name).join("finished")
}

/// Runs `plan` as one job without checkpoints; a stop drains it.
fn plain(
    rt: &Runtime,
    plan: &ScriptPlan,
    name: &str,
    values: Vec<(String, Vec<f64>)>,
    control: &Control,
) -> Result<()> {
    let opts = crate::runtime::SubmitOptions {
        recent_dead: Some(control.recent_dead()),
        ..Default::default()
    };
    let job = rt.submit_with(
        &control.with_versions(&JobPlan::new(name, plan.clone())),
        values,
        opts,
    )?;
    control.running(&job);
    if control.stopping() {
        job.stop(crate::runtime::StopMode::Drain);
    }
    let report = job.wait().map_err(Error::Job)?;
    control.add(&report);
    Ok(())
}
