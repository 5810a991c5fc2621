//! The plan as a timely dataflow. One adapter per role: `source` (reads, tracks the watermark,
//! routes late rows, runs the stateless operators before the exchange and partitions by key),
//! `route` (re-routes rows between two stateful operators), the stateful operators after an
//! exchange — `aggregate` (windows, driven by the input frontier), `updating` (non-windowed
//! GROUP BY on differential), `lookup` (stream–table join against a `table` arrangement) and
//! `interval` (stream–stream join) — and `sink` (writes on worker 0). Timely timestamps are
//! event-time milliseconds; frontiers are the watermarks.
pub mod aggregate;
pub mod batch;
pub mod interval;
pub mod lookup;
pub mod route;
pub mod sink;
pub mod source;
pub mod table;
pub mod updating;

use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};

use datafusion::arrow::record_batch::RecordBatch;
use weir_connectors::deadletter::DeadLetterFile;
use weir_connectors::Sink;
use weir_queries::plan::{PipelinePlan, SourceDef};

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
    /// Counters.
    pub metrics: Arc<Metrics>,
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
    /// First failure of any operator.
    pub failure: Arc<Mutex<Option<String>>>,
    /// The second inputs of the pipeline's interval joins, in stage order.
    pub right_inputs: Vec<Shared>,
    /// Set when the pipeline has all the rows it wants (`limit`): sources stop.
    pub stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Shared {
    /// Records a failure (the first one wins) so workers stop.
    pub fn fail(&self, message: impl std::fmt::Display) {
        if let Ok(mut f) = self.failure.lock() {
            if f.is_none() {
                *f = Some(format!("pipeline '{}': {message}", self.plan.name));
            }
        }
    }
}
