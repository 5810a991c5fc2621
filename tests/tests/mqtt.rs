//! MQTT end to end against a real mosquitto: readings published on
//! `…/plant/<site>/<machine>/telemetry` → windowed SQL pipeline (topic levels as columns) →
//! results published on a sink topic, read back here and compared exactly with the aggregate
//! computed directly; malformed payloads land in the dead-letter file with the right count.
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Duration;

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use weir_tests::{scratch, Mosquitto, MqttPublisher, WeirProcess};

fn client(id: &str, port: u16) -> (Client, rumqttc::Connection) {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    Client::new(o, 10_000)
}

#[test]
fn mqtt_windowed_aggregate_end_to_end() {
    let broker = Mosquitto::start("e2e");
    let dir = scratch("mqtt-e2e");
    let prefix = format!("weir{}", std::process::id());
    // Results subscriber.
    let (rtx, rrx) = mpsc::channel::<serde_json::Value>();
    let (sub, mut sub_conn) = client("results-reader", broker.port);
    sub.subscribe(format!("{prefix}/results"), QoS::AtLeastOnce)
        .unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for ev in sub_conn.iter() {
            match ev {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = ready_tx.send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = rtx.send(serde_json::from_slice(&p.payload).unwrap());
                }
                Err(_) => return,
                _ => {}
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("results subscription");

    // Readings: 2 sites × 3 machines, one reading every 100 ms for 5 s, ts in epoch ms.
    let mut msgs = Vec::new();
    let mut expected: BTreeMap<(String, String, i64), (u64, f64, f64)> = BTreeMap::new();
    let base = 1_700_000_000_000i64;
    for i in 0..50i64 {
        for site in ["north", "south"] {
            for m in 0..3 {
                let ts = base + i * 100;
                let temp =
                    20.0 + ((i * 7 + m * 3) % 11) as f64 + if site == "south" { 0.5 } else { 0.0 };
                let machine = format!("m{m}");
                msgs.push((
                    format!("{prefix}/plant/{site}/{machine}/telemetry"),
                    format!("{{\"ts\":{ts},\"temperature\":{temp},\"extra\":\"x\"}}"),
                ));
                let e = expected
                    .entry((site.to_string(), machine, ts - ts.rem_euclid(1000)))
                    .or_insert((0, 0.0, f64::MIN));
                e.0 += 1;
                e.1 += temp;
                e.2 = e.2.max(temp);
            }
        }
    }
    let bad = [
        (
            format!("{prefix}/plant/north/m0/telemetry"),
            "{\"ts\": 1700000000050, \"temperature\":".to_string(),
        ),
        (
            format!("{prefix}/plant/north/m0/telemetry"),
            "{\"ts\": \"yesterday\", \"temperature\": 3}".to_string(),
        ),
    ];
    let total = msgs.len() + bad.len();

    let dead = dir.join("dead.jsonl");
    let script = dir.join("p.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE SOURCE readings (site TEXT, machine_id TEXT, ts BIGINT, temperature DOUBLE, extra TEXT)
               WITH (connector = 'mqtt', url = 'mqtt://127.0.0.1:{port}', topic = '{prefix}/plant/+/+/telemetry',
                     topic_columns = 'site,machine_id', qos = '1', format = 'json', max_messages = '{total}', extra_column = 'extra',
                     event_time = 'ts', watermark_delay = '200ms', dead_letter = '{dead}');
             CREATE SINK results WITH (connector = 'mqtt', url = 'mqtt://127.0.0.1:{port}', topic = '{prefix}/results', qos = '1');
             CREATE PIPELINE per_machine AS INSERT INTO results
             SELECT site, machine_id, window_start, count(*) AS n, sum(temperature) AS total, max(temperature) AS hottest,
                    min(extra) AS extra
             FROM readings GROUP BY site, machine_id, tumble(ts, INTERVAL '1' SECOND);",
            port = broker.port,
            dead = dead.display()
        ),
    )
    .unwrap();
    let mut weir = WeirProcess::start(&script, &["--workers", "2"]);
    weir.wait_for("subscribed to", 1);
    let mut publisher = MqttPublisher::connect("test-publisher", broker.port);
    for (i, (topic, payload)) in msgs.iter().enumerate() {
        publisher.publish(topic, payload.clone());
        if i == 40 {
            for (t, p) in &bad {
                publisher.publish(t, p.clone());
            }
        }
    }
    publisher.wait_acks();
    let log = weir.finish();
    let summary = log
        .iter()
        .find(|l| l.starts_with("pipeline per_machine"))
        .cloned()
        .unwrap_or_default();
    assert!(
        summary.contains(&format!("rows in {}", msgs.len())),
        "{summary}"
    );
    assert!(summary.contains("dead-letter 2"), "{summary}");
    let counters = log
        .iter()
        .find(|l| l.trim_start().starts_with("source:"))
        .cloned()
        .unwrap_or_default();
    assert!(
        counters.contains(&format!("messages {total}")) && counters.contains("decode_errors 2"),
        "{counters}"
    );
    assert_eq!(std::fs::read_to_string(&dead).unwrap().lines().count(), 2);

    let mut got = BTreeMap::new();
    while got.len() < expected.len() {
        let v = rrx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("only {} of {} results", got.len(), expected.len()));
        let key = (
            v["site"].as_str().unwrap().to_string(),
            v["machine_id"].as_str().unwrap().to_string(),
            v["window_start"].as_i64().unwrap(),
        );
        assert_eq!(
            v["extra"], "{\"extra\":\"x\"}",
            "undeclared fields kept as JSON"
        );
        let prev = got.insert(
            key.clone(),
            (
                v["n"].as_u64().unwrap(),
                v["total"].as_f64().unwrap(),
                v["hottest"].as_f64().unwrap(),
            ),
        );
        assert!(prev.is_none(), "duplicate result {key:?}");
    }
    assert!(
        rrx.recv_timeout(Duration::from_millis(300)).is_err(),
        "extra results"
    );
    for (k, e) in &expected {
        let g = got[k];
        assert_eq!(g.0, e.0, "{k:?}");
        assert!((g.1 - e.1).abs() < 1e-9, "{k:?}");
        assert_eq!(g.2, e.2, "{k:?}");
    }
}

