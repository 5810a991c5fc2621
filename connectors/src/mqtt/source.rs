//! MQTT source: a background thread keeps the connection (`session.rs`) and hands received
//! messages to the worker, which decodes them in batches (JSON payloads, one object per
//! message) and adds the topic columns. Subscribed by worker 0 (or every worker, with a shared
//! group).
//!
//! With an `archive`, a poll's messages are appended to it and fsynced before they are
//! acknowledged (manual acks), redeliveries already archived are dropped (`dedup.rs`), and the
//! source has a position — each archive's next sequence number and offset — so a checkpointed
//! job restored after kill -9 replays what was archived after its checkpoint (`replay.rs`)
//! and then goes on with what the broker kept for its persistent session.
use std::sync::mpsc::TryRecvError;
use std::sync::Arc;
use std::time::Duration;

use super::archive::Archive;
use super::connection;
use super::dedup::Dedup;
use super::replay::{At, Replay};
use super::session::{Message, Session};
use super::topic::TopicColumns;
use crate::format::sparkplug::SparkplugDecoder;
use crate::format::Format;
use crate::{BadRecord, ConnectorMetrics, Options, Poll, Result, Source, SourceContext};
use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;

/// The MQTT source's options.
pub const SPEC: crate::ConnectorSpec = crate::ConnectorSpec {
    name: "mqtt",
    tables: crate::describe::Tables::Stream,
    formats: &["json", "csv", "sparkplug"],
    options: &[super::SOURCE, super::CONNECTION],
    provenance: crate::describe::Provenance::Archived {
        kind: "mqtt",
        at: "archive",
        hint:
            "add archive = 'DIR' to the source: a broker cannot replay a message, the archive can",
    },
    dataset: Some(super::dataset),
    resumable: crate::describe::Resumable::When(super::resume::resumable),
    live: true,
};

/// The MQTT source on one worker.
pub struct MqttSource {
    session: Option<Session>,
    schema: SchemaRef,
    payload_schema: SchemaRef,
    /// The same with the event-time column required: a message without it is a dead letter.
    strict_payload: SchemaRef,
    /// The topic and sequence of each row of the last batch returned (JSON and CSV payloads).
    last_rows: Vec<(String, u64)>,
    /// A message larger than this many bytes is a dead letter.
    max_message_size: usize,
    topics: TopicColumns,
    format: Format,
    extra_column: Option<String>,
    sparkplug: Option<SparkplugDecoder>,
    max_messages: u64,
    stop_after_idle: Option<Duration>,
    last_message: std::time::Instant,
    received: u64,
    metrics: Arc<ConnectorMetrics>,
    archive: Option<Archive>,
    /// Archives being read back after a restore, before live messages.
    replays: Vec<Replay>,
    /// Where the replayed archives of other workers ended (restored on fewer workers).
    replayed: crate::Position,
    /// The archive directory (every worker, subscribing or not: the source has a position).
    archive_dir: Option<String>,
    /// `position_column`: the schema's last column, filled with each message's worker and
    /// archive sequence number (for provenance; needs `archive`).
    position_column: Option<String>,
    /// Packs a worker and a sequence number into a position.
    encode: fn(i32, i64) -> i64,
    worker: usize,
    workers: usize,
    name: String,
    /// Sought to a checkpoint's position: `stop_after_idle` counts from the start, as if a
    /// message had arrived.
    resumed: bool,
}

