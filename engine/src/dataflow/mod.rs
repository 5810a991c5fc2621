//! The plan as a timely dataflow. One adapter per role: `source` (reads, tracks the watermark,
//! routes late rows, runs the stateless operators before the exchange and partitions by key),
//! `route` (re-routes rows between two stateful operators), the stateful operators after an
//! exchange — `aggregate` (windows, driven by the input frontier), `updating` (non-windowed
//! GROUP BY on differential), `lookup` (stream–table join against a `table` arrangement) and
//! `interval` (stream–stream join) — and `sink` (writes on worker 0). Timely timestamps are
//! event-time milliseconds; frontiers are the watermarks.
pub mod aggregate;
pub mod batch;
pub mod counted;
pub mod interval;
pub mod lookup;
pub mod lookup_state;
pub mod route;
pub mod sink;
pub mod source;
pub mod source_cut;
pub mod table;
pub mod updating;
pub mod view_state;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::record_batch::RecordBatch;
use weir_connectors::deadletter::DeadLetterFile;
use weir_connectors::Sink;
use weir_queries::plan::{PipelinePlan, SourceDef};

use crate::job::error::{JobError, JobErrorKind};
use crate::metrics::Metrics;

/// Where a pipeline's output goes.
#[derive(Clone)]
pub enum Output {
    /// A connector sink.
    Sink(Arc<Mutex<Box<dyn Sink>>>),
    /// Collected for the caller.
    Collect(Arc<Mutex<Vec<RecordBatch>>>),
}

/// Where undecodable records go.
#[derive(Clone)]
pub enum DeadLetter {
    /// A JSON-lines file.
    File(Arc<Mutex<DeadLetterFile>>),
    /// A declared sink, as rows `source, position, error, payload`.
    Sink(Arc<Mutex<Box<dyn Sink>>>),
}

/// What all workers of one pipeline share.
#[derive(Clone)]
pub struct Shared {
    /// The plan.
    pub plan: PipelinePlan,
    /// Its source.
    pub source: SourceDef,
    /// The pipeline's counters (rows out).
    pub metrics: Arc<Metrics>,
    /// Its source's counters (rows in, late, dead letters), shared by every pipeline reading
    /// the source (it is read once).
    pub input: Arc<Metrics>,
    /// For a source instance: the stop flags of the pipelines it feeds (it stops when all are
    /// set).
    pub readers: Vec<Arc<AtomicBool>>,
    /// Output.
    pub output: Output,
    /// Late-row sink, if the pipeline asked for one.
    pub late: Option<Arc<Mutex<Box<dyn Sink>>>>,
    /// Dead-letter output, if the source has one.
    pub dead: Option<DeadLetter>,
    /// Highest watermark of any worker's source instance (for idle sources).
    pub max_watermark: Arc<AtomicI64>,
    /// Counters of the source's connector.
    pub source_metrics: Arc<weir_connectors::ConnectorMetrics>,
    /// Counters of the sink's connector (None for collected results).
    pub sink_metrics: Option<Arc<weir_connectors::ConnectorMetrics>>,
    /// First failure of any operator of the job (shared by the job's pipelines).
    pub failure: Arc<Mutex<Option<JobError>>>,
    /// The job this pipeline belongs to.
    pub job: u64,
    /// Set when the job is told to stop (drain): sources stop, open windows close.
    pub job_stop: Arc<AtomicBool>,
    /// The second inputs of the pipeline's interval joins, in stage order.
    pub right_inputs: Vec<Shared>,
    /// Set when the pipeline has all the rows it wants (`limit`): sources stop.
    pub stop: Arc<std::sync::atomic::AtomicBool>,
    /// The job's cut: where to suspend, what its operators put in, what it restores.
    pub cut: Arc<crate::job::snapshot::Cut>,
    /// Rows in and out of each stage of the plan (by stage index; joins and updating
    /// aggregates, which run in adapters of their own, are counted around them).
    pub operators: Arc<Vec<crate::metrics::OperatorCounter>>,
}

impl Shared {
    /// Records a failure of `operator` (the first one of the job wins); the runtime then ends
    /// the job on every worker.
    pub fn fail(&self, operator: &str, message: impl std::fmt::Display + 'static) {
        // A panic caught inside an operator chain names the operator that panicked.
        let any: &dyn std::any::Any = &message;
        if let Some(weir_operators::Error::Panicked {
            operator: inner,
            message,
        }) = any.downcast_ref::<weir_operators::Error>()
        {
            let text = format!("panicked in {inner}: {message}");
            return self.fail_as(operator, JobErrorKind::Panic, text);
        }
        let kind = JobErrorKind::of_operator(operator);
        self.fail_as(operator, kind, message.to_string());
    }

    /// Records the failure of the stateless operators a source or fan-out runs: an operator's
    /// error (or panic), not the source's.
    pub fn fail_chain(&self, operator: &str, e: weir_operators::Error) {
        match e {
            weir_operators::Error::Panicked { .. } => self.fail(operator, e),
            e => self.fail_as(operator, JobErrorKind::Operator, e.to_string()),
        }
    }

    /// Records a failure of a given kind.
    pub fn fail_as(&self, operator: &str, kind: JobErrorKind, message: String) {
        if let Ok(mut f) = self.failure.lock() {
            if f.is_none() {
                *f = Some(JobError {
                    job: self.job,
                    pipeline: self.plan.name.clone(),
                    operator: operator.to_string(),
                    retryable: kind.retryable(),
                    kind,
                    message,
                });
            }
        }
    }

    /// Whether the job has failed.
    pub fn failed(&self) -> bool {
        self.failure.lock().map(|f| f.is_some()).unwrap_or(true)
    }

    /// Whether the sources should stop: the pipeline has its `limit`, or the job is stopping.
    pub fn stopping(&self) -> bool {
        let wanted = if self.readers.is_empty() {
            self.stop.load(Ordering::Relaxed)
        } else {
            self.readers.iter().all(|r| r.load(Ordering::Relaxed))
        };
        wanted || self.job_stop.load(Ordering::Relaxed)
    }

    /// Whether the job is suspending at a cut: stateful operators snapshot their state at
    /// the end of input instead of closing it.
    pub fn suspending(&self) -> bool {
        self.cut.asked().is_some()
    }

    /// Runs one activation of `operator`'s logic; a panic in it fails the job (with the panic's
    /// message) instead of unwinding through timely, so the worker goes on and the job ends.
    pub fn guard(&self, operator: &str, body: impl FnOnce()) {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(body)) {
            let message = weir_operators::panic_message(panic.as_ref());
            self.fail_as(
                operator,
                JobErrorKind::Panic,
                format!("panicked: {message}"),
            );
        }
    }
}
