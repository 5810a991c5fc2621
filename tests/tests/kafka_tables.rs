//! Kafka changelogs and tables against a real broker (Tansu): an updating view written with
//! `changelog = 'upsert'` becomes keyed values and tombstones on a topic (checked record by
//! record), and a second pipeline reads that topic back as a table (tombstones delete keys)
//! and lookup-joins a stream with it.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use weir_tests::{run_weir_ok, scratch, Tansu};

/// Every record of partition 0 of `topic`: (key, payload or None for a tombstone).
fn read_all(brokers: &str, topic: &str, at_least: usize) -> Vec<(String, Option<String>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "changelog-reader")
        .set("broker.address.family", "v4")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "only {} records",
            out.len()
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push((
                String::from_utf8_lossy(m.key().unwrap_or_default()).to_string(),
                m.payload().map(|p| String::from_utf8_lossy(p).to_string()),
            )),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) if out.len() >= at_least => {
                return out
            }
            _ => {}
        }
    }
}

#[test]
fn updating_view_to_kafka_upserts_and_back_as_a_table() {
    let broker = Tansu::start();
    let dir = scratch("kafka-tables");
    let topic = format!("last_seen{}", std::process::id());
    broker.create_topic(&topic, 1);
    // 20 000 readings: machines m0..m9 until ts 9999, then only m0..m4. The view keeps machines
    // not seen since ts 10 000, so m0..m4 are inserted, then deleted (tombstones), while
    // m5..m9 are updated (delete + insert: one upsert, no tombstone).
    let mut csv = String::from("machine_id,ts,temp\n");
    for i in 0..20_000i64 {
        let m = if i < 10_000 { i % 10 } else { i % 5 };
        csv.push_str(&format!("m{m},{i},{}\n", 20 + i % 7));
    }
    std::fs::write(dir.join("readings.csv"), csv).unwrap();
    let view = dir.join("view.sql");
    std::fs::write(
        &view,
        format!(
            "CREATE SOURCE readings (machine_id TEXT, ts BIGINT, temp DOUBLE)
               WITH (connector = 'file', path = '{d}/readings.csv', event_time = 'ts');
             CREATE SINK last_seen WITH (connector = 'kafka', brokers = '{b}', topic = '{topic}',
               key = 'machine_id', changelog = 'upsert', format = 'json');
             CREATE PIPELINE quiet AS INSERT INTO last_seen
             SELECT machine_id, max(ts) AS last_ts, count(*) AS n FROM readings
             GROUP BY machine_id HAVING max(ts) < 10000;",
            d = dir.display(),
            b = broker.brokers,
        ),
    )
    .unwrap();
    run_weir_ok(&view, &["--workers", "2"]);

    let records = read_all(&broker.brokers, &topic, 15);
    let mut last: BTreeMap<String, Option<serde_json::Value>> = BTreeMap::new();
    let mut tombstones: BTreeMap<String, usize> = BTreeMap::new();
    for (k, p) in &records {
        match p {
            None => *tombstones.entry(k.clone()).or_default() += 1,
            Some(p) => {
                let v: serde_json::Value = serde_json::from_str(p).unwrap();
                assert_eq!(v["machine_id"].as_str(), Some(k.as_str()), "{p}");
                assert!(v.get("op").is_none(), "the op column is not written: {p}");
            }
        }
        last.insert(
            k.clone(),
            p.as_ref().map(|p| serde_json::from_str(p).unwrap()),
        );
    }
    for m in 0..5 {
        let k = format!("m{m}");
        assert_eq!(tombstones.get(&k), Some(&1), "{k}: {records:?}");
        assert_eq!(last[&k], None, "{k} ends deleted");
    }
    for m in 5..10 {
        let k = format!("m{m}");
        assert_eq!(
            tombstones.get(&k),
            None,
            "an update is not a tombstone: {records:?}"
        );
        let v = last[&k].as_ref().unwrap();
        assert_eq!(v["last_ts"].as_i64(), Some(9990 + m), "{v}");
        assert_eq!(v["n"].as_i64(), Some(1000), "{v}");
    }

    // Read the topic back as a table and look machines up in it.
    let mut probe = String::from("machine_id,ts\n");
    for m in 0..10 {
        probe.push_str(&format!("m{m},{}\n", m + 1));
    }
    std::fs::write(dir.join("probe.csv"), probe).unwrap();
    for workers in ["1", "2"] {
        let out = dir.join(format!("joined{workers}.csv"));
        let script = dir.join(format!("join{workers}.sql"));
        std::fs::write(
            &script,
            format!(
                "CREATE TABLE last_seen (machine_id TEXT, last_ts BIGINT, n BIGINT, PRIMARY KEY (machine_id))
                   WITH (connector = 'kafka', brokers = '{b}', topic = '{topic}', bounded = 'true', format = 'json');
                 CREATE SOURCE probe (machine_id TEXT, ts BIGINT)
                   WITH (connector = 'file', path = '{d}/probe.csv', event_time = 'ts');
                 CREATE SINK out WITH (connector = 'file', path = '{o}', format = 'csv');
                 CREATE PIPELINE lookup AS INSERT INTO out
                 SELECT p.machine_id, s.last_ts, s.n FROM probe p LEFT JOIN last_seen s ON p.machine_id = s.machine_id;",
                d = dir.display(),
                b = broker.brokers,
                o = out.display(),
            ),
        )
        .unwrap();
        run_weir_ok(&script, &["--workers", workers]);
        let mut rows: Vec<String> = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .skip(1)
            .map(String::from)
            .collect();
        rows.sort();
        let expected: Vec<String> = (0..10)
            .map(|m| {
                if m < 5 {
                    format!("m{m},,")
                } else {
                    format!("m{m},{},1000", 9990 + m)
                }
            })
            .collect();
        assert_eq!(rows, expected, "workers = {workers}");
    }
}
