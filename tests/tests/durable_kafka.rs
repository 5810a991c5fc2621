//! Exactly once from Kafka to Kafka by kill -9: Kafka (Tansu, 3 partitions) → 1 s windows and
//! per-machine features → two Kafka topics with `delivery = 'exactly_once'`, killed (SIGKILL)
//! at random moments 20 times and started again on the same state directory, alternately on
//! 1 and 2 workers. Each output topic then holds exactly the records of an uninterrupted run
//! — none lost, none twice — read by a plain consumer (no `read_committed` needed: the sink
//! stages each checkpoint's output and produces it once the checkpoint is complete, skipping
//! what already landed).
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, Producer};
use weir_tests::{scratch, Tansu, WeirProcess};

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

/// Every record of `topic` (3 partitions): payloads sorted, and how many carried the same
/// `weir-stage` header more than once.
fn read_all(brokers: &str, topic: &str) -> (Vec<String>, usize) {
    let consumer: BaseConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "eos-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    // Read to end-of-partition: Tansu lists the first offset of a partition's last batch as
    // its high watermark.
    let mut tpl = rdkafka::TopicPartitionList::new();
    let mut ends = std::collections::HashSet::new();
    for p in 0..3 {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
            .expect("partition");
        ends.insert(p);
    }
    let (mut payloads, mut headers) = (Vec::new(), HashMap::<String, usize>::new());
    consumer.assign(&tpl).expect("assign");
    let start = std::time::Instant::now();
    while !ends.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(60), "reading {topic}");
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

fn produce_input(broker: &Tansu, topic: &str, n: i64) {
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

fn kill_loop(sql: &Path, state: &str, rounds: usize) {
    let mut seed = 0xe05u64;
    for round in 0..rounds {
        let workers = if round % 2 == 0 { "2" } else { "1" };
        let args = [
            "--state-dir",
            state,
            "--checkpoint-every",
            "150ms",
            "--workers",
            workers,
        ];
        let p = WeirProcess::start(sql, &args);
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(300 + (seed >> 33) % 700));
        p.kill();
    }
}

#[test]
fn kafka_to_kafka_exactly_once_across_20_kills() {
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
    produce_input(&broker, &input, 40_000);
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
    assert!(
        want_w.len() > 2000 && want_f.len() == 40_000,
        "{} {}",
        want_w.len(),
        want_f.len()
    );

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
    kill_loop(&job, &state, 20);
    let log = WeirProcess::start(&job, &["--state-dir", &state]).finish();
    assert!(
        log.iter().any(|l| l.contains("continued from checkpoint")),
        "{log:#?}"
    );
    for (got_topic, want) in [(&topics[2], &want_w), (&topics[3], &want_f)] {
        let (got, twice) = read_all(&broker.brokers, got_topic);
        assert_eq!(twice, 0, "{got_topic}: records produced twice");
        let missing = want
            .iter()
            .filter(|l| got.binary_search(l).is_err())
            .count();
        assert!(
            &got == want,
            "{got_topic}: {} records, {} wanted, {missing} missing",
            got.len(),
            want.len()
        );
    }
}
