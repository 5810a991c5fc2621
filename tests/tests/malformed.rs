//! The malformed-input corpus: more than twenty kinds of bad records, mixed with good ones and
//! blank lines, through a file (CSV and JSON lines), Kafka and MQTT. Every good record is a
//! row in the output, every bad one a dead letter with its own position and payload, nothing
//! crashes and nothing disappears: lines read = rows + dead letters + blank lines.
use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::producer::{BaseRecord, Producer};
use weir_tests::{run_weir, scratch, Mosquitto, MqttPublisher, Tansu, WeirProcess};

/// One corpus entry: its bytes and whether it is a good record (`Some(id)`), a bad one
/// (`None`, a dead letter) or — in a file — a blank line.
#[derive(Clone)]
enum Entry {
    Good(u64, Vec<u8>),
    Bad(Vec<u8>),
    Blank(Vec<u8>),
}

/// Bad JSON records, each a different way to be wrong.
fn bad_json() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        r#"{"id":1,"machine":"m1","ts":"#,
        r#"{"id":1,"machine":"m1","ts":"noon","v":1}"#,
        r#"{"id":1,"machine":"m1","v":1}"#,
        r#"{"id":1,"machine":"m1","ts":null,"v":1}"#,
        r#"{"id":1,"machine":"m1","ts":5,"v":"abc"}"#,
        r#"{"id":1,"ts":5}{"id":2,"ts":6}"#,
        r#"[1,2,3]"#,
        r#"42"#,
        r#""hello""#,
        r#"not json at all"#,
        r#"{"id":1,"machine":"m1"#,
        r#"{'id':1,'ts':5}"#,
        r#"{"id":1,"ts":{"a":1}}"#,
        r#"{"id":1,"ts":true}"#,
        r#"{}"#,
        r#"{"id":1,"ts":5"#,
        r#"{"id":1,"ts":5}}"#,
        r#"{"id":"one","ts":5}"#,
        r#"{"id":1,"ts":[5]}"#,
        r#"{"id":1,"ts":5,"v":1.0.0}"#,
        r#"<xml>reading</xml>"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    v.push(b"{\"id\":1,\"machine\":\"m\xff\xfe\",\"ts\":5}".to_vec());
    v.push(b"{\"id\":1,\0\"ts\":5}".to_vec());
    v
}

