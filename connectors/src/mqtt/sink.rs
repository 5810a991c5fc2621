//! MQTT sink: publishes each row as one JSON message. A background thread drives the
//! connection; `finish` waits (up to 30 s) until the broker has acknowledged every message
//! (QoS 1/2) or it has been sent (QoS 0).
//!
//! With a spool (`spool = 'DIR'`, or under `--state-dir` the sink's own directory there) rows
//! are appended to it on disk and a forwarder publishes them in order when the broker is
//! reachable (`spool.rs`, `forward.rs`); `finish` then waits up to 30 s for the spool to empty
//! and leaves what is left for the next run.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::record_batch::RecordBatch;
use rumqttc::{Client, Event, Outgoing, Packet, QoS};

use super::{connection, next_backoff};
use crate::format::Format;
use crate::{Error, Options, Result, Sink, SinkContext};

/// The MQTT sink's options.
pub const SPEC: crate::ConnectorSpec = crate::ConnectorSpec {
    name: "mqtt",
    tables: crate::describe::Tables::Stream,
    formats: &["json"],
    options: &[super::SINK, super::CONNECTION],
    provenance: crate::describe::Provenance::Untraced,
    dataset: Some(super::dataset),
    resumable: crate::describe::Resumable::No,
    live: false,
};

/// Publishes rows.
pub struct MqttSink {
    /// Store-and-forward: rows go to the spool, a forwarder publishes them.
    spool: Option<std::sync::Arc<super::spool::Spool>>,
    /// `id_field`: a field added to each message, a hash of its content.
    id_field: Option<String>,
    client: Option<Client>,
    topic: String,
    qos: QoS,
    retain: bool,
    published: u64,
    done: Arc<AtomicU64>,
    buf: Vec<u8>,
    metrics: Arc<crate::ConnectorMetrics>,
}

/// Builds the MQTT sink.
pub fn build(ctx: SinkContext) -> Result<Box<dyn Sink>> {
    let mut o = Options::new(&SPEC, ctx.options);
    let topic = o.required("topic")?;
    let retain = o.bool("retain", false)?;
    let spool_dir = o
        .string("spool")
        .map(std::path::PathBuf::from)
        .or(ctx.state_dir.clone());
    let spool_max = o.u64("spool_max", 1_000_000)?;
    let full = match o.string("spool_full").as_deref() {
        None | Some("block") => super::spool::Full::Block,
        Some("drop_oldest") => super::spool::Full::DropOldest,
        Some(other) => {
            return Err(Error::Option {
                option: "spool_full".into(),
                message: format!("expected 'block' or 'drop_oldest', got '{other}'"),
            })
        }
    };
    let id_field = o.string("id_field");
    let conn = connection(&mut o, format!("weir-{}-{}", ctx.name, std::process::id()))?;
    o.finish()?;
    if Format::parse(ctx.format.as_deref(), Format::Json)? != Format::Json {
        return Err(Error::Format("the mqtt sink writes json".into()));
    }
    if let Some(dir) = spool_dir {
        let (spool, opened) =
            super::spool::Spool::open(&dir, spool_max, full, ctx.metrics.clone())?;
        if let Some(at) = ctx.resume.as_ref().and_then(spool_mark) {
            spool.truncate_to(at)?;
        }
        if opened {
            super::forward::start(
                ctx.name.clone(),
                spool.clone(),
                &conn,
                topic.clone(),
                retain,
            )?;
        }
        return Ok(Box::new(MqttSink {
            spool: Some(spool),
            id_field,
            client: None,
            topic,
            qos: conn.qos,
            retain,
            published: 0,
            done: Arc::default(),
            buf: Vec::new(),
            metrics: ctx.metrics,
        }));
    }
    let (client, mut connection) = Client::new(conn.v4(), 1024);
    let done = Arc::new(AtomicU64::new(0));
    let d = done.clone();
    let qos = conn.qos;
    let name = ctx.name.clone();
    std::thread::Builder::new()
        .name(format!("mqtt-sink-{name}"))
        .spawn(move || {
            let mut backoff = Duration::from_millis(100);
            for event in connection.iter() {
                match event {
                    Ok(Event::Incoming(Packet::PubAck(_))) if qos == QoS::AtLeastOnce => {
                        d.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Event::Incoming(Packet::PubComp(_))) if qos == QoS::ExactlyOnce => {
                        d.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Event::Outgoing(Outgoing::Publish(_))) if qos == QoS::AtMostOnce => {
                        d.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Event::Incoming(Packet::ConnAck(_))) => backoff = Duration::from_millis(100),
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(
                            "mqtt sink '{name}': connection lost ({e}); retrying in {backoff:?}"
                        );
                        std::thread::sleep(backoff);
                        backoff = next_backoff(backoff);
                    }
                }
            }
        })
        .map_err(|e| Error::io("starting the MQTT thread", e))?;
    Ok(Box::new(MqttSink {
        spool: None,
        id_field,
        client: Some(client),
        topic,
        qos,
        retain,
        published: 0,
        done,
        buf: Vec::new(),
        metrics: ctx.metrics,
    }))
}