/// Builds the MQTT source.
pub fn build(ctx: SourceContext) -> Result<Box<dyn Source>> {
    let mut o = Options::new(&SPEC, ctx.options);
    let filter = o.required("topic")?;
    let protocol = o.string("protocol").unwrap_or_else(|| "3.1.1".into());
    let v5 = match protocol.as_str() {
        "3.1.1" | "3" | "4" => false,
        "5" | "5.0" => true,
        other => {
            return Err(crate::Error::Option {
                option: "protocol".into(),
                message: format!("expected 3.1.1 or 5, got '{other}'"),
            })
        }
    };
    let shared_group = o.string("shared_group");
    let topics = TopicColumns::new(&filter, o.string("topic_columns").as_deref())?;
    let max_messages = o.u64("max_messages", 0)?;
    let max_message_size = o.u64("max_message_size", 4 << 20)?.max(1) as usize;
    let extra_column = o.string("extra_column").map(|s| s.to_ascii_lowercase());
    if let Some(x) = &extra_column {
        match ctx.schema.field_with_name(x) {
            Ok(f) if f.data_type() == &datafusion::arrow::datatypes::DataType::Utf8 => {}
            _ => {
                return Err(crate::Error::Column {
                    column: x.clone(),
                    message: "extra_column must be a declared TEXT column".into(),
                })
            }
        }
    }
    let stop_after_idle = match o.duration_ms("stop_after_idle", 0)? {
        0 => None,
        ms => Some(Duration::from_millis(ms as u64)),
    };
    let archive_dir = o.string("archive");
    let window = o.u64("dedup_window", 100_000)? as usize;
    let position_column = ctx.internal.positions.as_ref().map(|p| p.column.clone());
    let encode = ctx
        .internal
        .positions
        .as_ref()
        .map(|p| p.encode)
        .unwrap_or(|_, s| s);
    let conn = connection(&mut o, format!("weir-{}-{}", ctx.name, std::process::id()))?;
    o.finish()?;
    if position_column.is_some() && archive_dir.is_none() {
        return Err(crate::Error::Option {
            option: "archive".into(),
            message:
                "provenance over MQTT needs archive = 'DIR': the messages are read back from there"
                    .into(),
        });
    }

    let is_sparkplug = matches!(
        ctx.format
            .as_deref()
            .map(|f| f.to_ascii_lowercase())
            .as_deref(),
        Some("sparkplug") | Some("sparkplug_b")
    );
    let sparkplug = if is_sparkplug {
        if position_column.is_some() {
            return Err(crate::Error::Option {
                option: "format".into(),
                message: "provenance does not cover Sparkplug B sources yet".into(),
            });
        }
        SparkplugDecoder::check_schema(&ctx.schema)?;
        if topics.names().next().is_some() {
            return Err(crate::Error::Option {
                option: "topic_columns".into(),
                message: "Sparkplug B rows carry group_id, edge_node and device already".into(),
            });
        }
        Some(SparkplugDecoder::default())
    } else {
        None
    };
    let format = if is_sparkplug {
        Format::Json
    } else {
        Format::parse(ctx.format.as_deref(), Format::Json)?
    };
    for t in topics.names() {
        if ctx.schema.field_with_name(t).is_err() {
            return Err(crate::Error::Column {
                column: t.into(),
                message: "named in topic_columns but not declared".into(),
            });
        }
    }
    let payload_schema = Arc::new(Schema::new(
        ctx.schema
            .fields()
            .iter()
            .filter(|f| {
                !topics.contains(f.name())
                    && Some(f.name()) != extra_column.as_ref()
                    && Some(f.name()) != position_column.as_ref()
            })
            .cloned()
            .collect::<Vec<_>>(),
    ));
    let metrics = ctx.metrics.clone();
    // With a shared group every worker subscribes to `$share/<group>/<filter>` under its own
    // client id and the broker spreads the messages; otherwise worker 0 subscribes alone.
    let (subscribe_to, conn) = match &shared_group {
        Some(g) => (
            format!("$share/{g}/{filter}"),
            conn.with_id(format!("{}-w{}", conn.id, ctx.worker)),
        ),
        None => (filter.clone(), conn),
    };
    if ctx.internal.checkpointed && sparkplug.is_some() {
        return Err(crate::Error::Option {
            option: "format".into(),
            message: "a Sparkplug B source cannot be checkpointed yet (its alias tables are not)"
                .into(),
        });
    }
    let session = if ctx.worker == 0 || shared_group.is_some() {
        let manual = archive_dir.is_some();
        Some(Session::start(
            ctx.name.clone(),
            &conn,
            v5,
            manual,
            subscribe_to,
            metrics.clone(),
        )?)
    } else {
        None
    };
    // Only a worker that subscribes receives messages to archive.
    let archive = archive_dir
        .as_ref()
        .filter(|_| session.is_some())
        .map(|d| Archive::open(d, &ctx.name, ctx.worker, window))
        .transpose()?;
    let strict_payload =
        crate::format::requiring(&payload_schema, ctx.internal.event_time.as_deref());
    Ok(Box::new(MqttSource {
        session,
        schema: ctx.schema,
        payload_schema,
        strict_payload,
        last_rows: Vec::new(),
        max_message_size,
        topics,
        format,
        extra_column,
        sparkplug,
        max_messages,
        stop_after_idle,
        // The jobs of a checkpointed run share the archive: idleness counts across them.
        last_message: archive
            .as_ref()
            .map(|a| a.last_message)
            .unwrap_or_else(std::time::Instant::now),
        received: 0,
        metrics,
        archive,
        replays: Vec::new(),
        replayed: crate::Position::new(),
        archive_dir,
        position_column,
        encode,
        worker: ctx.worker,
        workers: ctx.workers,
        name: ctx.name,
        resumed: false,
    }))
}

