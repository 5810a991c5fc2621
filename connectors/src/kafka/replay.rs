//! Reading records back by position: `weir trace` fetches the Kafka records a provenance
//! value names (ranges of offsets per partition), with an explicit assignment — no consumer
//! group, nothing committed.
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::{base_config, kafka_err};
use crate::{Error, Result};

/// How long a range may go without a record before the read gives up.
const QUIET: Duration = Duration::from_secs(10);

/// The payloads (`None`: a tombstone) of the records at the offsets of each partition's
/// inclusive ranges: partition by partition, in offset order. Each partition is read once,
/// from its first wanted offset to its last.
pub fn read(
    brokers: &str,
    topic: &str,
    partitions: &[(i32, Vec<(i64, i64)>)],
) -> Result<Vec<Option<Vec<u8>>>> {
    let consumer: BaseConsumer = base_config(brokers)
        .set("group.id", "weir-trace")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "20")
        .create()
        .map_err(kafka_err("creating the Kafka consumer"))?;
    let mut out = Vec::new();
    for (partition, wanted) in partitions {
        let partition = *partition;
        let from = wanted.iter().map(|r| r.0).min().unwrap_or(0);
        let to = wanted.iter().map(|r| r.1).max().unwrap_or(-1);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(from))
            .map_err(kafka_err("assigning the partition"))?;
        consumer
            .assign(&tpl)
            .map_err(kafka_err("assigning the partition"))?;
        let mut next = from;
        let mut last = Instant::now();
        while next <= to {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    last = Instant::now();
                    if wanted.iter().any(|(a, b)| (*a..=*b).contains(&m.offset())) {
                        out.push(m.payload().map(|p| p.to_vec()));
                    }
                    next = m.offset() + 1;
                }
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => {
                    return Err(Error::Format(format!(
                        "{topic}/{partition}: offset {next} is past the end of the partition"
                    )))
                }
                Some(Err(e)) => tracing::warn!("reading {topic}/{partition}: {e}"),
                None if last.elapsed() > QUIET => {
                    return Err(Error::Format(format!(
                        "{topic}/{partition}: no record at offset {next} within {QUIET:?}"
                    )))
                }
                None => {}
            }
        }
    }
    Ok(out)
}
