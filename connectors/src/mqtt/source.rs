//! MQTT source: a background thread keeps the connection (reconnecting with backoff) and hands
//! received messages to the worker, which decodes them in batches (JSON payloads, one object
//! per message) and adds the topic columns. Subscribed by worker 0.
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use rumqttc::{Client, Event, Packet, QoS};

use super::topic::TopicColumns;
use super::{connection, next_backoff};
use crate::format::sparkplug::SparkplugDecoder;
use crate::format::Format;
use crate::{BadRecord, ConnectorMetrics, Options, Poll, Result, Source, SourceContext};

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
    resumable: false,
};

struct Message {
    topic: String,
    payload: Vec<u8>,
}

/// The MQTT source on one worker.
pub struct MqttSource {
    rx: Option<Receiver<Message>>,
    schema: SchemaRef,
    payload_schema: SchemaRef,
    topics: TopicColumns,
    format: Format,
    extra_column: Option<String>,
    sparkplug: Option<SparkplugDecoder>,
    max_messages: u64,
    stop_after_idle: Option<Duration>,
    last_message: std::time::Instant,
    received: u64,
    metrics: Arc<ConnectorMetrics>,
    archive: Option<super::archive::Archive>,
    /// `position_column`: the schema's last column, filled with each message's worker and
    /// archive sequence number (for provenance; needs `archive`).
    position_column: Option<String>,
    /// Packs a worker and a sequence number into a position.
    encode: fn(i32, i64) -> i64,
    worker: usize,
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
    let rx = if ctx.worker == 0 || shared_group.is_some() {
        let (tx, rx) = mpsc::sync_channel(65_536);
        let name = ctx.name.clone();
        let m = metrics.clone();
        std::thread::Builder::new()
            .name(format!("mqtt-{name}"))
            .spawn(move || {
                if v5 {
                    run_connection_v5(name, conn, subscribe_to, tx, m)
                } else {
                    run_connection(name, conn, subscribe_to, tx, m)
                }
            })
            .map_err(|e| crate::Error::io("starting the MQTT thread", e))?;
        Some(rx)
    } else {
        None
    };
    // Only a worker that subscribes receives messages to archive.
    let archive = archive_dir
        .filter(|_| rx.is_some())
        .map(|d| super::archive::Archive::open(&d, &ctx.name, ctx.worker))
        .transpose()?;
    Ok(Box::new(MqttSource {
        rx,
        schema: ctx.schema,
        payload_schema,
        topics,
        format,
        extra_column,
        sparkplug,
        max_messages,
        stop_after_idle,
        last_message: std::time::Instant::now(),
        received: 0,
        metrics,
        archive,
        position_column,
        encode,
        worker: ctx.worker,
    }))
}

/// A connection event, the same for both protocol versions.
enum Ev {
    ConnAck(bool),
    SubAck,
    Publish(String, Vec<u8>),
    Lost(String),
    Other,
}

