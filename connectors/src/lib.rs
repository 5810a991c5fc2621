//! weir connectors: sources and sinks, and the formats that turn bytes into batches.
//!
//! Entry point: [`registry()`], a closed list of connectors by name. A source yields decoded
//! [`RecordBatch`]es plus the records it could not decode ([`BadRecord`], for the dead-letter
//! output); a sink takes batches. Transport (file, generator, stdout) is kept apart from format
//! (`format/csv.rs`, `format/json.rs`). No SQL and no timely here.
//!
//! How to add a connector:
//! 1. Add a folder `src/<name>/` with the source and/or sink. Declare its options in a
//!    `pub const SPEC: ConnectorSpec` ([`describe`]): `CREATE` checks them before anything
//!    runs; read them with [`options::Options`] over that spec.
//! 2. Add it, with its spec, to the literal list in [`registry()`]; the `no_duplicate_names`
//!    test checks names.
//! 3. Document every option in the README's connector table.
//!
//! Settings the engine needs (a position column, a table's tombstones) come as typed fields
//! of [`SourceContext::internal`], never in the user's option map.

pub mod alerts;
pub mod deadletter;
pub mod describe;
pub mod error;
pub mod file;
pub mod format;
pub mod gate;
pub mod generator;
pub mod kafka;
pub mod kpi;
pub mod metrics;
pub mod mqtt;
pub mod options;
pub mod secret;
pub mod sql_limits;
pub mod stdout;
pub mod table;

use std::collections::BTreeMap;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

pub use describe::ConnectorSpec;
pub use error::{Error, Result};
pub use metrics::ConnectorMetrics;
pub use options::Options;

/// A record a source could not decode.
#[derive(Debug, Clone)]
pub struct BadRecord {
    /// Where it was: `file:line`, `topic/partition@offset`, …
    pub position: String,
    /// Why it failed.
    pub error: String,
    /// The raw bytes.
    pub payload: Vec<u8>,
}

/// What one poll of a source gives.
pub enum Poll {
    /// Decoded rows (maybe none) and undecodable records; `partition` names the partition all
    /// rows came from when the source has partitions (each keeps its own watermark).
    Data {
        batch: Option<RecordBatch>,
        bad: Vec<BadRecord>,
        partition: Option<u32>,
    },
    /// Nothing now; poll again later.
    Idle,
    /// A bounded source is exhausted.
    Done,
}

/// Where a source instance stands, or what a sink has durably written: named parts (a
/// partition, a sensor, a file) and each one's offset, as text. The positions of several
/// instances of one source merge by union ([`merge_positions`]), so a job restored on another
/// number of workers gives every instance the whole map and each takes the parts it reads.
pub type Position = BTreeMap<String, String>;