#[test]
fn embedded_broker_takes_sensor_messages_directly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = scratch("mqtt-embedded");
    let out = dir.join("out.csv");
    let script = dir.join("p.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE SOURCE r (machine_id TEXT, ts BIGINT, v DOUBLE)
               WITH (connector = 'mqtt', url = 'mqtt://127.0.0.1:{port}', topic = 'edge/+/v', topic_columns = 'machine_id',
                     max_messages = '30');
             CREATE SINK out WITH (connector = 'file', path = '{}', header = 'false');
             CREATE PIPELINE copy AS INSERT INTO out SELECT machine_id, ts, v FROM r;",
            out.display()
        ),
    )
    .unwrap();
    let listen = format!("127.0.0.1:{port}");
    let mut weir = WeirProcess::start(&script, &["--mqtt-listen", &listen]);
    weir.wait_for("subscribed to", 1);
    let mut publisher = MqttPublisher::connect("sensor", port);
    for i in 0..30 {
        publisher.publish(
            &format!("edge/m{}/v", i % 3),
            format!("{{\"ts\":{i},\"v\":{i}.5}}"),
        );
    }
    publisher.wait_acks();
    weir.finish();
    let mut rows: Vec<String> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    rows.sort();
    let mut want: Vec<String> = (0..30).map(|i| format!("m{},{i},{i}.5", i % 3)).collect();
    want.sort();
    assert_eq!(rows, want);
}

#[test]
fn mqtt5_shared_subscription_spreads_messages_over_workers() {
    let broker = Mosquitto::start("shared");
    let dir = scratch("mqtt-shared");
    let out = dir.join("out.csv");
    let script = dir.join("p.sql");
    let topic = format!("weir{}/shared", std::process::id());
    std::fs::write(
        &script,
        format!(
            "CREATE SOURCE r (ts BIGINT, v DOUBLE)
               WITH (connector = 'mqtt', url = 'mqtt://127.0.0.1:{}', topic = '{topic}', protocol = '5', shared_group = 'weir',
                     client_id = 'shared-test', qos = '1', stop_after_idle = '1s');
             CREATE SINK out WITH (connector = 'file', path = '{}', header = 'false');
             CREATE PIPELINE copy AS INSERT INTO out SELECT ts FROM r;",
            broker.port,
            out.display()
        ),
    )
    .unwrap();
    let mut weir = WeirProcess::start(&script, &["--workers", "2"]);
    weir.wait_for(&format!("subscribed to $share/weir/{topic}"), 2);
    assert!(
        weir.log.iter().any(|l| l.contains("connected with MQTT 5")),
        "{:#?}",
        weir.log
    );
    let mut publisher = MqttPublisher::connect("shared-pub", broker.port);
    for i in 0..200 {
        publisher.publish(&topic, format!("{{\"ts\":{i},\"v\":1}}"));
    }
    publisher.wait_acks();
    weir.finish();
    let mut rows: Vec<i64> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        (0..200).collect::<Vec<_>>(),
        "every message exactly once across the two workers"
    );
}