/// Drives one connection: counts, subscribes on every (re)connect, forwards messages, backs
/// off after a lost connection (the client reconnects on the next poll).
#[allow(clippy::too_many_arguments)]
fn drive(
    name: &str,
    filter: &str,
    protocol: &str,
    events: impl Iterator<Item = Ev>,
    subscribe: impl Fn() -> std::result::Result<(), String>,
    disconnect: impl Fn(),
    tx: SyncSender<Message>,
    m: Arc<ConnectorMetrics>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut was_connected = false;
    for event in events {
        match event {
            Ev::ConnAck(session_present) => {
                if was_connected {
                    m.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                was_connected = true;
                backoff = Duration::from_millis(100);
                tracing::info!("mqtt source '{name}': connected with MQTT {protocol} (session present: {session_present})");
                if let Err(e) = subscribe() {
                    tracing::warn!("mqtt source '{name}': subscribing to {filter}: {e}");
                }
            }
            Ev::SubAck => tracing::info!("mqtt source '{name}': subscribed to {filter}"),
            Ev::Publish(topic, payload) => {
                m.messages.fetch_add(1, Ordering::Relaxed);
                m.bytes.fetch_add(payload.len() as u64, Ordering::Relaxed);
                if tx.send(Message { topic, payload }).is_err() {
                    disconnect();
                    return;
                }
            }
            Ev::Lost(e) => {
                tracing::warn!(
                    "mqtt source '{name}': connection lost ({e}); retrying in {backoff:?}"
                );
                std::thread::sleep(backoff);
                backoff = next_backoff(backoff);
            }
            Ev::Other => {}
        }
    }
}

fn run_connection(
    name: String,
    conn: super::Conn,
    filter: String,
    tx: SyncSender<Message>,
    m: Arc<ConnectorMetrics>,
) {
    let qos = conn.qos;
    let (client, mut connection) = Client::new(conn.v4(), 1024);
    let events = connection.iter().map(|e| match e {
        Ok(Event::Incoming(Packet::ConnAck(a))) => Ev::ConnAck(a.session_present),
        Ok(Event::Incoming(Packet::SubAck(_))) => Ev::SubAck,
        Ok(Event::Incoming(Packet::Publish(p))) => Ev::Publish(p.topic, p.payload.to_vec()),
        Ok(_) => Ev::Other,
        Err(e) => Ev::Lost(e.to_string()),
    });
    drive(
        &name,
        &filter,
        "3.1.1",
        events,
        || {
            client
                .try_subscribe(filter.clone(), qos)
                .map_err(|e| e.to_string())
        },
        || {
            let _ = client.try_disconnect();
        },
        tx,
        m,
    );
}

fn run_connection_v5(
    name: String,
    conn: super::Conn,
    filter: String,
    tx: SyncSender<Message>,
    m: Arc<ConnectorMetrics>,
) {
    use rumqttc::v5::mqttbytes::v5::Packet as P5;
    use rumqttc::v5::mqttbytes::QoS as Q5;
    use rumqttc::v5::{Client as C5, Event as E5};
    let qos = match conn.qos {
        QoS::AtMostOnce => Q5::AtMostOnce,
        QoS::AtLeastOnce => Q5::AtLeastOnce,
        QoS::ExactlyOnce => Q5::ExactlyOnce,
    };
    let (client, mut connection) = C5::new(conn.v5(), 1024);
    let events = connection.iter().map(|e| match e {
        Ok(E5::Incoming(P5::ConnAck(a))) => Ev::ConnAck(a.session_present),
        Ok(E5::Incoming(P5::SubAck(_))) => Ev::SubAck,
        Ok(E5::Incoming(P5::Publish(p))) => Ev::Publish(
            String::from_utf8_lossy(&p.topic).to_string(),
            p.payload.to_vec(),
        ),
        Ok(_) => Ev::Other,
        Err(e) => Ev::Lost(e.to_string()),
    });
    drive(
        &name,
        &filter,
        "5",
        events,
        || {
            client
                .try_subscribe(filter.clone(), qos)
                .map_err(|e| e.to_string())
        },
        || {
            let _ = client.try_disconnect();
        },
        tx,
        m,
    );
}

impl MqttSource {
    /// Decodes `msgs`; `seqs` are their archive sequence numbers (empty without an archive).
    fn decode(
        &mut self,
        msgs: Vec<Message>,
        seqs: &[u64],
    ) -> Result<(Option<RecordBatch>, Vec<BadRecord>)> {
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
        let mut chunk = Vec::with_capacity(msgs.iter().map(|m| m.payload.len() + 1).sum());
        let mut lines = 0;
        for m in &msgs {
            chunk.extend(
                m.payload
                    .iter()
                    .map(|b| if *b == b'\n' || *b == b'\r' { b' ' } else { *b }),
            );
            if m.payload.iter().all(|b| b.is_ascii_whitespace()) {
                chunk.extend_from_slice(b"<empty payload>");
            }
            chunk.push(b'\n');
            lines += 1;
        }
        let first = self.received - msgs.len() as u64;
        let (batch, mut bad) = self
            .format
            .decode(&self.payload_schema, &chunk, lines, "", 0)?;
        let mut good = vec![true; msgs.len()];
        for b in bad.iter_mut() {
            let idx: usize = b.position.trim_start_matches(':').parse().unwrap_or(0);
            if let Some(m) = msgs.get(idx) {
                good[idx] = false;
                b.position = format!("{}#{}", m.topic, first + idx as u64);
                b.payload = m.payload.clone();
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
                let worker = self.worker as i32;
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
        Ok((Some(RecordBatch::try_new(self.schema.clone(), cols)?), bad))
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

impl Source for MqttSource {
    fn poll(&mut self, max_rows: usize) -> Result<Poll> {
        let Some(rx) = self.rx.as_ref() else {
            return Ok(Poll::Done);
        };
        if self.max_messages > 0 && self.received >= self.max_messages {
            self.rx = None;
            return Ok(Poll::Done);
        }
        let mut msgs = Vec::new();
        let limit = if self.max_messages > 0 {
            max_rows.min((self.max_messages - self.received) as usize)
        } else {
            max_rows
        };
        while msgs.len() < limit {
            match rx.try_recv() {
                Ok(m) => msgs.push(m),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    if msgs.is_empty() {
                        self.rx = None;
                        return Ok(Poll::Done);
                    }
                    break;
                }
            }
        }
        if msgs.is_empty() {
            if let Some(idle) = self.stop_after_idle {
                if self.received > 0 && self.last_message.elapsed() >= idle {
                    self.rx = None;
                    return Ok(Poll::Done);
                }
            }
            return Ok(Poll::Idle);
        }
        self.last_message = std::time::Instant::now();
        self.received += msgs.len() as u64;
        let mut seqs = Vec::new();
        if let Some(a) = self.archive.as_mut() {
            for m in &msgs {
                seqs.push(a.append(&m.topic, &m.payload)?);
            }
            a.flush()?;
        }
        let (batch, bad) = self.decode(msgs, &seqs)?;
        ConnectorMetrics::add(&self.metrics.decode_errors, bad.len() as u64);
        Ok(Poll::Data {
            batch,
            bad,
            partition: None,
        })
    }
}
