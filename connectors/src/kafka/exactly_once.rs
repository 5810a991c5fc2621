//! Kafka sink `delivery = 'exactly_once'` under durable checkpoints: output is staged, not
//! produced. Between two checkpoints the sink appends its records to a stage file in its
//! state directory (`stage-<n>`); at the checkpoint it fsyncs the file and records, in the
//! checkpoint, the stage's number and each partition's end offset. Only once that checkpoint
//! is durable — when the next job of the run (or the run restarted after kill -9) opens the
//! sink from it — is stage `n` produced, each record with a header `weir-stage:
//! <sink>/<n>/<seq>`. Before producing, the sink reads the topic from the recorded offsets and
//! skips every record of stage `n` that already landed (a killed process may have produced
//! part of it), so each record is in the topic exactly once — for any consumer, no
//! `read_committed` needed.
//!
//! Why not Kafka transactions: Tansu 0.6, the broker our tests run, commits transactions and
//! fences zombies but never tells a `read_committed` consumer which records were aborted
//! (its fetch answers an empty aborted-transactions list), so an aborted or orphaned
//! transaction's records are delivered like committed ones. Staging plus read-back needs
//! nothing from the broker beyond idempotent produce and headers, and costs the same latency
//! (output appears once per checkpoint interval). Limit: if the newest checkpoint is damaged
//! after its stage was produced, recovery falls back to the one before and that stage's rows
//! are computed and produced again.
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

use super::sink::KafkaProducer as SinkProducer;
use super::{base_config, kafka_err};
use crate::gate::Gate;
use crate::{Error, Position, Result};

/// The header naming a staged record.
pub const HEADER: &str = "weir-stage";
const TIMEOUT: Duration = Duration::from_secs(30);

/// One staged record.
type Record = (Option<Vec<u8>>, Option<Vec<u8>>);

/// The sink's staging.
pub struct Stage {
    dir: PathBuf,
    /// `<sink>`: the header's prefix.
    id: String,
    n: u64,
    file: BufWriter<File>,
    /// Produced at the end of the run's input (a job that ended just as a cut was asked is
    /// still checkpointed: its stage must not be produced again).
    produced: bool,
    /// The stage of the checkpoint this job continued from, with its partitions' offsets, to
    /// produce once that checkpoint is durable.
    pending: Option<(u64, BTreeMap<i32, i64>)>,
    durable: Option<Gate>,
    brokers: String,
}

fn io(what: String) -> impl Fn(std::io::Error) -> Error {
    move |e| Error::io(what.clone(), e)
}

fn stage_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("stage-{n}"))
}

impl Stage {
    /// Opens staging in `dir` for sink `id`. Resumed from a checkpoint's `position`, that
    /// checkpoint's stage is produced — but the records of it already in the topic — once the
    /// checkpoint is durable (`durable`; at once when there is no gate): at the first write or
    /// cut after that, or here when it is already.
    pub fn open(
        dir: &Path,
        id: &str,
        resume: Option<&Position>,
        durable: Option<Gate>,
        p: &mut SinkProducer,
        (brokers, topic): (&str, &str),
    ) -> Result<Stage> {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        let (mut n, mut pending) = (1, None);
        if let Some(pos) = resume.filter(|p| p.contains_key("stage")) {
            let (done, offsets) = parse(pos)?;
            if !pos.contains_key("produced") {
                pending = Some((done, offsets));
            }
            n = done + 1;
        }
        let path = stage_path(dir, n);
        let file = File::create(&path).map_err(io(format!("creating {}", path.display())))?;
        let mut stage = Stage {
            dir: dir.to_path_buf(),
            id: id.to_string(),
            n,
            file: BufWriter::new(file),
            produced: false,
            pending,
            durable,
            brokers: brokers.to_string(),
        };
        stage.settle(p, topic, false)?;
        Ok(stage)
    }