#[test]
fn mqtt_over_tls() {
    let dir = scratch("mqtt-tls");
    let certs = weir_tests::make_certs(&dir);
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let broker = Mosquitto::start_tls("tls", tls_port, &certs);
    let out = dir.join("out.csv");
    let script = dir.join("p.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE SOURCE r (ts BIGINT, v DOUBLE)
               WITH (connector = 'mqtt', url = 'mqtts://127.0.0.1:{tls_port}', ca_file = '{}', topic = 'secure/v', max_messages = '10');
             CREATE SINK out WITH (connector = 'file', path = '{}', header = 'false');
             CREATE PIPELINE copy AS INSERT INTO out SELECT ts FROM r;",
            certs.0.display(),
            out.display()
        ),
    )
    .unwrap();
    let mut weir = WeirProcess::start(&script, &[]);
    weir.wait_for("subscribed to", 1);
    // The publisher uses the plain listener of the same broker.
    let mut publisher = MqttPublisher::connect("tls-pub", broker.port);
    for i in 0..10 {
        publisher.publish("secure/v", format!("{{\"ts\":{i},\"v\":1}}"));
    }
    publisher.wait_acks();
    weir.finish();
    let mut rows: Vec<i64> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    rows.sort();
    assert_eq!(rows, (0..10).collect::<Vec<_>>());
}

#[test]
fn username_and_password() {
    let broker = Mosquitto::start_with_password("auth", "plant", "s3cret");
    let dir = scratch("mqtt-auth");
    let write = |name: &str, password: &str| {
        let script = dir.join(format!("{name}.sql"));
        std::fs::write(
            &script,
            format!(
                "CREATE SOURCE r (ts BIGINT, v DOUBLE)
                   WITH (connector = 'mqtt', url = 'mqtt://127.0.0.1:{}', topic = 'auth/v', username = 'plant', password = '{password}',
                         max_messages = '5');
                 CREATE SINK out WITH (connector = 'file', path = '{}', header = 'false');
                 CREATE PIPELINE copy AS INSERT INTO out SELECT ts FROM r;",
                broker.port,
                dir.join(format!("{name}.csv")).display()
            ),
        )
        .unwrap();
        script
    };
    // A wrong password is refused (and retried with backoff, never a crash).
    let mut bad = WeirProcess::start(&write("bad", "wrong"), &[]);
    bad.wait_for("connection lost", 2);
    let log = bad.kill();
    assert!(!log.iter().any(|l| l.contains("subscribed to")), "{log:#?}");
    assert!(!log.iter().any(|l| l.contains("panicked")), "{log:#?}");
    // The right one works.
    let mut weir = WeirProcess::start(&write("good", "s3cret"), &[]);
    weir.wait_for("subscribed to", 1);
    let mut publisher =
        MqttPublisher::connect_as("auth-pub", broker.port, Some(("plant", "s3cret")));
    for i in 0..5 {
        publisher.publish("auth/v", format!("{{\"ts\":{i},\"v\":1}}"));
    }
    publisher.wait_acks();
    weir.finish();
    let rows = std::fs::read_to_string(dir.join("good.csv")).unwrap();
    assert_eq!(rows.lines().count(), 5, "{rows}");
}

/// A message without its event time (the field missing, or null) is a dead letter naming its
/// topic and sequence; the run goes on and every other message is a row.
#[test]
fn messages_without_event_time_are_dead_letters() {
    let broker = Mosquitto::start("no-event-time");
    let dir = scratch("mqtt-no-event-time");
    let (out, dl) = (dir.join("out.csv"), dir.join("dead.jsonl"));
    let script = dir.join("p.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE SOURCE r (ts BIGINT, v DOUBLE)
               WITH (connector = 'mqtt', url = 'mqtt://127.0.0.1:{}', topic = 'plant/ts', qos = '1',
                     event_time = 'ts', max_messages = '40', dead_letter = '{}');
             CREATE SINK out WITH (connector = 'file', path = '{}', header = 'false');
             CREATE PIPELINE copy AS INSERT INTO out SELECT ts, v FROM r;",
            broker.port,
            dl.display(),
            out.display()
        ),
    )
    .unwrap();
    let mut weir = WeirProcess::start(&script, &[]);
    weir.wait_for("subscribed to", 1);
    let mut publisher = MqttPublisher::connect("no-ts", broker.port);
    let mut want = Vec::new();
    let mut bad = Vec::new();
    for i in 0..40 {
        let payload = match i % 10 {
            3 => format!("{{\"v\":{i}.5}}"),
            7 => format!("{{\"ts\":null,\"v\":{i}.5}}"),
            _ => {
                want.push(format!("{},{i}.5", i * 100));
                format!("{{\"ts\":{},\"v\":{i}.5}}", i * 100)
            }
        };
        if i % 10 == 3 || i % 10 == 7 {
            bad.push(payload.clone());
        }
        publisher.publish("plant/ts", payload);
    }
    publisher.wait_acks();
    let stderr = weir.finish().join("\n");
    assert!(stderr.contains("dead-letter 8"), "{stderr}");
    let mut rows: Vec<String> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    rows.sort();
    want.sort();
    assert_eq!(rows, want);
    let dead: Vec<serde_json::Value> = std::fs::read_to_string(&dl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let payloads: Vec<&str> = dead.iter().filter_map(|d| d["payload"].as_str()).collect();
    assert_eq!(payloads, bad, "the refused messages themselves, in order");
    assert!(dead.iter().all(|d| d["position"]
        .as_str()
        .unwrap_or("")
        .starts_with("plant/ts#")));
}