impl MqttSource {
    /// Decodes `msgs`; `seqs` are their sequence numbers in worker `from`'s archive (empty
    /// without an archive).
    fn decode(
        &mut self,
        msgs: Vec<Message>,
        seqs: &[u64],
        from: usize,
    ) -> Result<(Option<RecordBatch>, Vec<BadRecord>)> {
        self.last_rows.clear();
        if let Some(sp) = self.sparkplug.as_mut() {
            let first = self.received - msgs.len() as u64;
            let items: Vec<(&str, &[u8], String)> = msgs
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    (
                        m.topic.as_str(),
                        m.payload.as_slice(),
                        format!("{}#{}", m.topic, first + i as u64),
                    )
                })
                .collect();
            return sp.decode(&self.schema, &items);
        }
        let first = self.received - msgs.len() as u64;
        let max = self.max_message_size;
        // An oversized message is decoded as empty (a bad record) and named as oversized below.
        let payloads: Vec<&[u8]> = msgs
            .iter()
            .map(|m| match m.payload.len() > max {
                true => &[][..],
                false => m.payload.as_slice(),
            })
            .collect();
        let (batch, mut bad) = self
            .format
            .decode_messages(&self.strict_payload, &payloads)?;
        let mut good = vec![true; msgs.len()];
        for b in bad.iter_mut() {
            let idx = crate::format::message_index(b);
            if let Some(m) = msgs.get(idx) {
                good[idx] = false;
                b.position = format!("{}#{}", m.topic, first + idx as u64);
                if m.payload.len() > max {
                    b.error = format!(
                        "a message of {} bytes, over max_message_size = {max}: its first 1 KiB is kept here",
                        m.payload.len()
                    );
                    b.payload = m.payload[..m.payload.len().min(1024)].to_vec();
                } else {
                    b.payload = m.payload.clone();
                }
            }
        }
        let Some(batch) = batch else {
            return Ok((None, bad));
        };
        let topics: Vec<&str> = msgs
            .iter()
            .zip(&good)
            .filter(|(_, g)| **g)
            .map(|(m, _)| m.topic.as_str())
            .collect();
        let payloads: Vec<&[u8]> = msgs
            .iter()
            .zip(&good)
            .filter(|(_, g)| **g)
            .map(|(m, _)| m.payload.as_slice())
            .collect();
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for f in self.schema.fields() {
            if Some(f.name()) == self.position_column.as_ref() {
                let worker = from as i32;
                let positions: datafusion::arrow::array::Int64Array = seqs
                    .iter()
                    .zip(&good)
                    .filter(|(_, g)| **g)
                    .map(|(s, _)| (self.encode)(worker, *s as i64))
                    .collect();
                cols.push(Arc::new(positions));
            } else if Some(f.name()) == self.extra_column.as_ref() {
                cols.push(Arc::new(extra_fields(&payloads, &self.payload_schema)));
            } else if self.topics.contains(f.name()) {
                let vals: StringArray = topics
                    .iter()
                    .map(|t| self.topics.value(f.name(), t))
                    .collect();
                cols.push(cast(&(Arc::new(vals) as ArrayRef), f.data_type())?);
            } else {
                let i = self.payload_schema.index_of(f.name())?;
                cols.push(batch.column(i).clone());
            }
        }
        let batch = RecordBatch::try_new(self.schema.clone(), cols)?;
        let rows = msgs
            .into_iter()
            .zip(good)
            .enumerate()
            .filter(|(_, (_, g))| *g);
        self.last_rows.clear();
        self.last_rows
            .extend(rows.map(|(i, (m, _))| (m.topic, first + i as u64)));
        Ok((Some(batch), bad))
    }
}

