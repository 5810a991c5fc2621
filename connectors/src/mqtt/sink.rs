//! MQTT sink: publishes each row as one JSON message. A background thread drives the
//! connection; `finish` waits (up to 30 s) until the broker has acknowledged every message
//! (QoS 1/2) or it has been sent (QoS 0).
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
    resumable: false,
};

/// Publishes rows.
pub struct MqttSink {
    client: Client,
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
    let conn = connection(&mut o, format!("weir-{}-{}", ctx.name, std::process::id()))?;
    o.finish()?;
    if Format::parse(ctx.format.as_deref(), Format::Json)? != Format::Json {
        return Err(Error::Format("the mqtt sink writes json".into()));
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
        client,
        topic,
        qos,
        retain,
        published: 0,
        done,
        buf: Vec::new(),
        metrics: ctx.metrics,
    }))
}

impl Sink for MqttSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.buf.clear();
        Format::Json.encode(batch, false, &mut self.buf)?;
        for line in self.buf.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            self.client
                .publish(self.topic.clone(), self.qos, self.retain, line.to_vec())
                .map_err(|e| {
                    Error::io("publishing to MQTT", std::io::Error::other(e.to_string()))
                })?;
            self.published += 1;
            crate::ConnectorMetrics::add(&self.metrics.messages, 1);
            crate::ConnectorMetrics::add(&self.metrics.bytes, line.len() as u64);
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
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