    /// Produces the stage waiting for its checkpoint once that is durable; `wait`: waits for
    /// it (up to a minute) rather than trying again later.
    pub fn settle(&mut self, p: &mut SinkProducer, topic: &str, wait: bool) -> Result<()> {
        if self.pending.is_none() {
            return Ok(());
        }
        if let Some(g) = &self.durable {
            let ready = match wait {
                true => g.wait(Duration::from_secs(60)),
                false => g.is_open(),
            };
            if !ready && wait {
                return Err(Error::io(
                    format!(
                        "kafka sink '{}': its checkpoint did not become durable",
                        self.id
                    ),
                    std::io::Error::from(std::io::ErrorKind::TimedOut),
                ));
            }
            if !ready {
                return Ok(());
            }
        }
        let Some((done, offsets)) = self.pending.take() else {
            return Ok(());
        };
        let id = self.id.clone();
        let landed = landed(&self.brokers, topic, &offsets, &format!("{id}/{done}/"))?;
        let records = read_stage(&stage_path(&self.dir, done))?;
        for (seq, (key, payload)) in records.iter().enumerate() {
            if landed.contains(&(seq as u64)) {
                continue;
            }
            let header = format!("{id}/{done}/{seq}");
            p.send_with(topic, key.as_deref(), payload.as_deref(), Some(&header))?;
        }
        p.flush_all()?;
        tracing::info!(
            "kafka sink '{id}': stage {done} produced: {} of {} records ({} had landed before)",
            records.len() - landed.len().min(records.len()),
            records.len(),
            landed.len()
        );
        // Older stages are produced and no checkpoint refers to them any more.
        for old in 1..done {
            let _ = std::fs::remove_file(stage_path(&self.dir, old));
        }
        Ok(())
    }

    /// Stages one record.
    pub fn append(&mut self, key: Option<&[u8]>, payload: Option<&[u8]>) -> Result<()> {
        let mut rec =
            Vec::with_capacity(9 + key.map_or(0, |k| k.len()) + payload.map_or(0, |p| p.len()));
        for part in [key, payload] {
            match part {
                None => rec.push(0),
                Some(b) => {
                    rec.push(1);
                    rec.extend_from_slice(&(b.len() as u32).to_le_bytes());
                    rec.extend_from_slice(b);
                }
            }
        }
        self.file
            .write_all(&rec)
            .map_err(io(format!("writing {}", self.path().display())))
    }

    /// At a checkpoint: makes the stage durable and gives the position that produces it once
    /// the checkpoint is complete: its number and each partition's end offset now.
    pub fn seal(&mut self, p: &mut SinkProducer, topic: &str) -> Result<Position> {
        // The stage before goes out first: its records lie before this one's offsets.
        self.settle(p, topic, true)?;
        let path = self.path();
        self.file
            .flush()
            .and_then(|_| self.file.get_ref().sync_all())
            .map_err(io(format!("syncing {}", path.display())))?;
        let client = p.inner().client();
        let meta = client
            .fetch_metadata(Some(topic), TIMEOUT)
            .map_err(kafka_err("reading the topic's partitions"))?;
        let mut ends = Vec::new();
        for t in meta.topics().iter().filter(|t| t.name() == topic) {
            for part in t.partitions() {
                let (_, high) = client
                    .fetch_watermarks(topic, part.id(), TIMEOUT)
                    .map_err(kafka_err("reading the partition's end"))?;
                ends.push(format!("{}:{high}", part.id()));
            }
        }
        let mut pos = Position::new();
        pos.insert("stage".into(), self.n.to_string());
        pos.insert("offsets".into(), ends.join(","));
        pos.insert("sink".into(), self.id.clone());
        if self.produced {
            pos.insert("produced".into(), "1".into());
        }
        Ok(pos)
    }

    /// At the end of a run: produces the stage now (there is no checkpoint after it).
    pub fn produce_now(&mut self, p: &mut SinkProducer, topic: &str) -> Result<()> {
        if self.produced {
            return Ok(());
        }
        self.settle(p, topic, true)?;
        let path = self.path();
        self.file
            .flush()
            .map_err(io(format!("writing {}", path.display())))?;
        for (seq, (key, payload)) in read_stage(&path)?.iter().enumerate() {
            let header = format!("{}/{}/{seq}", self.id, self.n);
            p.send_with(topic, key.as_deref(), payload.as_deref(), Some(&header))?;
        }
        p.flush_all()?;
        self.produced = true;
        Ok(())
    }

    fn path(&self) -> PathBuf {
        stage_path(&self.dir, self.n)
    }
}

/// A stage position's number and partition offsets.
fn parse(pos: &Position) -> Result<(u64, BTreeMap<i32, i64>)> {
    let bad = || {
        Error::Unsupported(format!(
            "a Kafka sink position this sink never gave: {pos:?}"
        ))
    };
    let n = pos
        .get("stage")
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let mut offsets = BTreeMap::new();
    for part in pos
        .get("offsets")
        .map(|s| s.as_str())
        .unwrap_or("")
        .split(',')
    {
        if part.is_empty() {
            continue;
        }
        let (p, o) = part.split_once(':').ok_or_else(bad)?;
        offsets.insert(p.parse().map_err(|_| bad())?, o.parse().map_err(|_| bad())?);
    }
    Ok((n, offsets))
}