/// The fields of each JSON payload that are not declared columns, as a JSON object (NULL when
/// there are none).
fn extra_fields(payloads: &[&[u8]], declared: &Schema) -> StringArray {
    payloads
        .iter()
        .map(|p| match serde_json::from_slice::<serde_json::Value>(p) {
            Ok(serde_json::Value::Object(mut m)) => {
                for f in declared.fields() {
                    m.remove(f.name());
                }
                if m.is_empty() {
                    None
                } else {
                    Some(serde_json::Value::Object(m).to_string())
                }
            }
            _ => None,
        })
        .collect()
}

impl MqttSource {
    /// Reads on in the archives being replayed; `None` when there are none left.
    fn poll_replay(&mut self, max_rows: usize) -> Result<Option<Poll>> {
        while let Some(r) = self.replays.first_mut() {
            let items = r.read(max_rows)?;
            if items.is_empty() {
                let r = self.replays.remove(0);
                if !(self.archive.is_some() && r.part == format!("w{}", self.worker)) {
                    self.replayed.insert(r.part.clone(), r.at.text());
                }
                continue;
            }
            let from = r.part[1..].parse().unwrap_or(self.worker);
            let seqs: Vec<u64> = items.iter().map(|(s, _, _)| *s).collect();
            let msgs: Vec<Message> = items
                .into_iter()
                .map(|(_, topic, payload)| Message {
                    topic,
                    payload,
                    dup: false,
                    ack: None,
                })
                .collect();
            self.received += msgs.len() as u64;
            let (batch, bad) = self.decode(msgs, &seqs, from)?;
            ConnectorMetrics::add(&self.metrics.decode_errors, bad.len() as u64);
            return Ok(Some(Poll::Data {
                batch,
                bad,
                partition: None,
            }));
        }
        Ok(None)
    }

    /// Appends `msgs` to the archive — but a redelivery already there — fsyncs once, and only
    /// then acknowledges every one of them; returns the kept messages and their sequence
    /// numbers. Without an archive, returns them as they are.
    fn archive_and_ack(&mut self, msgs: Vec<Message>) -> Result<(Vec<Message>, Vec<u64>)> {
        let (Some(a), Some(session)) = (self.archive.as_mut(), self.session.as_ref()) else {
            return Ok((msgs, Vec::new()));
        };
        let mut kept = Vec::with_capacity(msgs.len());
        let mut seqs = Vec::with_capacity(msgs.len());
        let mut acks = Vec::with_capacity(msgs.len());
        for mut m in msgs {
            acks.extend(m.ack.take());
            if m.dup && a.dedup.contains(Dedup::key(&m.topic, &m.payload)) {
                ConnectorMetrics::add(&self.metrics.duplicates, 1);
                continue;
            }
            seqs.push(a.append(&m.topic, &m.payload)?);
            kept.push(m);
        }
        a.sync()?;
        for ack in &acks {
            session.ack(ack)?;
        }
        Ok((kept, seqs))
    }
}