/// A spool position from a checkpoint: `"<seq> <offset>"`.
fn spool_mark(p: &crate::Position) -> Option<(u64, u64)> {
    let (s, o) = p.get("spool")?.split_once(' ')?;
    Some((s.parse().ok()?, o.parse().ok()?))
}

/// `line` (a JSON object) with `"<field>":"<hash of line>"` first.
fn with_id(line: &[u8], field: &str) -> Vec<u8> {
    let id = format!("{:016x}", super::dedup::Dedup::key(field, line));
    let mut out = Vec::with_capacity(line.len() + field.len() + 24);
    out.push(b'{');
    out.extend_from_slice(serde_json::Value::from(field).to_string().as_bytes());
    out.extend_from_slice(format!(":\"{id}\"").as_bytes());
    match line.get(1..) {
        Some(rest) if rest.first() != Some(&b'}') => {
            out.push(b',');
            out.extend_from_slice(rest);
        }
        _ => out.push(b'}'),
    }
    out
}

impl Sink for MqttSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.buf.clear();
        Format::Json.encode(batch, false, &mut self.buf)?;
        let lines: Vec<Vec<u8>> = self
            .buf
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| match &self.id_field {
                Some(f) => with_id(l, f),
                None => l.to_vec(),
            })
            .collect();
        crate::ConnectorMetrics::add(&self.metrics.messages, lines.len() as u64);
        crate::ConnectorMetrics::add(
            &self.metrics.bytes,
            lines.iter().map(|l| l.len() as u64).sum(),
        );
        if let Some(spool) = &self.spool {
            return spool.append(&lines);
        }
        let Some(client) = &self.client else {
            return Ok(());
        };
        for line in lines {
            client
                .publish(self.topic.clone(), self.qos, self.retain, line)
                .map_err(|e| {
                    Error::io("publishing to MQTT", std::io::Error::other(e.to_string()))
                })?;
            self.published += 1;
        }
        Ok(())
    }

    /// With a spool: where it ends (what the job wrote is on disk already).
    fn pre_commit(&mut self, _epoch: u64) -> Result<Option<crate::Position>> {
        let Some(spool) = &self.spool else {
            return self.finish().map(|_| None);
        };
        let (seq, offset) = spool.end();
        let mut p = crate::Position::new();
        p.insert("spool".into(), format!("{seq} {offset}"));
        Ok(Some(p))
    }

    fn finish(&mut self) -> Result<()> {
        if let Some(spool) = &self.spool {
            let left = spool.drain(Duration::from_secs(30));
            if left > 0 {
                tracing::warn!("mqtt sink: {left} messages stay in the spool; they are sent when the broker is back (on the next run)");
            }
            return Ok(());
        }
        let start = Instant::now();
        while self.done.load(Ordering::Relaxed) < self.published {
            if start.elapsed() > Duration::from_secs(30) {
                return Err(Error::io(
                    format!(
                        "mqtt sink: {} of {} messages unacknowledged",
                        self.published - self.done.load(Ordering::Relaxed),
                        self.published
                    ),
                    std::io::Error::from(std::io::ErrorKind::TimedOut),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }
}
