//! Kafka end to end against a real Kafka-protocol broker (Tansu): readings produced to a
//! 3-partition topic (one partition left empty, which must not stall the windows) →
//! windowed SQL pipeline → keyed results on an output topic, read back and compared exactly
//! with the aggregate computed here; malformed records land on a dead-letter topic.
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use weir_tests::{run_weir_ok, scratch, weir_bin, Tansu};

#[test]
fn kafka_windowed_aggregate_end_to_end() {
    let broker = Tansu::start();
    let dir = scratch("kafka-e2e");
    let input = format!("readings{}", std::process::id());
    let output = format!("results{}", std::process::id());
    broker.create_topic(&input, 3);
    broker.create_topic(&output, 1);
    let dlq = format!("dlq{}", std::process::id());
    broker.create_topic(&dlq, 1);

    let producer = broker.producer();
    let mut expected: BTreeMap<(String, i64), (u64, f64)> = BTreeMap::new();
    let base = 1_700_000_000_000i64;
    let mut sent = 0;
    for i in 0..40i64 {
        for m in 0..4 {
            // Machines 0 and 2 on partition 0, 1 and 3 on partition 1; partition 2 stays empty.
            let partition = m % 2;
            let ts = base + i * 250 + (m as i64) * 7;
            let v = (i * 3 + m as i64) as f64 / 4.0;
            let machine = format!("m{m}");
            let payload = format!("{{\"machine_id\":\"{machine}\",\"ts\":{ts},\"v\":{v}}}");
            producer
                .send(
                    BaseRecord::<(), String>::to(&input)
                        .partition(partition)
                        .payload(&payload),
                )
                .unwrap();
            sent += 1;
            let e = expected
                .entry((machine, ts - ts.rem_euclid(1000)))
                .or_insert((0, 0.0));
            e.0 += 1;
            e.1 += v;
        }
    }
    for bad in [
        "{\"machine_id\":\"m0\",\"ts\":",
        "{\"machine_id\":\"m1\",\"ts\":\"noon\",\"v\":1}",
    ] {
        producer
            .send(BaseRecord::<(), str>::to(&input).partition(0).payload(bad))
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();

    let script = dir.join("p.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE SOURCE readings (machine_id TEXT, ts BIGINT, v DOUBLE)
               WITH (connector = 'kafka', brokers = '{b}', topic = '{input}', start = 'earliest', bounded = 'true',
                     format = 'json', event_time = 'ts', watermark_delay = '100ms', dead_letter = 'dlq');
             CREATE SINK dlq WITH (connector = 'kafka', brokers = '{b}', topic = '{dlq}');
             CREATE SINK results WITH (connector = 'kafka', brokers = '{b}', topic = '{output}', key = 'machine_id', format = 'json', idempotent = 'true');
             CREATE PIPELINE per_machine AS INSERT INTO results
             SELECT machine_id, window_start, count(*) AS n, sum(v) AS total
             FROM readings GROUP BY machine_id, tumble(ts, INTERVAL '1' SECOND);",
            b = broker.brokers,
        ),
    )
    .unwrap();
    for workers in ["1", "2"] {
        let stderr = run_weir_ok(&script, &["--workers", workers]);
        assert!(
            stderr.contains(&format!("rows in {sent}")) && stderr.contains("dead-letter 2"),
            "{stderr}"
        );
    }

    // Read the results back: both runs wrote every window once.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.brokers)
        .set("group.id", "results-reader")
        .set("broker.address.family", "v4")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&output, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut runs: Vec<BTreeMap<(String, i64), (u64, f64)>> = vec![BTreeMap::new(), BTreeMap::new()];
    let start = Instant::now();
    let mut n = 0;
    while n < 2 * expected.len() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "only {n} of {} results",
            2 * expected.len()
        );
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        let machine = v["machine_id"].as_str().unwrap().to_string();
        assert_eq!(
            m.key(),
            Some(machine.as_bytes()),
            "record key is the machine"
        );
        let key = (machine, v["window_start"].as_i64().unwrap());
        let run = if runs[0].contains_key(&key) { 1 } else { 0 };
        runs[run].insert(
            key,
            (v["n"].as_u64().unwrap(), v["total"].as_f64().unwrap()),
        );
        n += 1;
    }
    // The dead-letter topic: two runs, two records each, with positions and raw payloads.
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&dlq, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut dead = Vec::new();
    while dead.len() < 4 {
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "dead letters: {dead:?}"
        );
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        dead.push(serde_json::from_slice::<serde_json::Value>(m.payload().unwrap()).unwrap());
    }
    for d in &dead {
        assert_eq!(d["source"], "readings");
        assert!(
            d["position"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{input}/0@")),
            "{d}"
        );
        assert!(
            d["payload"]
                .as_str()
                .unwrap()
                .starts_with("{\"machine_id\""),
            "{d}"
        );
    }
    for got in &runs {
        assert_eq!(got.len(), expected.len());
        for (k, e) in &expected {
            assert_eq!(got[k].0, e.0, "{k:?}");
            assert!((got[k].1 - e.1).abs() < 1e-9, "{k:?}");
        }
    }
}