/// The union of several instances' positions (a later instance's part wins a clash).
pub fn merge_positions<'a>(parts: impl IntoIterator<Item = &'a Position>) -> Position {
    let mut all = Position::new();
    for p in parts {
        all.extend(p.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    all
}

/// A source instance on one worker.
pub trait Source: Send {
    /// Reads up to about `max_rows` rows.
    fn poll(&mut self, max_rows: usize) -> Result<Poll>;

    /// Where this instance stands: after every row it has returned (`None`: it cannot be
    /// resumed, e.g. MQTT, whose broker does not replay).
    fn position(&self) -> Option<Position> {
        None
    }

    /// Continues after `position` (the merged positions of a job's earlier instances): the
    /// next poll returns the row after the last one returned there, for the parts this
    /// instance reads.
    fn seek(&mut self, _position: &Position) -> Result<()> {
        Err(Error::Unsupported(
            "this source cannot resume from a position".into(),
        ))
    }

    /// Where row `row` of the batch the last `poll` returned came from (`path:line`,
    /// `topic/partition@offset`, `topic#sequence`), for a dead letter the engine makes of a
    /// decoded row (an event time too far ahead). `None` when the source cannot say.
    fn row_position(&self, _row: usize) -> Option<String> {
        None
    }

    /// For partitioned sources: the partitions this instance reads and whether each has
    /// reached its end. The engine keeps a watermark per partition; a partition that has not
    /// delivered data yet holds the watermark back until it ends, or until it is caught up and
    /// idle for `idle_timeout`.
    fn partitions(&self) -> Vec<(u32, PartitionState)> {
        Vec::new()
    }
}

/// Where a partition's reader stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionState {
    /// Data may be waiting: the partition holds the watermark.
    Reading,
    /// Caught up with the broker: after `idle_timeout` without data it stops holding the
    /// watermark.
    CaughtUp,
    /// A bounded read of it is complete.
    Finished,
}

/// A sink instance.
pub trait Sink: Send {
    /// Writes one batch.
    fn write(&mut self, batch: &RecordBatch) -> Result<()>;
    /// Flushes and closes at end of stream.
    fn finish(&mut self) -> Result<()>;

    /// Makes everything written so far durable, as of checkpoint `epoch`, and says how far
    /// that is (`None`: the sink keeps no position; it may repeat rows after a restore).
    fn pre_commit(&mut self, _epoch: u64) -> Result<Option<Position>> {
        Ok(None)
    }

    /// Checkpoint `epoch` is complete: what `pre_commit(epoch)` wrote is final.
    fn commit(&mut self, _epoch: u64) -> Result<()> {
        Ok(())
    }
}

/// What a source is built from.
pub struct SourceContext {
    /// The source's SQL name.
    pub name: String,
    /// Declared columns.
    pub schema: SchemaRef,
    /// Connector options (the generic ones — connector, format, event_time, … — removed).
    pub options: BTreeMap<String, String>,
    /// The `format` option.
    pub format: Option<String>,
    /// This worker's index.
    pub worker: usize,
    /// Number of workers.
    pub workers: usize,
    /// Counters shared by all workers of this source.
    pub metrics: std::sync::Arc<ConnectorMetrics>,
    /// What the engine asks of the source beyond the user's options.
    pub internal: Internal,
}

/// Settings the engine gives a source, never read from the user's options.
#[derive(Debug, Clone, Default)]
pub struct Internal {
    /// Fill the schema's last column with each row's position (for provenance).
    pub positions: Option<Positions>,
    /// A Kafka table without an op column: null payloads (tombstones) delete their key.
    pub tombstones: Option<TombstoneColumns>,
    /// The job keeps durable checkpoints: a source that commits its progress somewhere (a
    /// Kafka consumer group) commits only positions of completed checkpoints — those it is
    /// sought to — never as it reads.
    pub checkpointed: bool,
    /// Opened once the checkpoint the job was continued from is durable: a source commits
    /// that checkpoint's positions to its group only then.
    pub durable: Option<gate::Gate>,
    /// The event-time column: a record without it (missing or NULL) is a dead letter, not a
    /// row (file and MQTT sources; see `format::requiring`).
    pub event_time: Option<String>,
}

/// How a source fills the position column: file line numbers as they are; a partition and
/// offset (Kafka), or a worker and archive sequence (MQTT), packed into one `i64` by `encode`.
#[derive(Debug, Clone)]
pub struct Positions {
    /// The column (the schema's last).
    pub column: String,
    /// Packs a partition and an offset.
    pub encode: fn(i32, i64) -> i64,
}

/// The columns a Kafka table's tombstones fill: the key (from the message key), the marker
/// (`delete`), and the event time (from the message timestamp).
#[derive(Debug, Clone)]
pub struct TombstoneColumns {
    /// The primary-key column.
    pub key: String,
    /// The marker column (the schema's last).
    pub column: String,
    /// The event-time column, if the table has one.
    pub time: Option<String>,
}

/// What a sink is built from.
pub struct SinkContext {
    /// The sink's SQL name.
    pub name: String,
    /// Schema of the rows written.
    pub schema: SchemaRef,
    /// Connector options.
    pub options: BTreeMap<String, String>,
    /// The `format` option.
    pub format: Option<String>,
    /// Counters of this sink.
    pub metrics: std::sync::Arc<ConnectorMetrics>,
    /// Continue after this position (a restored job's, from its sink's `pre_commit`) instead
    /// of starting afresh: a file sink keeps its first bytes and appends.
    pub resume: Option<Position>,
    /// A directory of the sink's own in the job's state dir (durable checkpoints only): a sink
    /// that stages output until a checkpoint completes keeps it there.
    pub state_dir: Option<std::path::PathBuf>,
    /// Opened once the checkpoint `resume` came from is durable (`None`: it is, or there is
    /// none): a sink that produces staged output at a checkpoint waits for it.
    pub durable: Option<gate::Gate>,
}

/// Builds a source.
pub type SourceFactory = fn(SourceContext) -> Result<Box<dyn Source>>;
/// Builds a sink.
pub type SinkFactory = fn(SinkContext) -> Result<Box<dyn Sink>>;

/// The connectors weir knows, by name, with their descriptions.
pub struct Registry {
    /// Source connectors.
    pub sources: Vec<(&'static str, SourceFactory, &'static ConnectorSpec)>,
    /// Sink connectors.
    pub sinks: Vec<(&'static str, SinkFactory, &'static ConnectorSpec)>,
}

impl Registry {
    /// Builds a source by connector name.
    pub fn source(&self, connector: &str, ctx: SourceContext) -> Result<Box<dyn Source>> {
        match self.sources.iter().find(|(n, ..)| *n == connector) {
            Some((_, f, _)) => f(ctx),
            None => Err(Error::UnknownConnector {
                name: connector.to_string(),
                known: self.source_names().join(", "),
            }),
        }
    }

    /// Builds a sink by connector name.
    pub fn sink(&self, connector: &str, ctx: SinkContext) -> Result<Box<dyn Sink>> {
        match self.sinks.iter().find(|(n, ..)| *n == connector) {
            Some((_, f, _)) => f(ctx),
            None => Err(Error::UnknownConnector {
                name: connector.to_string(),
                known: self.sink_names().join(", "),
            }),
        }
    }

    /// The description of source connector `connector`.
    pub fn source_spec(&self, connector: &str) -> Option<&'static ConnectorSpec> {
        self.sources
            .iter()
            .find(|(n, ..)| *n == connector)
            .map(|s| s.2)
    }

    /// The description of sink connector `connector`.
    pub fn sink_spec(&self, connector: &str) -> Option<&'static ConnectorSpec> {
        self.sinks
            .iter()
            .find(|(n, ..)| *n == connector)
            .map(|s| s.2)
    }

    /// The source connectors' names.
    pub fn source_names(&self) -> Vec<&'static str> {
        self.sources.iter().map(|s| s.0).collect()
    }

    /// The sink connectors' names.
    pub fn sink_names(&self) -> Vec<&'static str> {
        self.sinks.iter().map(|s| s.0).collect()
    }
}

