//! Kafka sink: one record per row (JSON or CSV), keyed by a column when `key` is set; the
//! idempotent producer on request. `finish` flushes everything outstanding and fails when a
//! record could not be delivered. `delivery = 'exactly_once'` (with `--state-dir`) stages
//! output until each checkpoint is complete (`exactly_once.rs`).
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use datafusion::arrow::array::Array;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

use super::{base_config, kafka_err};
use crate::describe::{opt, required, ConnectorSpec, Kind};
use crate::format::Format;
use crate::{ConnectorMetrics, Error, Options, Result, Sink, SinkContext};

/// The Kafka sink's options.
pub const SPEC: ConnectorSpec = ConnectorSpec {
    name: "kafka",
    tables: crate::describe::Tables::Stream,
    formats: &["json", "csv"],
    options: &[&[
        super::BROKERS,
        required("topic", Kind::Text, "the topic to write"),
        opt(
            "key",
            Kind::Text,
            "",
            "an output column whose value keys each record",
        ),
        opt("idempotent", Kind::Bool, "false", "an idempotent producer"),
        opt(
            "delivery",
            Kind::Text,
            "at_least_once",
            "'at_least_once', or 'exactly_once': with --state-dir, output is produced once per completed checkpoint, each record once",
        ),
        opt(
            "changelog",
            Kind::Text,
            "rows",
            "'rows', or 'upsert': an updating view's changes as upserts and tombstones",
        ),
    ]],
    provenance: crate::describe::Provenance::Untraced,
    dataset: Some(super::dataset),
    resumable: crate::describe::Resumable::No,
    live: false,
};

/// Counts records the producer could not deliver.
#[derive(Default)]
pub struct Deliveries {
    failed: AtomicU64,
    last: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = r {
            self.failed.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut l) = self.last.lock() {
                *l = Some(e.to_string());
            }
        }
    }
}

/// A producer that knows whether everything it sent was delivered.
pub struct KafkaProducer {
    producer: BaseProducer<Deliveries>,
    metrics: std::sync::Arc<ConnectorMetrics>,
}

impl KafkaProducer {
    /// The rdkafka producer.
    pub fn inner(&self) -> &BaseProducer<Deliveries> {
        &self.producer
    }

    /// Sends one record (with a `weir-stage` header when given), waiting while the
    /// producer's queue is full.
    pub fn send_with(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        header: Option<&str>,
    ) -> Result<()> {
        loop {
            let mut rec = BaseRecord::<[u8], [u8]>::to(topic);
            if let Some(p) = payload {
                rec = rec.payload(p);
            }
            if let Some(k) = key {
                rec = rec.key(k);
            }
            if let Some(h) = header {
                rec = rec.headers(super::exactly_once::headers(h));
            }
            match self.producer.send(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(kafka_err("producing to Kafka")(e)),
            }
        }
        ConnectorMetrics::add(&self.metrics.messages, 1);
        ConnectorMetrics::add(&self.metrics.bytes, payload.map_or(0, |p| p.len()) as u64);
        Ok(())
    }

    /// Waits until everything sent is acknowledged; fails if any record was not delivered.
    pub fn flush_all(&mut self) -> Result<()> {
        self.producer
            .flush(Duration::from_secs(60))
            .map_err(kafka_err("flushing the Kafka producer"))?;
        let failed = self.producer.context().failed.swap(0, Ordering::Relaxed);
        if failed > 0 {
            let last = self
                .producer
                .context()
                .last
                .lock()
                .ok()
                .and_then(|l| l.clone());
            return Err(Error::io(
                format!("{failed} Kafka records were not delivered"),
                std::io::Error::other(last.unwrap_or_default()),
            ));
        }
        Ok(())
    }
}

/// Writes rows to a topic.
pub struct KafkaSink {
    producer: KafkaProducer,
    /// `delivery = 'exactly_once'` with a state dir: rows are staged until a checkpoint.
    stage: Option<super::exactly_once::Stage>,
    topic: String,
    key: Option<usize>,
    format: Format,
    /// `changelog = 'upsert'`: the `op` column's index; deletes become tombstones.
    upsert: Option<usize>,
    buf: Vec<u8>,
}