#[test]
fn kafka_resumes_from_committed_offsets() {
    let broker = Tansu::start();
    let dir = scratch("kafka-committed");
    let topic = format!("resume{}", std::process::id());
    broker.create_topic(&topic, 1);
    let producer = broker.producer();
    let produce = |range: std::ops::Range<i64>| {
        for i in range {
            let p = format!("{i},{i}.5");
            producer
                .send(
                    BaseRecord::<(), String>::to(&topic)
                        .partition(0)
                        .payload(&p),
                )
                .unwrap();
        }
        producer.flush(Duration::from_secs(30)).unwrap();
    };
    let run = |out: &std::path::Path| -> Vec<i64> {
        let script = dir.join("p.sql");
        std::fs::write(
            &script,
            format!(
                "CREATE SOURCE r (ts BIGINT, v DOUBLE)
                   WITH (connector = 'kafka', brokers = '{}', topic = '{topic}', start = 'committed', group_id = 'resume-group',
                         bounded = 'true', format = 'csv');
                 CREATE SINK out WITH (connector = 'file', path = '{}', header = 'false');
                 CREATE PIPELINE copy AS INSERT INTO out SELECT ts FROM r;",
                broker.brokers,
                out.display()
            ),
        )
        .unwrap();
        run_weir_ok(&script, &[]);
        let mut v: Vec<i64> = std::fs::read_to_string(out)
            .unwrap_or_default()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        v.sort();
        v
    };
    produce(0..10);
    assert_eq!(run(&dir.join("a.csv")), (0..10).collect::<Vec<_>>());
    produce(10..15);
    assert_eq!(
        run(&dir.join("b.csv")),
        (10..15).collect::<Vec<_>>(),
        "the second run starts at the committed offset"
    );
}

#[test]
fn idle_partition_does_not_stall_windows_on_an_unbounded_stream() {
    let broker = Tansu::start();
    let dir = scratch("kafka-idle");
    let input = format!("idle{}", std::process::id());
    let output = format!("idleout{}", std::process::id());
    broker.create_topic(&input, 3);
    broker.create_topic(&output, 1);
    let producer = broker.producer();
    // Partitions 0 and 1 get 5 seconds of data; partition 2 gets nothing, ever.
    for i in 0..50i64 {
        let p = format!("{{\"m\":\"m{}\",\"ts\":{},\"v\":1}}", i % 2, i * 100);
        producer
            .send(
                BaseRecord::<(), String>::to(&input)
                    .partition((i % 2) as i32)
                    .payload(&p),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let script = dir.join("p.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE SOURCE r (m TEXT, ts BIGINT, v DOUBLE)
               WITH (connector = 'kafka', brokers = '{b}', topic = '{input}', event_time = 'ts', idle_timeout = '500ms');
             CREATE SINK o WITH (connector = 'kafka', brokers = '{b}', topic = '{output}');
             CREATE PIPELINE p AS INSERT INTO o SELECT m, window_start, count(*) AS n FROM r GROUP BY m, tumble(ts, INTERVAL '1' SECOND);",
            b = broker.brokers
        ),
    )
    .unwrap();
    // Unbounded: weir keeps running; windows must still close while it does.
    let mut weir = Command::new(weir_bin())
        .args(["run", script.to_str().unwrap(), "--progress", "0"])
        .spawn()
        .unwrap();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.brokers)
        .set("group.id", "idle-reader")
        .set("broker.address.family", "v4")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&output, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let start = Instant::now();
    let mut got = BTreeMap::new();
    // Windows [0,1s) … [3s,4s) close once the watermark (the slower of partitions 0 and 1,
    // partition 2 being idle) passes them; the last window stays open (no later data).
    while got.len() < 8 && start.elapsed() < Duration::from_secs(30) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            got.insert(
                (
                    v["m"].as_str().unwrap().to_string(),
                    v["window_start"].as_i64().unwrap(),
                ),
                v["n"].as_u64().unwrap(),
            );
        }
    }
    let still_running = weir.try_wait().unwrap().is_none();
    let _ = weir.kill();
    let _ = weir.wait();
    assert!(
        still_running,
        "weir should still be running on an unbounded source"
    );
    let want: BTreeMap<(String, i64), u64> = (0..4)
        .flat_map(|w| {
            [
                (("m0".to_string(), w * 1000), 5),
                (("m1".to_string(), w * 1000), 5),
            ]
        })
        .collect();
    assert_eq!(got, want);
}
