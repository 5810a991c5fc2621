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
use crate::format::sparkplug::SparkplugDecoder;
use super::{connection, next_backoff};
use crate::format::Format;
use crate::{BadRecord, ConnectorMetrics, Options, Poll, Result, Source, SourceContext};

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
    sparkplug: Option<SparkplugDecoder>,
    max_messages: u64,
    stop_after_idle: Option<Duration>,
    last_message: std::time::Instant,
    received: u64,
    metrics: Arc<ConnectorMetrics>,
}

/// Builds the MQTT source.
pub fn build(ctx: SourceContext) -> Result<Box<dyn Source>> {
    let mut o = Options::new("mqtt", ctx.options);
    let filter = o.required("topic")?;
    let topics = TopicColumns::new(&filter, o.string("topic_columns").as_deref())?;
    let max_messages = o.u64("max_messages", 0)?;
    let stop_after_idle = match o.duration_ms("stop_after_idle", 0)? {
        0 => None,
        ms => Some(Duration::from_millis(ms as u64)),
    };
    let conn = connection(&mut o, format!("weir-{}-{}", ctx.name, std::process::id()))?;
    o.finish()?;
    let is_sparkplug = matches!(ctx.format.as_deref().map(|f| f.to_ascii_lowercase()).as_deref(), Some("sparkplug") | Some("sparkplug_b"));
    let sparkplug = if is_sparkplug {
        SparkplugDecoder::check_schema(&ctx.schema)?;
        if topics.names().next().is_some() {
            return Err(crate::Error::Option { option: "topic_columns".into(), message: "Sparkplug B rows carry group_id, edge_node and device already".into() });
        }
        Some(SparkplugDecoder::default())
    } else {
        None
    };
    let format = if is_sparkplug { Format::Json } else { Format::parse(ctx.format.as_deref(), Format::Json)? };
    for t in topics.names() {
        if ctx.schema.field_with_name(t).is_err() {
            return Err(crate::Error::Column { column: t.into(), message: "named in topic_columns but not declared".into() });
        }
    }
    let payload_schema = Arc::new(Schema::new(
        ctx.schema.fields().iter().filter(|f| !topics.contains(f.name())).cloned().collect::<Vec<_>>(),
    ));
    let metrics = ctx.metrics.clone();
    let rx = if ctx.worker == 0 {
        let (tx, rx) = mpsc::sync_channel(65_536);
        let name = ctx.name.clone();
        let m = metrics.clone();
        std::thread::Builder::new()
            .name(format!("mqtt-{name}"))
            .spawn(move || run_connection(name, conn.options, conn.qos, filter, tx, m))
            .map_err(|e| crate::Error::io("starting the MQTT thread", e))?;
        Some(rx)
    } else {
        None
    };
    Ok(Box::new(MqttSource {
        rx,
        schema: ctx.schema,
        payload_schema,
        topics,
        format,
        sparkplug,
        max_messages,
        stop_after_idle,
        last_message: std::time::Instant::now(),
        received: 0,
        metrics,
    }))
}

fn run_connection(name: String, options: rumqttc::MqttOptions, qos: QoS, filter: String, tx: SyncSender<Message>, m: Arc<ConnectorMetrics>) {
    let (client, mut connection) = Client::new(options, 1024);
    let mut backoff = Duration::from_millis(100);
    let mut was_connected = false;
    for event in connection.iter() {
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                if was_connected {
                    m.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                was_connected = true;
                backoff = Duration::from_millis(100);
                tracing::info!("mqtt source '{name}': connected (session present: {})", ack.session_present);
                if let Err(e) = client.try_subscribe(filter.clone(), qos) {
                    tracing::warn!("mqtt source '{name}': subscribing to {filter}: {e}");
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                tracing::info!("mqtt source '{name}': subscribed to {filter}");
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                m.messages.fetch_add(1, Ordering::Relaxed);
                m.bytes.fetch_add(p.payload.len() as u64, Ordering::Relaxed);
                if tx.send(Message { topic: p.topic, payload: p.payload.to_vec() }).is_err() {
                    let _ = client.try_disconnect();
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!("mqtt source '{name}': connection lost ({e}); retrying in {backoff:?}");
                std::thread::sleep(backoff);
                backoff = next_backoff(backoff);
            }
        }
    }
}

impl MqttSource {
    fn decode(&mut self, msgs: Vec<Message>) -> Result<(Option<RecordBatch>, Vec<BadRecord>)> {
        if let Some(sp) = self.sparkplug.as_mut() {
            let first = self.received - msgs.len() as u64;
            let items: Vec<(&str, &[u8], String)> = msgs
                .iter()
                .enumerate()
                .map(|(i, m)| (m.topic.as_str(), m.payload.as_slice(), format!("{}#{}", m.topic, first + i as u64)))
                .collect();
            return sp.decode(&self.schema, &items);
        }
        let mut chunk = Vec::with_capacity(msgs.iter().map(|m| m.payload.len() + 1).sum());
        let mut lines = 0;
        for m in &msgs {
            chunk.extend(m.payload.iter().map(|b| if *b == b'\n' || *b == b'\r' { b' ' } else { *b }));
            if m.payload.iter().all(|b| b.is_ascii_whitespace()) {
                chunk.extend_from_slice(b"<empty payload>");
            }
            chunk.push(b'\n');
            lines += 1;
        }
        let first = self.received - msgs.len() as u64;
        let (batch, mut bad) = self.format.decode(&self.payload_schema, &chunk, lines, "", 0)?;
        let mut good = vec![true; msgs.len()];
        for b in bad.iter_mut() {
            let idx: usize = b.position.trim_start_matches(':').parse().unwrap_or(0);
            if let Some(m) = msgs.get(idx) {
                good[idx] = false;
                b.position = format!("{}#{}", m.topic, first + idx as u64);
                b.payload = m.payload.clone();
            }
        }
        let Some(batch) = batch else { return Ok((None, bad)) };
        let topics: Vec<&str> = msgs.iter().zip(&good).filter(|(_, g)| **g).map(|(m, _)| m.topic.as_str()).collect();
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for f in self.schema.fields() {
            if self.topics.contains(f.name()) {
                let vals: StringArray = topics.iter().map(|t| self.topics.value(f.name(), t)).collect();
                cols.push(cast(&(Arc::new(vals) as ArrayRef), f.data_type())?);
            } else {
                let i = self.payload_schema.index_of(f.name())?;
                cols.push(batch.column(i).clone());
            }
        }
        Ok((Some(RecordBatch::try_new(self.schema.clone(), cols)?), bad))
    }
}

impl Source for MqttSource {
    fn poll(&mut self, max_rows: usize) -> Result<Poll> {
        let Some(rx) = self.rx.as_ref() else { return Ok(Poll::Done) };
        if self.max_messages > 0 && self.received >= self.max_messages {
            self.rx = None;
            return Ok(Poll::Done);
        }
        let mut msgs = Vec::new();
        let limit = if self.max_messages > 0 { max_rows.min((self.max_messages - self.received) as usize) } else { max_rows };
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
            std::thread::sleep(Duration::from_millis(2));
            return Ok(Poll::Idle);
        }
        self.last_message = std::time::Instant::now();
        self.received += msgs.len() as u64;
        let (batch, bad) = self.decode(msgs)?;
        ConnectorMetrics::add(&self.metrics.decode_errors, bad.len() as u64);
        Ok(Poll::Data { batch, bad, partition: None })
    }
}
