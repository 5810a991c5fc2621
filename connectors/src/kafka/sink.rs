//! Kafka sink: one record per row (JSON or CSV), keyed by a column when `key` is set; the
//! idempotent producer on request. `finish` flushes everything outstanding.
use std::time::Duration;

use datafusion::arrow::array::Array;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::base_config;
use crate::format::Format;
use crate::{ConnectorMetrics, Error, Options, Result, Sink, SinkContext};

/// Writes rows to a topic.
pub struct KafkaSink {
    producer: BaseProducer,
    topic: String,
    key: Option<usize>,
    format: Format,
    buf: Vec<u8>,
    metrics: std::sync::Arc<ConnectorMetrics>,
}

/// Builds the Kafka sink.
pub fn build(ctx: SinkContext) -> Result<Box<dyn Sink>> {
    let mut o = Options::new("kafka", ctx.options);
    let brokers = o.required("brokers")?;
    let topic = o.required("topic")?;
    let key = match o.string("key") {
        None => None,
        Some(k) => {
            Some(
                ctx.schema
                    .index_of(&k.to_ascii_lowercase())
                    .map_err(|_| Error::Option {
                        option: "key".into(),
                        message: format!("'{k}' is not an output column"),
                    })?,
            )
        }
    };
    let idempotent = o.bool("idempotent", false)?;
    o.finish()?;
    let format = Format::parse(ctx.format.as_deref(), Format::Json)?;
    let producer: BaseProducer = base_config(&brokers)
        .set(
            "enable.idempotence",
            if idempotent { "true" } else { "false" },
        )
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000")
        .set("queue.buffering.max.kbytes", "65536")
        .create()
        .map_err(|e| {
            Error::io(
                "creating the Kafka producer",
                std::io::Error::other(e.to_string()),
            )
        })?;
    Ok(Box::new(KafkaSink {
        producer,
        topic,
        key,
        format,
        buf: Vec::new(),
        metrics: ctx.metrics,
    }))
}

impl Sink for KafkaSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.buf.clear();
        self.format.encode(batch, false, &mut self.buf)?;
        let keys: Option<Vec<Option<String>>> = match self.key {
            None => None,
            Some(i) => {
                let col = batch.column(i);
                let f = ArrayFormatter::try_new(col.as_ref(), &FormatOptions::default())?;
                Some(
                    (0..batch.num_rows())
                        .map(|r| {
                            if col.is_null(r) {
                                None
                            } else {
                                Some(f.value(r).to_string())
                            }
                        })
                        .collect(),
                )
            }
        };
        let lines: Vec<&[u8]> = self
            .buf
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        for (i, line) in lines.iter().enumerate() {
            let key = keys.as_ref().and_then(|k| k.get(i).cloned().flatten());
            loop {
                let mut rec = BaseRecord::<String, [u8]>::to(&self.topic).payload(line);
                if let Some(k) = key.as_ref() {
                    rec = rec.key(k);
                }
                match self.producer.send(rec) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        self.producer.poll(Duration::from_millis(10));
                    }
                    Err((e, _)) => {
                        return Err(Error::io(
                            "producing to Kafka",
                            std::io::Error::other(e.to_string()),
                        ))
                    }
                }
            }
            ConnectorMetrics::add(&self.metrics.messages, 1);
            ConnectorMetrics::add(&self.metrics.bytes, line.len() as u64);
        }
        self.producer.poll(Duration::ZERO);
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.producer.flush(Duration::from_secs(60)).map_err(|e| {
            Error::io(
                "flushing the Kafka producer",
                std::io::Error::other(e.to_string()),
            )
        })
    }
}