/// Bad CSV records (columns `id,machine,ts,v`).
fn bad_csv() -> Vec<Vec<u8>> {
    [
        "5,\"m1,100,1.0",
        "5,m1,100",
        "5,m1,100,1.0,extra",
        "5,m1,,1.0",
        "5,m1,noon,1.0",
        "5,m1,100,abc",
        "5.5,m1,100,1",
        "5,m1,100,1.0\r6,m2,200,2.0",
        "{\"id\":5,\"ts\":100}",
        "5,m1,99999999999999999999,1",
        ",,,",
        "5,m\"1,100,1",
        "5\tm1\t100\t1",
        "5;m1;100;1",
        "x,m1,100,1",
        "5,m1,1e3,1",
        "5,m1,100,1,",
        "5,m1,100,--1",
        "5,m1,0x10,1",
        "5,m1,100,1.0.0",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

/// `n` entries: good records with ids, every 37th a bad one (cycling through `bad`), every
/// 101st a blank line when `blanks`.
fn corpus(n: u64, bad: &[Vec<u8>], good: impl Fn(u64) -> String, blanks: bool) -> Vec<Entry> {
    let mut out = Vec::new();
    for i in 0..n {
        if i % 37 == 11 {
            out.push(Entry::Bad(bad[(i / 37) as usize % bad.len()].clone()));
        } else if blanks && i % 101 == 50 {
            out.push(Entry::Blank(if i % 2 == 0 {
                b"".to_vec()
            } else {
                b"   ".to_vec()
            }));
        } else {
            out.push(Entry::Good(i, good(i).into_bytes()));
        }
    }
    out
}

/// A good JSON record, in one of several shapes (extra fields, escapes, NULL value, CRLF-free).
fn good_json(i: u64) -> String {
    match i % 4 {
        0 => format!(
            r#"{{"id":{i},"machine":"m{}","ts":{},"v":{i}.5}}"#,
            i % 5,
            i * 10
        ),
        1 => format!(
            r#"{{"ts":{},"id":{i},"machine":"Ø\"{}\"","extra":[1,2]}}"#,
            i * 10,
            i % 5
        ),
        2 => format!(r#"{{"id":{i},"machine":null,"ts":{},"v":null}}"#, i * 10),
        _ => format!(r#" {{ "id" : {i} , "ts" : {} , "v" : -{i}e-1 }} "#, i * 10),
    }
}

/// A good CSV record: plain, quoted with a comma and an escaped quote, an empty value.
fn good_csv(i: u64) -> String {
    match i % 3 {
        0 => format!("{i},m{},{},{i}.5", i % 5, i * 10),
        1 => format!("{i},\"m, \"\"{}\"\"\",{},-{i}", i % 5, i * 10),
        _ => format!("{i},,{},", i * 10),
    }
}

/// The script: `source` (its WITH options) copied to a CSV file of ids, dead letters to a file.
fn script(dir: &std::path::Path, source: &str) -> std::path::PathBuf {
    let path = dir.join("p.sql");
    std::fs::write(
        &path,
        format!(
            "CREATE SOURCE r (id BIGINT, machine TEXT, ts BIGINT, v DOUBLE)
               WITH ({source}, event_time = 'ts', dead_letter = '{}');
             CREATE SINK out WITH (connector = 'file', path = '{}', header = 'false');
             CREATE PIPELINE copy AS INSERT INTO out SELECT id FROM r;",
            dir.join("dead.jsonl").display(),
            dir.join("out.csv").display(),
        ),
    )
    .unwrap();
    path
}

/// Checks the output against the corpus: the ids of the good entries, the payloads of the bad
/// ones in order, and each dead letter's position as `position(index of the entry)`.
fn check(dir: &std::path::Path, entries: &[Entry], position: impl Fn(usize) -> String) {
    let got: BTreeSet<u64> = std::fs::read_to_string(dir.join("out.csv"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    let rows = std::fs::read_to_string(dir.join("out.csv"))
        .unwrap()
        .lines()
        .count();
    let want: BTreeSet<u64> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Good(id, _) => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(rows, want.len(), "every good record once");
    assert_eq!(got, want);
    let dead: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("dead.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let want: Vec<(String, String)> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            Entry::Bad(p) => Some((position(i), String::from_utf8_lossy(p).to_string())),
            _ => None,
        })
        .collect();
    let got: Vec<(String, String)> = dead
        .iter()
        .map(|d| {
            let p = d["position"].as_str().unwrap_or("");
            let p = p.rsplit('/').next().unwrap_or("").to_string();
            (p, d["payload"].as_str().unwrap_or("").to_string())
        })
        .collect();
    assert_eq!(got.len(), want.len(), "every bad record once: {got:#?}");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
}

/// Files: 20,000 lines (three decode chunks), CSV with a header and JSON lines; the summary
/// accounts for every line.
#[test]
fn a_malformed_file_loses_nothing() {
    for (format, bad, good, header) in [
        ("csv", bad_csv(), good_csv as fn(u64) -> String, 1),
        ("json", bad_json(), good_json as fn(u64) -> String, 0),
    ] {
        let dir = scratch(&format!("malformed-{format}"));
        let entries = corpus(20_000, &bad, good, true);
        let mut text = if header == 1 {
            b"id,machine,ts,v\n".to_vec()
        } else {
            Vec::new()
        };
        for e in &entries {
            let (Entry::Good(_, b) | Entry::Bad(b) | Entry::Blank(b)) = e;
            text.extend_from_slice(b);
            text.extend_from_slice(if format == "csv" && text.len() % 3 == 0 {
                b"\r\n"
            } else {
                b"\n"
            });
        }
        let input = dir.join(format!("r.{format}"));
        std::fs::write(&input, text).unwrap();
        let path = script(
            &dir,
            &format!(
                "connector = 'file', path = '{}', format = '{format}'",
                input.display()
            ),
        );
        let run = run_weir(&path, &["--json-summary"]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{format}: {stderr}");
        check(&dir, &entries, |i| format!("r.{format}:{}", i + 1 + header));
        let summary: serde_json::Value = stderr
            .lines()
            .find_map(|l| {
                serde_json::from_str(l)
                    .ok()
                    .filter(|v: &serde_json::Value| v.get("pipeline").is_some())
            })
            .unwrap_or_else(|| panic!("no JSON summary: {stderr}"));
        let s = &summary["source"];
        let count = |k: &str| s[k].as_u64().unwrap_or(0);
        assert_eq!(count("messages"), 20_000, "{summary}");
        assert_eq!(
            summary["rows_in"].as_u64().unwrap()
                + summary["dead_letter"].as_u64().unwrap()
                + count("blank"),
            count("messages"),
            "lines read = rows + dead letters + blank lines: {summary}"
        );
        let blank = entries
            .iter()
            .filter(|e| matches!(e, Entry::Blank(_)))
            .count() as u64;
        assert_eq!(count("blank"), blank, "{summary}");
    }
}

/// Kafka: the JSON corpus plus empty and null records; each dead letter carries its own
/// record's offset and payload.
#[test]
fn malformed_kafka_records_are_dead_letters_with_their_own_offsets() {
    let broker = Tansu::start();
    let dir = scratch("malformed-kafka");
    let topic = format!("malformed{}", std::process::id());
    broker.create_topic(&topic, 1);
    let mut bad = bad_json();
    bad.push(b"".to_vec());
    bad.push(b"  ".to_vec());
    let entries = corpus(3_000, &bad, good_json, false);
    let producer = broker.producer();
    for e in &entries {
        let (Entry::Good(_, b) | Entry::Bad(b) | Entry::Blank(b)) = e;
        let record = BaseRecord::<(), [u8]>::to(&topic).partition(0);
        producer.send(record.payload(b.as_slice())).unwrap();
    }
    // A record with no value at all is a dead letter too (the last one, offset 3000).
    producer
        .send(BaseRecord::<(), [u8]>::to(&topic).partition(0))
        .unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();
    let mut entries = entries;
    entries.push(Entry::Bad(Vec::new()));
    let path = script(
        &dir,
        &format!(
            "connector = 'kafka', brokers = '{}', topic = '{topic}', bounded = 'true', format = 'json'",
            broker.brokers
        ),
    );
    let run = run_weir(&path, &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    check(&dir, &entries, |i| {
        format!("{topic}/0@{i}")
            .rsplit('/')
            .next()
            .unwrap()
            .to_string()
    });
}

/// MQTT: the JSON corpus, empty payloads and a payload of two lines; each dead letter names its
/// message's sequence on the topic.
#[test]
fn malformed_mqtt_messages_are_dead_letters_in_order() {
    let broker = Mosquitto::start("malformed");
    let dir = scratch("malformed-mqtt");
    let mut bad = bad_json();
    bad.push(b"".to_vec());
    bad.push(b"{\"id\":1,\"ts\":5}\n{\"id\":2,\"ts\":6}".to_vec());
    let entries = corpus(1_000, &bad, good_json, false);
    let path = script(
        &dir,
        &format!(
            "connector = 'mqtt', url = 'mqtt://127.0.0.1:{}', topic = 'plant/bad', qos = '1', max_messages = '{}', format = 'json'",
            broker.port,
            entries.len()
        ),
    );
    let mut weir = WeirProcess::start(&path, &[]);
    weir.wait_for("subscribed to", 1);
    let mut publisher = MqttPublisher::connect("malformed", broker.port);
    for e in &entries {
        let (Entry::Good(_, b) | Entry::Bad(b) | Entry::Blank(b)) = e;
        publisher.publish("plant/bad", b.clone());
    }
    publisher.wait_acks();
    let stderr = weir.finish().join("\n");
    assert!(stderr.contains("rows in"), "{stderr}");
    check(&dir, &entries, |i| {
        format!("plant/bad#{i}")
            .rsplit('/')
            .next()
            .unwrap()
            .to_string()
    });
}

/// A message over `max_message_size` is a dead letter (its first 1 KiB kept) and the
/// connection stays up: every later message is a row, with no reconnect (a 2 MiB message used
/// to drop the connection: later messages were lost, or redelivered over and over).
#[test]
fn an_oversized_mqtt_message_is_a_dead_letter_and_the_connection_stays() {
    let broker = Mosquitto::start("oversized");
    let dir = scratch("oversized-mqtt");
    let path = script(
        &dir,
        &format!(
            "connector = 'mqtt', url = 'mqtt://127.0.0.1:{}', topic = 'plant/big', qos = '1', max_messages = '41', max_message_size = '1048576', format = 'json'",
            broker.port
        ),
    );
    let mut weir = WeirProcess::start(&path, &[]);
    weir.wait_for("subscribed to", 1);
    let mut publisher = MqttPublisher::connect("oversized", broker.port);
    let filler = "x".repeat(2 << 20);
    for i in 0..40u64 {
        if i == 10 {
            let big = format!("{{\"id\":999,\"ts\":1,\"machine\":\"{filler}\"}}");
            publisher.publish("plant/big", big);
        }
        publisher.publish("plant/big", format!("{{\"id\":{i},\"ts\":{}}}", 1000 + i));
    }
    publisher.wait_acks();
    let stderr = weir.finish().join("\n");
    assert!(
        !stderr.contains("reconnects"),
        "the connection stayed: {stderr}"
    );
    let ids: BTreeSet<u64> = std::fs::read_to_string(dir.join("out.csv"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(ids, (0..40).collect::<BTreeSet<u64>>(), "{stderr}");
    let dead: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("dead.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["position"], "plant/big#10");
    assert!(
        dead[0]["error"]
            .as_str()
            .unwrap()
            .contains("max_message_size"),
        "{}",
        dead[0]
    );
    assert_eq!(dead[0]["payload"].as_str().unwrap().len(), 1024);
}