impl Source for MqttSource {
    fn row_position(&self, row: usize) -> Option<String> {
        let (topic, seq) = self.last_rows.get(row)?;
        Some(format!("{topic}#{seq}"))
    }

    fn poll(&mut self, max_rows: usize) -> Result<Poll> {
        if let Some(p) = self.poll_replay(max_rows)? {
            return Ok(p);
        }
        let Some(rx) = self.session.as_ref().map(|s| &s.rx) else {
            return Ok(Poll::Done);
        };
        if self.max_messages > 0 && self.received >= self.max_messages {
            self.session = None;
            return Ok(Poll::Done);
        }
        let mut msgs = Vec::new();
        let limit = if self.max_messages > 0 {
            max_rows.min((self.max_messages - self.received) as usize)
        } else {
            max_rows
        };
        let mut gone = false;
        while msgs.len() < limit {
            match rx.try_recv() {
                Ok(m) => msgs.push(m),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    gone = true;
                    break;
                }
            }
        }
        if msgs.is_empty() {
            let idle = self.stop_after_idle.is_some_and(|idle| {
                (self.received > 0 || self.resumed) && self.last_message.elapsed() >= idle
            });
            if gone || idle {
                self.session = None;
                return Ok(Poll::Done);
            }
            return Ok(Poll::Idle);
        }
        self.last_message = std::time::Instant::now();
        if let Some(a) = self.archive.as_mut() {
            a.last_message = self.last_message;
        }
        let (msgs, seqs) = self.archive_and_ack(msgs)?;
        self.received += msgs.len() as u64;
        if msgs.is_empty() {
            return Ok(Poll::Idle);
        }
        let (batch, bad) = self.decode(msgs, &seqs, self.worker)?;
        ConnectorMetrics::add(&self.metrics.decode_errors, bad.len() as u64);
        Ok(Poll::Data {
            batch,
            bad,
            partition: None,
        })
    }

    /// With an archive: each archive's next sequence number and byte offset (`w<worker>`).
    fn position(&self) -> Option<crate::Position> {
        self.archive_dir.as_ref()?;
        let mut p = self.replayed.clone();
        if let Some(a) = &self.archive {
            let (seq, offset) = a.end();
            p.insert(format!("w{}", self.worker), At { seq, offset }.text());
        }
        for r in &self.replays {
            p.insert(r.part.clone(), r.at.text());
        }
        Some(p)
    }

    /// Replays, before live messages, what the archives hold after `position` — this
    /// worker's own, and those of workers that no longer run (`w<k>` with k mod workers equal
    /// to this worker).
    fn seek(&mut self, position: &crate::Position) -> Result<()> {
        let Some(dir) = self.archive_dir.clone() else {
            return Err(crate::Error::Unsupported(
                "an MQTT source without an archive cannot resume".into(),
            ));
        };
        self.replays.clear();
        self.replayed.clear();
        self.resumed = true;
        for (part, text) in position {
            let Some(k) = part.strip_prefix('w').and_then(|k| k.parse::<usize>().ok()) else {
                continue;
            };
            if k % self.workers.max(1) != self.worker {
                continue;
            }
            let at = At::parse(text).ok_or_else(|| {
                crate::Error::Unsupported(format!("a position '{text}' this source never gave"))
            })?;
            let own = k == self.worker && self.archive.is_some();
            let (path, end) = match self.archive.as_mut().filter(|_| own) {
                Some(a) => {
                    a.flush()?;
                    (a.path().to_path_buf(), a.end().1)
                }
                None => {
                    let p = super::archive::path(&dir, &self.name, k);
                    let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                    (p, len)
                }
            };
            if at.offset >= end {
                if !own {
                    self.replayed.insert(part.clone(), text.clone());
                }
                continue;
            }
            self.replays
                .push(Replay::open(part.clone(), &path, at, end)?);
        }
        Ok(())
    }
}
