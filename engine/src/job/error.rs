//! `JobError`: why a job ended without finishing — which job, pipeline and operator, what kind
//! of failure, whether trying again may help, and the message. It travels between workers and
//! processes (serde), so every worker of a cluster ends the job with the same error.
use serde::{Deserialize, Serialize};

/// What kind of failure ended a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobErrorKind {
    /// The job could not be built: a sink or source that cannot open, a plan that does not
    /// turn into operators.
    Build,
    /// A source failed while reading.
    Source,
    /// A sink failed while writing.
    Sink,
    /// An operator returned an error.
    Operator,
    /// An operator or connector panicked (a bug in weir; the job ends, the process goes on).
    Panic,
}

impl JobErrorKind {
    /// The kind of an error reported by the adapter `operator`.
    pub fn of_operator(operator: &str) -> Self {
        match operator {
            "Source" => JobErrorKind::Source,
            "Sink" => JobErrorKind::Sink,
            _ => JobErrorKind::Operator,
        }
    }

    /// Whether running the job again may succeed without changing it (a source or sink whose
    /// file, broker or network failed).
    pub fn retryable(self) -> bool {
        matches!(self, JobErrorKind::Source | JobErrorKind::Sink)
    }

    /// The kind's name, as reports and the REST API spell it.
    pub fn name(self) -> &'static str {
        match self {
            JobErrorKind::Build => "build",
            JobErrorKind::Source => "source",
            JobErrorKind::Sink => "sink",
            JobErrorKind::Operator => "operator",
            JobErrorKind::Panic => "panic",
        }
    }
}

/// Why a job failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{}", self.describe())]
pub struct JobError {
    /// The job.
    pub job: u64,
    /// The pipeline whose operator failed (empty when the job as a whole failed to build).
    pub pipeline: String,
    /// The operator (`Source`, `WindowAggregate`, `Sink`, …; empty when not one operator's).
    pub operator: String,
    /// What kind of failure.
    pub kind: JobErrorKind,
    /// Whether running the job again may succeed.
    pub retryable: bool,
    /// What happened.
    pub message: String,
}

impl JobError {
    /// A job that failed to build.
    pub fn build(job: u64, pipeline: &str, message: impl std::fmt::Display) -> Self {
        JobError {
            job,
            pipeline: pipeline.to_string(),
            operator: String::new(),
            kind: JobErrorKind::Build,
            retryable: false,
            message: message.to_string(),
        }
    }

    /// `pipeline 'p': message` (with the operator for a panic), as `weir run` prints it.
    fn describe(&self) -> String {
        let what = match self.kind {
            JobErrorKind::Panic => format!("operator {} {}", self.operator, self.message),
            _ => self.message.clone(),
        };
        if self.pipeline.is_empty() {
            what
        } else {
            format!("pipeline '{}': {what}", self.pipeline)
        }
    }
}
