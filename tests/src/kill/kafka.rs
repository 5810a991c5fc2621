//! Kafka (Tansu, 3 partitions) → 1 s windows and per-machine features → two Kafka topics with
//! `delivery = 'exactly_once'`, killed and started again; the reference is an uninterrupted
//! run of the same job (at least once, no kills) into two other topics. Topics are read to
//! end-of-partition by a plain consumer.
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, Producer};

use super::{Rounds, Tally};
use crate::{scratch, Tansu, WeirProcess};

fn script(brokers: &str, input: &str, windows: &str, features: &str, delivery: &str) -> String {
    format!(
        "CREATE SOURCE readings (machine_id TEXT, ts BIGINT, v BIGINT)
           WITH (connector = 'kafka', brokers = '{brokers}', topic = '{input}', start = 'earliest',
                 bounded = 'true', group_id = 'eos-{windows}', format = 'json', event_time = 'ts',
                 watermark_delay = '200ms');
         CREATE SINK w WITH (connector = 'kafka', brokers = '{brokers}', topic = '{windows}',
                             key = 'machine_id', delivery = '{delivery}');
         CREATE SINK f WITH (connector = 'kafka', brokers = '{brokers}', topic = '{features}',
                             key = 'machine_id', delivery = '{delivery}');
         CREATE PIPELINE p AS INSERT INTO w
         SELECT machine_id, window_start, count(*) AS n, sum(v) AS total
         FROM readings GROUP BY machine_id, tumble(ts, INTERVAL '1' SECOND);
         CREATE PIPELINE q AS INSERT INTO f
         SELECT machine_id, ts,
                avg(v) OVER (PARTITION BY machine_id ORDER BY ts ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) AS avg4,
                lag(v) OVER (PARTITION BY machine_id ORDER BY ts) AS prev
         FROM readings;"
    )
}

/// Every record of `topic` (3 partitions), read to end-of-partition (Tansu lists the first
/// offset of a partition's last batch as its high watermark): the payloads sorted, and how
/// many `weir-stage` headers occur more than once.
pub fn read_all(brokers: &str, topic: &str) -> (Vec<String>, usize) {
    let consumer: BaseConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "eos-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    let mut ends = HashSet::new();
    for p in 0..3 {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
            .expect("partition");
        ends.insert(p);
    }
    let (mut payloads, mut headers) = (Vec::new(), HashMap::<String, usize>::new());
    consumer.assign(&tpl).expect("assign");
    let start = std::time::Instant::now();
    while !ends.is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "reading {topic}"
        );
        let m = match consumer.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                ends.remove(&p);
                continue;
            }
            Some(m) => m.expect("a record"),
        };
        payloads.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string());
        if let Some(h) = m.headers() {
            for i in 0..h.count() {
                let h = h.get(i);
                if h.key == "weir-stage" {
                    let v = String::from_utf8_lossy(h.value.unwrap_or_default()).to_string();
                    *headers.entry(v).or_default() += 1;
                }
            }
        }
    }
    payloads.sort();
    (payloads, headers.values().filter(|n| **n > 1).count())
}

/// Produces readings `0..n` to `topic` (3 partitions): machine `m<i mod 12>` on partition
/// `m mod 3`, event time 10 ms apart, value `i mod 97`.
pub fn produce_input(broker: &Tansu, topic: &str, n: i64) {
    let producer = broker.producer();
    for i in 0..n {
        let m = i % 12;
        let payload = format!(
            "{{\"machine_id\":\"m{m}\",\"ts\":{},\"v\":{}}}",
            1_700_000_000_000i64 + i * 10,
            i % 97
        );
        let record = BaseRecord::<(), String>::to(topic)
            .partition((m % 3) as i32)
            .payload(&payload);
        if let Err((e, _)) = producer.send(record) {
            panic!("producing: {e}");
        }
        if i % 5000 == 0 {
            producer.flush(Duration::from_secs(30)).expect("flush");
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

/// What a Kafka kill loop found: the windows' and the features' tallies, the headers seen
/// twice, and the last run's log.
pub struct Outcome {
    pub windows: Tally,
    pub features: Tally,
    pub headers_twice: usize,
    pub log: Vec<String>,
}

/// `n` readings through the job, uninterrupted and under `rounds`.
pub fn run(n: i64, rounds: &Rounds) -> Outcome {
    let broker = Tansu::start();
    let pid = std::process::id();
    let input = format!("eos-in{pid}");
    broker.create_topic(&input, 3);
    let topics: Vec<String> = ["ref-w", "ref-f", "eos-w", "eos-f"]
        .iter()
        .map(|t| format!("{t}{pid}"))
        .collect();
    for t in &topics {
        broker.create_topic(t, 3);
    }
    produce_input(&broker, &input, n);
    let dir = scratch("durable-eos");
    let reference = dir.join("reference.sql");
    let sql = script(
        &broker.brokers,
        &input,
        &topics[0],
        &topics[1],
        "at_least_once",
    );
    std::fs::write(&reference, sql).expect("script");
    WeirProcess::start(&reference, &[]).finish();
    let (want_w, _) = read_all(&broker.brokers, &topics[0]);
    let (want_f, _) = read_all(&broker.brokers, &topics[1]);
    let job = dir.join("job.sql");
    let sql = script(
        &broker.brokers,
        &input,
        &topics[2],
        &topics[3],
        "exactly_once",
    );
    std::fs::write(&job, sql).expect("script");
    let state = dir.join("state").display().to_string();
    rounds.run(&job, &state);
    let log = WeirProcess::start(&job, &["--state-dir", &state]).finish();
    let (got_w, twice_w) = read_all(&broker.brokers, &topics[2]);
    let (got_f, twice_f) = read_all(&broker.brokers, &topics[3]);
    // Kept for a look when a tally is off.
    let _ = std::fs::write(dir.join("want-windows.txt"), want_w.join("\n"));
    let _ = std::fs::write(dir.join("got-windows.txt"), got_w.join("\n"));
    Outcome {
        windows: Tally::of(&want_w, &got_w, rounds.kills),
        features: Tally::of(&want_f, &got_f, rounds.kills),
        headers_twice: twice_w + twice_f,
        log,
    }
}