/// `schema` without its last column: what a source whose last column holds positions (for
/// provenance) decodes.
pub(crate) fn without_positions(schema: &SchemaRef) -> SchemaRef {
    let n = schema.fields().len().saturating_sub(1);
    std::sync::Arc::new(datafusion::arrow::datatypes::Schema::new(
        schema.fields()[..n].to_vec(),
    ))
}

/// `batch` with a last column of positions (for provenance), under `schema`.
pub(crate) fn with_positions(
    schema: &SchemaRef,
    batch: RecordBatch,
    positions: Vec<i64>,
) -> Result<RecordBatch> {
    let mut cols = batch.columns().to_vec();
    cols.push(std::sync::Arc::new(
        datafusion::arrow::array::Int64Array::from(positions),
    ));
    Ok(RecordBatch::try_new(schema.clone(), cols)?)
}

/// The closed list of connectors.
pub fn registry() -> Registry {
    Registry {
        sources: vec![
            (
                "file",
                file::source::build as SourceFactory,
                &file::source::SPEC,
            ),
            (
                "generator",
                generator::build as SourceFactory,
                &generator::SPEC,
            ),
            (
                "kafka",
                kafka::source::build as SourceFactory,
                &kafka::source::SPEC,
            ),
            (
                "mqtt",
                mqtt::source::build as SourceFactory,
                &mqtt::source::SPEC,
            ),
        ],
        sinks: vec![
            ("alerts", alerts::build as SinkFactory, &alerts::SPEC),
            ("file", file::sink::build as SinkFactory, &file::sink::SPEC),
            (
                "kafka",
                kafka::sink::build as SinkFactory,
                &kafka::sink::SPEC,
            ),
            ("kpi", kpi::build as SinkFactory, &kpi::SPEC),
            ("mqtt", mqtt::sink::build as SinkFactory, &mqtt::sink::SPEC),
            ("stdout", stdout::build as SinkFactory, &stdout::SPEC),
            ("table", table::build as SinkFactory, &table::SPEC),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_duplicate_names() {
        let r = registry();
        let mut s = r.source_names();
        assert!(r.sources.iter().all(|(n, _, spec)| spec.name == *n));
        assert!(r.sinks.iter().all(|(n, _, spec)| spec.name == *n));
        let before = s.len();
        s.sort();
        s.dedup();
        assert_eq!(before, s.len());
        let mut k = r.sink_names();
        let before = k.len();
        k.sort();
        k.dedup();
        assert_eq!(before, k.len());
    }
}
