//! Kafka source: explicitly assigned partitions, batched decoding (JSON lines or CSV, one record
//! per message), positions `topic/partition@offset` for dead letters, per-partition batches so
//! the engine keeps a watermark per partition.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::record::{Record, Tombstones};
use super::{base_config, kafka_err, tombstone};
use crate::describe::{opt, required, ConnectorSpec, Kind};
use crate::format::Format;
use crate::{
    BadRecord, ConnectorMetrics, Error, Options, PartitionState, Poll, Result, Source,
    SourceContext,
};

/// The Kafka source's options.
pub const SPEC: ConnectorSpec = ConnectorSpec {
    name: "kafka",
    tables: crate::describe::Tables::TableWithTombstones,
    formats: &["json", "csv"],
    options: &[&[
        super::BROKERS,
        required("topic", Kind::Text, "the topic to read"),
        opt(
            "start",
            Kind::Text,
            "earliest",
            "where reading starts: earliest, latest, committed, or timestamp:<epoch ms>",
        ),
        opt(
            "group_id",
            Kind::Text,
            "weir-<source>",
            "the consumer group",
        ),
        opt("commit", Kind::Bool, "true", "commit offsets to the group"),
        opt(
            "bounded",
            Kind::Bool,
            "false",
            "read to the end offsets at start, then finish",
        ),
        opt(
            "max_messages",
            Kind::Integer,
            "0",
            "stop after this many messages (0: no limit)",
        ),
    ]],
    provenance: crate::describe::Provenance::Offsets {
        kind: "kafka",
        at: "topic",
    },
    dataset: Some(super::dataset),
    resumable: crate::describe::Resumable::Yes,
    live: true,
};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Receives librdkafka's statistics (every second) and records the consumer lag: messages
/// between this instance's positions and the partitions' high watermarks.
pub struct LagContext {
    metrics: Arc<ConnectorMetrics>,
    topic: String,
}