/// The records of a stage file, in order (a file cut short ends at its last whole record).
fn read_stage(path: &Path) -> Result<Vec<Record>> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(f) => BufReader::new(f)
            .read_to_end(&mut bytes)
            .map_err(io(format!("reading {}", path.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(io(format!("opening {}", path.display()))(e)),
    };
    let mut out = Vec::new();
    let mut at = 0;
    let part = |at: &mut usize| -> Option<Option<Vec<u8>>> {
        let flag = *bytes.get(*at)?;
        *at += 1;
        if flag == 0 {
            return Some(None);
        }
        let len = u32::from_le_bytes(bytes.get(*at..*at + 4)?.try_into().ok()?) as usize;
        *at += 4;
        let b = bytes.get(*at..*at + len)?.to_vec();
        *at += len;
        Some(Some(b))
    };
    while at < bytes.len() {
        let (Some(k), Some(v)) = (part(&mut at), part(&mut at)) else {
            break;
        };
        out.push((k, v));
    }
    Ok(out)
}

/// The sequence numbers of the records headed `<prefix><seq>` in `topic` from `offsets` (a
/// partition not named there: from its start) to each partition's end now. The end is where
/// the consumer reaches end-of-partition, not the listed high watermark: Tansu lists the first
/// offset of a partition's last batch there, not the offset after it.
fn landed(
    brokers: &str,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
    prefix: &str,
) -> Result<HashSet<u64>> {
    let consumer: BaseConsumer<Quiet> = base_config(brokers)
        .set("group.id", "weir-exactly-once-check")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "100")
        .create_with_context(Quiet)
        .map_err(kafka_err("creating a Kafka consumer"))?;
    let meta = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .map_err(kafka_err("reading the topic's partitions"))?;
    let mut tpl = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for t in meta.topics().iter().filter(|t| t.name() == topic) {
        for part in t.partitions() {
            let from = offsets.get(&part.id()).copied();
            let start = from.map(Offset::Offset).unwrap_or(Offset::Beginning);
            tpl.add_partition_offset(topic, part.id(), start)
                .map_err(kafka_err("assigning a partition"))?;
            ends.insert(part.id(), ());
        }
    }
    let mut seqs = HashSet::new();
    if ends.is_empty() {
        return Ok(seqs);
    }
    consumer
        .assign(&tpl)
        .map_err(kafka_err("assigning partitions"))?;
    let started = Instant::now();
    while !ends.is_empty() {
        if started.elapsed() > TIMEOUT {
            return Err(Error::io(
                format!(
                    "reading back what reached '{topic}' (partitions {:?} not read to their end)",
                    ends.keys().collect::<Vec<_>>()
                ),
                std::io::Error::from(std::io::ErrorKind::TimedOut),
            ));
        }
        let m = match consumer.poll(Duration::from_millis(100)) {
            None => continue,
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                ends.remove(&p);
                continue;
            }
            Some(m) => m.map_err(kafka_err("reading back the topic"))?,
        };
        if let Some(h) = m.headers() {
            for i in 0..h.count() {
                let Some(Header {
                    key,
                    value: Some(v),
                }) = h.try_get(i)
                else {
                    continue;
                };
                let seq = std::str::from_utf8(v)
                    .ok()
                    .and_then(|v| v.strip_prefix(prefix))
                    .and_then(|s| s.parse().ok());
                if let (HEADER, Some(seq)) = (key, seq) {
                    seqs.insert(seq);
                }
            }
        }
    }
    Ok(seqs)
}

/// A client context that takes end-of-partition for what it is here (the end of the
/// read-back), not an error to log.
struct Quiet;

impl rdkafka::ClientContext for Quiet {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        if !matches!(error, rdkafka::error::KafkaError::PartitionEOF(_))
            && !reason.contains("end of partition")
        {
            tracing::warn!("kafka sink read-back: {error}: {reason}");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for Quiet {}

/// Headers naming a staged record.
pub fn headers(value: &str) -> OwnedHeaders {
    OwnedHeaders::new().insert(Header {
        key: HEADER,
        value: Some(value),
    })
}