/// Builds the Kafka sink.
pub fn build(ctx: SinkContext) -> Result<Box<dyn Sink>> {
    let mut o = Options::new(&SPEC, ctx.options);
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
    let exactly_once = match o.string("delivery").as_deref() {
        None | Some("at_least_once") => false,
        Some("exactly_once") => true,
        Some(other) => {
            return Err(Error::Option {
                option: "delivery".into(),
                message: format!("expected 'at_least_once' or 'exactly_once', got '{other}'"),
            })
        }
    };
    let upsert = match o.string("changelog").as_deref() {
        None | Some("rows") => None,
        Some("upsert") => {
            if key.is_none() {
                return Err(Error::Option {
                    option: "changelog".into(),
                    message: "'upsert' needs key = '<group key column>'".into(),
                });
            }
            Some(ctx.schema.index_of("op").map_err(|_| Error::Option {
                option: "changelog".into(),
                message:
                    "'upsert' takes an updating view's changelog (rows with an op column)".into(),
            })?)
        }
        Some(other) => {
            return Err(Error::Option {
                option: "changelog".into(),
                message: format!("expected 'rows' or 'upsert', got '{other}'"),
            })
        }
    };
    o.finish()?;
    let format = Format::parse(ctx.format.as_deref(), Format::Json)?;
    let producer: BaseProducer<Deliveries> = base_config(&brokers)
        .set(
            "enable.idempotence",
            if idempotent || exactly_once {
                "true"
            } else {
                "false"
            },
        )
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000")
        .set("queue.buffering.max.kbytes", "65536")
        .create_with_context(Deliveries::default())
        .map_err(kafka_err("creating the Kafka producer"))?;
    let mut producer = KafkaProducer {
        producer,
        metrics: ctx.metrics.clone(),
    };
    let stage = match (&ctx.state_dir, exactly_once) {
        (Some(dir), true) => Some(super::exactly_once::Stage::open(
            dir,
            &ctx.name,
            ctx.resume.as_ref(),
            ctx.durable.clone(),
            &mut producer,
            (&brokers, &topic),
        )?),
        _ => None,
    };
    Ok(Box::new(KafkaSink {
        producer,
        stage,
        topic,
        key,
        format,
        upsert,
        buf: Vec::new(),
    }))
}

impl KafkaSink {
    /// Sends one record — or stages it, for exactly-once delivery.
    fn send(&mut self, key: Option<String>, payload: Option<Vec<u8>>) -> Result<()> {
        let (k, p) = (key.as_deref().map(str::as_bytes), payload.as_deref());
        match self.stage.as_mut() {
            Some(stage) => stage.append(k, p),
            None => self.producer.send_with(&self.topic, k, p, None),
        }
    }

    /// A changelog as upserts: an inserted row is the key's new value (without `op`); a
    /// deleted key with no insert in the same change is a tombstone (null payload); the delete
    /// half of an update is dropped.
    fn write_upserts(&mut self, batch: &RecordBatch, op: usize) -> Result<()> {
        let Some(ki) = self.key else { return Ok(()) };
        let text = |i: usize| -> Result<Vec<Option<String>>> {
            let col = batch.column(i);
            let f = ArrayFormatter::try_new(col.as_ref(), &FormatOptions::default())?;
            Ok((0..batch.num_rows())
                .map(|r| (!col.is_null(r)).then(|| f.value(r).to_string()))
                .collect())
        };
        let keys = text(ki)?;
        let ops = text(op)?;
        let inserted: std::collections::HashSet<&str> = keys
            .iter()
            .zip(&ops)
            .filter(|(_, o)| o.as_deref() == Some("insert"))
            .filter_map(|(k, _)| k.as_deref())
            .collect();
        let values = batch.project(
            &(0..batch.num_columns())
                .filter(|c| *c != op)
                .collect::<Vec<_>>(),
        )?;
        self.buf.clear();
        self.format.encode(&values, false, &mut self.buf)?;
        let lines: Vec<Vec<u8>> = self
            .buf
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| l.to_vec())
            .collect();
        let mut sends = Vec::new();
        for (r, line) in lines.into_iter().enumerate() {
            let key = keys.get(r).cloned().flatten();
            match ops.get(r).and_then(|o| o.as_deref()) {
                Some("delete") => {
                    if !key
                        .as_deref()
                        .map(|k| inserted.contains(k))
                        .unwrap_or(false)
                    {
                        sends.push((key, None));
                    }
                }
                _ => sends.push((key, Some(line))),
            }
        }
        for (k, p) in sends {
            self.send(k, p)?;
        }
        self.producer.inner().poll(Duration::ZERO);
        Ok(())
    }
}

impl Sink for KafkaSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if let Some(stage) = self.stage.as_mut() {
            stage.settle(&mut self.producer, &self.topic, false)?;
        }
        if let Some(op) = self.upsert {
            return self.write_upserts(batch, op);
        }
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
        let lines: Vec<Vec<u8>> = lines.iter().map(|l| l.to_vec()).collect();
        for (i, line) in lines.into_iter().enumerate() {
            let key = keys.as_ref().and_then(|k| k.get(i).cloned().flatten());
            self.send(key, Some(line))?;
        }
        self.producer.inner().poll(Duration::ZERO);
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        if let Some(stage) = self.stage.as_mut() {
            stage.produce_now(&mut self.producer, &self.topic)?;
        }
        self.producer.flush_all()
    }

    /// Exactly once: the stage made durable, to be produced when the checkpoint is complete;
    /// otherwise everything sent so far acknowledged (no position: a restore may repeat rows).
    fn pre_commit(&mut self, _epoch: u64) -> Result<Option<crate::Position>> {
        match self.stage.as_mut() {
            Some(stage) => stage.seal(&mut self.producer, &self.topic).map(Some),
            None => self.producer.flush_all().map(|_| None),
        }
    }
}