impl ClientContext for LagContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        // Reaching the end of a partition is how bounded reads finish, not an error.
        let eof = matches!(error, rdkafka::error::KafkaError::PartitionEOF(_))
            || error.to_string().contains("PartitionEOF")
            || reason.contains("PartitionEOF")
            || reason.contains("end of partition");
        if !eof {
            tracing::warn!("kafka source on {}: {error}: {reason}", self.topic);
        }
    }

    fn stats(&self, statistics: Statistics) {
        if let Some(t) = statistics.topics.get(&self.topic) {
            let lag: i64 = t
                .partitions
                .values()
                .filter(|p| p.partition >= 0 && p.consumer_lag >= 0)
                .map(|p| p.consumer_lag)
                .sum();
            self.metrics
                .lag
                .store(lag as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl ConsumerContext for LagContext {}

type LagConsumer = BaseConsumer<LagContext>;

/// The Kafka source on one worker.
pub struct KafkaSource {
    consumer: Option<LagConsumer>,
    topic: String,
    schema: SchemaRef,
    /// What a payload decodes to: the schema without the columns weir fills itself (a table's
    /// tombstone marker, the position column).
    decode_schema: SchemaRef,
    /// The same with the event-time column required (a record without it is a dead letter).
    strict_schema: SchemaRef,
    format: Format,
    commit: bool,
    /// Bounded reads: the assigned partitions and whether each has reached its end.
    end: Option<HashMap<i32, bool>>,
    next: HashMap<i32, i64>,
    max_messages: u64,
    received: u64,
    metrics: Arc<ConnectorMetrics>,
    pending: Vec<Record>,
    tombstones: Option<Tombstones>,
    assigned: Vec<i32>,
    caught_up: HashMap<i32, bool>,
    /// `position_column`: the schema's last column, filled with each record's partition and
    /// offset (packed by the engine's encoding) for provenance.
    positions: Option<fn(i32, i64) -> i64>,
    /// Each assigned partition's offset after the last record returned (its position).
    returned: HashMap<i32, i64>,
    /// Where each assigned partition started.
    start: HashMap<i32, Offset>,
    /// The assignment at the start offsets, made at the first poll unless a seek comes first
    /// (a job restored from a checkpoint): an assignment replaced at once could still deliver
    /// an end-of-partition event for its old offsets, which would end a bounded read early.
    unassigned: Option<TopicPartitionList>,
    /// Commit only the positions of completed checkpoints (at `seek`), not as rows are read.
    checkpointed: bool,
    /// The positions sought to, to commit once their checkpoint is durable (`durable`).
    to_commit: Option<HashMap<i32, i64>>,
    durable: Option<crate::gate::Gate>,
    /// The partition and offset of each row of the last batch returned.
    last_rows: Vec<(i32, i64)>,
}

/// Builds the Kafka source.
pub fn build(ctx: SourceContext) -> Result<Box<dyn Source>> {
    let mut o = Options::new(&SPEC, ctx.options);
    let brokers = o.required("brokers")?;
    let topic = o.required("topic")?;
    let start = o
        .string("start")
        .unwrap_or_else(|| "earliest".into())
        .to_ascii_lowercase();
    let group = o
        .string("group_id")
        .unwrap_or_else(|| format!("weir-{}", ctx.name));
    let commit = o.bool("commit", true)?;
    let bounded = o.bool("bounded", false)?;
    let max_messages = o.u64("max_messages", 0)?;
    let tombstones = match &ctx.internal.tombstones {
        Some(t) => {
            let find = |n: &str, what: &str| {
                ctx.schema.index_of(n).map_err(|_| Error::Column {
                    column: n.into(),
                    message: format!("the table's {what} is not a column"),
                })
            };
            let time = t
                .time
                .as_deref()
                .map(|c| find(c, "event time"))
                .transpose()?;
            Some(Tombstones {
                key: find(&t.key, "key")?,
                marker: find(&t.column, "tombstone marker")?,
                time,
            })
        }
        None => None,
    };
    let positions = ctx.internal.positions.as_ref().map(|p| p.encode);
    o.finish()?;
    let format = Format::parse(ctx.format.as_deref(), Format::Json)?;
    let consumer: LagConsumer = base_config(&brokers)
        .set("statistics.interval.ms", "1000")
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        // End-of-partition comes with the fetch that finds nothing more: soon, so that a job
        // cut often still sees its bounded read end.
        .set("fetch.wait.max.ms", "100")
        .set(
            "auto.offset.reset",
            if start == "latest" {
                "latest"
            } else {
                "earliest"
            },
        )
        .create_with_context(LagContext {
            metrics: ctx.metrics.clone(),
            topic: topic.clone(),
        })
        .map_err(kafka_err("creating the Kafka consumer"))?;
    let md = consumer
        .fetch_metadata(Some(&topic), TIMEOUT)
        .map_err(kafka_err("reading Kafka metadata"))?;
    let partitions: Vec<i32> = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    if partitions.is_empty() {
        return Err(Error::Option {
            option: "topic".into(),
            message: format!("topic '{topic}' has no partitions on {brokers}"),
        });
    }
    let mine: Vec<i32> = partitions
        .into_iter()
        .filter(|p| (*p as usize) % ctx.workers == ctx.worker)
        .collect();
    let decode_schema = match &tombstones {
        Some(t) => Arc::new(tombstone::without_marker(&ctx.schema, t.marker)),
        None if positions.is_some() => crate::without_positions(&ctx.schema),
        None => ctx.schema.clone(),
    };
    // A worker without partitions keeps no consumer and is done at once.
    let mut source = KafkaSource {
        consumer: None,
        topic: topic.clone(),
        schema: ctx.schema,
        strict_schema: crate::format::requiring(&decode_schema, ctx.internal.event_time.as_deref()),
        decode_schema,
        format,
        commit,
        end: None,
        next: HashMap::new(),
        max_messages,
        received: 0,
        metrics: ctx.metrics,
        pending: Vec::new(),
        tombstones,
        assigned: Vec::new(),
        caught_up: HashMap::new(),
        positions,
        returned: HashMap::new(),
        start: HashMap::new(),
        unassigned: None,
        checkpointed: ctx.internal.checkpointed,
        to_commit: None,
        durable: ctx.internal.durable.clone(),
        last_rows: Vec::new(),
    };
    if mine.is_empty() {
        return Ok(Box::new(source));
    }
    let mut tpl = TopicPartitionList::new();
    for p in &mine {
        let offset = match start.as_str() {
            "earliest" => Offset::Beginning,
            "latest" => Offset::End,
            "committed" => Offset::Stored,
            s if s.starts_with("timestamp:") => {
                let ts: i64 =
                    s["timestamp:".len()..]
                        .trim()
                        .parse()
                        .map_err(|_| Error::Option {
                            option: "start".into(),
                            message: format!("expected timestamp:<epoch ms>, got '{s}'"),
                        })?;
                let mut q = TopicPartitionList::new();
                q.add_partition_offset(&topic, *p, Offset::Offset(ts))
                    .map_err(kafka_err("offsets for timestamp"))?;
                let r = consumer
                    .offsets_for_times(q, TIMEOUT)
                    .map_err(kafka_err("offsets for timestamp"))?;
                r.find_partition(&topic, *p)
                    .map(|e| e.offset())
                    .unwrap_or(Offset::End)
            }
            other => {
                return Err(Error::Option {
                    option: "start".into(),
                    message: format!(
                        "expected earliest, latest, committed or timestamp:<ms>, got '{other}'"
                    ),
                })
            }
        };
        tpl.add_partition_offset(&topic, *p, offset)
            .map_err(kafka_err("assigning partitions"))?;
        source.start.insert(*p, offset);
    }
    source.unassigned = Some(tpl);
    // Bounded reads end at each partition's end-of-partition event (the broker's high
    // watermark when the consumer caught up), which works on brokers whose ListOffsets is
    // approximate.
    if bounded {
        source.end = Some(mine.iter().map(|p| (*p, false)).collect());
    }
    source.consumer = Some(consumer);
    source.assigned = mine;
    Ok(Box::new(source))
}

impl KafkaSource {
    fn finished(&self) -> bool {
        if self.max_messages > 0 && self.received >= self.max_messages {
            return true;
        }
        match &self.end {
            Some(end) => self.pending.is_empty() && end.values().all(|done| *done),
            None => false,
        }
    }

    /// Commits what was read to the group (not in a checkpointed job: it commits at `seek`).
    fn commit(&self, mode: CommitMode) {
        if !self.checkpointed {
            self.commit_offsets(&self.next, mode);
        }
    }

    /// Commits `offsets` (partition → next offset) to the group, if the source commits.
    fn commit_offsets(&self, offsets: &HashMap<i32, i64>, mode: CommitMode) {
        if !self.commit || offsets.is_empty() {
            return;
        }
        if let Some(c) = &self.consumer {
            let mut tpl = TopicPartitionList::new();
            for (p, o) in offsets {
                let _ = tpl.add_partition_offset(&self.topic, *p, Offset::Offset(*o));
            }
            if let Err(e) = c.commit(&tpl, mode) {
                tracing::warn!("kafka source on {}: committing offsets: {e}", self.topic);
            }
        }
    }

    /// Commits the positions sought to once their checkpoint is durable.
    fn commit_durable(&mut self) {
        if self.durable.as_ref().is_some_and(|g| !g.is_open()) {
            return;
        }
        if let Some(offsets) = self.to_commit.take() {
            self.commit_offsets(&offsets, CommitMode::Sync);
        }
    }

    /// Closes the consumer on a thread of its own: librdkafka can take up to a second, and the
    /// worker (at the end of a bounded read, or dropping a job at a checkpoint) goes on at once.
    fn close(&mut self) {
        if let Some(c) = self.consumer.take() {
            std::thread::spawn(move || drop(c));
        }
    }
}

impl Drop for KafkaSource {
    fn drop(&mut self) {
        self.close();
    }
}

impl KafkaSource {
    /// Decodes one partition's records: values into rows (a record that does not decode,
    /// an empty or null one, or one without its event time, is a bad record with its own
    /// partition, offset and payload), tombstones of a table into delete rows.
    fn decode(&mut self, mine: &[Record]) -> Result<(Option<RecordBatch>, Vec<BadRecord>)> {
        let is_tomb =
            |r: &Record| r.payload.is_none() && self.tombstones.is_some() && r.key.is_some();
        let (tombs, values): (Vec<&Record>, Vec<&Record>) = mine.iter().partition(|r| is_tomb(r));
        let payloads: Vec<&[u8]> = values
            .iter()
            .map(|r| r.payload.as_deref().unwrap_or_default())
            .collect();
        let (batch, mut bad) = self
            .format
            .decode_messages(&self.strict_schema, &payloads)?;
        let mut batch = batch
            .map(|b| crate::format::relax(b, &self.decode_schema))
            .transpose()?;
        let mut failed = std::collections::HashSet::new();
        for b in bad.iter_mut() {
            let idx = crate::format::message_index(b);
            failed.insert(idx);
            if let Some(r) = values.get(idx) {
                b.position = format!("{}/{}@{}", self.topic, r.partition, r.offset);
                b.payload = r.payload.clone().unwrap_or_default();
            }
        }
        // The rows, in offset order: the records that decoded, and tombstones.
        let bad_offsets: std::collections::HashSet<i64> = failed
            .iter()
            .filter_map(|i| values.get(*i))
            .map(|r| r.offset)
            .collect();
        self.last_rows.clear();
        self.last_rows.extend(
            mine.iter()
                .filter(|r| !bad_offsets.contains(&r.offset))
                .map(|r| (r.partition, r.offset)),
        );
        let good = values
            .iter()
            .enumerate()
            .filter(|(i, _)| !failed.contains(i))
            .map(|(_, r)| *r);
        if let Some(t) = &self.tombstones {
            let good: Vec<&Record> = good.collect();
            batch = tombstone::merge(&self.schema, t, batch, &good, &tombs)?;
        } else if let Some(encode) = self.positions {
            let good = good.map(|r| encode(r.partition, r.offset));
            batch = batch
                .map(|b| crate::with_positions(&self.schema, b, good.collect()))
                .transpose()?;
        }
        Ok((batch, bad))
    }
}

impl Source for KafkaSource {
    fn row_position(&self, row: usize) -> Option<String> {
        let (p, o) = self.last_rows.get(row)?;
        Some(format!("{}/{p}@{o}", self.topic))
    }

    fn poll(&mut self, max_rows: usize) -> Result<Poll> {
        if self.consumer.is_none() || self.finished() {
            self.commit(CommitMode::Sync);
            self.close();
            return Ok(Poll::Done);
        }
        if let (Some(consumer), Some(tpl)) = (self.consumer.as_ref(), self.unassigned.take()) {
            consumer
                .assign(&tpl)
                .map_err(kafka_err("assigning partitions"))?;
        }
        self.commit_durable();
        let Some(consumer) = self.consumer.as_ref() else {
            return Ok(Poll::Done);
        };
        let mut limit = max_rows;
        if self.max_messages > 0 {
            limit = limit.min((self.max_messages - self.received) as usize);
        }
        // A short wait: the worker runs other jobs too; an idle source is polled again soon.
        let mut wait = Duration::from_millis(10);
        while self.pending.len() < limit {
            match consumer.poll(wait) {
                None => break,
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                    self.caught_up.insert(p, true);
                    if let Some(end) = self.end.as_mut() {
                        end.insert(p, true);
                        if end.values().all(|d| *d) {
                            break;
                        }
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!("kafka source on {}: {e}", self.topic);
                    break;
                }
                Some(Ok(m)) => {
                    wait = Duration::ZERO;
                    let (p, off) = (m.partition(), m.offset());
                    // After a seek the consumer may still hand out records it fetched
                    // before (librdkafka keeps them queued): a record before the partition's
                    // next offset was read already.
                    if self.next.get(&p).is_some_and(|n| off < *n) {
                        continue;
                    }
                    tracing::trace!("kafka source on {}: partition {p} offset {off}", self.topic);
                    self.next.insert(p, off + 1);
                    self.caught_up.insert(p, false);
                    // A null payload is a tombstone in a table; anywhere else it becomes a
                    // dead letter when decoded, never a silent drop.
                    let payload = m.payload().map(|b| b.to_vec());
                    ConnectorMetrics::add(&self.metrics.messages, 1);
                    ConnectorMetrics::add(
                        &self.metrics.bytes,
                        payload.as_ref().map(|b| b.len()).unwrap_or(0) as u64,
                    );
                    self.pending.push(Record {
                        partition: p,
                        offset: off,
                        payload,
                        key: m.key().map(|k| k.to_vec()),
                        timestamp: m.timestamp().to_millis(),
                    });
                }
            }
        }
        if self.pending.is_empty() {
            return Ok(Poll::Idle);
        }
        // One partition per batch, so the engine can keep a watermark per partition.
        let part = self.pending[0].partition;
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|r| r.partition == part);
        self.pending = rest;
        self.received += mine.len() as u64;
        if let Some(last) = mine.iter().map(|r| r.offset).max() {
            self.returned.insert(part, last + 1);
        }
        let (batch, bad) = self.decode(&mine)?;
        ConnectorMetrics::add(&self.metrics.decode_errors, bad.len() as u64);
        if self.received % 10_000 < mine.len() as u64 {
            self.commit(CommitMode::Async);
        }
        Ok(Poll::Data {
            batch,
            bad,
            partition: Some(part as u32),
        })
    }

    /// Each assigned partition (`"3"`) → the offset after the last record returned; in a
    /// bounded read, `"end/3"` for each partition read to its end.
    fn position(&self) -> Option<crate::Position> {
        let mut p: crate::Position = self
            .returned
            .iter()
            .map(|(p, o)| (p.to_string(), o.to_string()))
            .collect();
        for (part, _) in self.end.iter().flatten().filter(|(_, done)| **done) {
            p.insert(format!("end/{part}"), "1".into());
        }
        Some(p)
    }

    /// Assigns this instance's partitions again, each at its offset in `position` (the others
    /// where they were), and drops what was fetched but not returned.
    fn seek(&mut self, position: &crate::Position) -> Result<()> {
        let Some(consumer) = self.consumer.as_ref() else {
            return Ok(());
        };
        let mut tpl = TopicPartitionList::new();
        for p in &self.assigned {
            let offset = match position.get(&p.to_string()) {
                Some(o) => Offset::Offset(o.parse().map_err(|_| {
                    Error::Unsupported(format!("kafka: a position '{o}' it never gave"))
                })?),
                None => match self.returned.get(p) {
                    Some(o) => Offset::Offset(*o),
                    None => self.start.get(p).copied().unwrap_or(Offset::Beginning),
                },
            };
            if let Offset::Offset(o) = offset {
                self.returned.insert(*p, o);
                self.next.insert(*p, o);
            }
            tpl.add_partition_offset(&self.topic, *p, offset)
                .map_err(kafka_err("seeking"))?;
        }
        if self.unassigned.take().is_none() {
            consumer.unassign().map_err(kafka_err("seeking"))?;
        }
        consumer.assign(&tpl).map_err(kafka_err("seeking"))?;
        if self.checkpointed {
            // A checkpointed job is sought only to a checkpoint: once it is durable, that is
            // the progress the group may know (for lag and other tools).
            self.to_commit = Some(self.returned.clone());
            self.commit_durable();
        }
        self.pending.clear();
        self.caught_up.clear();
        // A bounded read finishes each partition at its end-of-partition event, and a position
        // says which partitions got there. (Not from the listed high watermark: Tansu lists the
        // first offset of a partition's last batch there, so a position inside that batch
        // would look finished with records still to read.)
        if let Some(end) = self.end.as_mut() {
            for (p, done) in end.iter_mut() {
                *done = position.contains_key(&format!("end/{p}"));
            }
        }
        Ok(())
    }

    fn partitions(&self) -> Vec<(u32, PartitionState)> {
        self.assigned
            .iter()
            .map(|p| {
                let finished = self
                    .end
                    .as_ref()
                    .and_then(|e| e.get(p).copied())
                    .unwrap_or(false);
                let state = if finished {
                    PartitionState::Finished
                } else if self.caught_up.get(p).copied().unwrap_or(false) {
                    PartitionState::CaughtUp
                } else {
                    PartitionState::Reading
                };
                (*p as u32, state)
            })
            .collect()
    }
}
