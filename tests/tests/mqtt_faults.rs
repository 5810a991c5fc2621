//! MQTT fault tests against a real mosquitto: the broker killed and restarted mid-stream (QoS 1,
//! persistent session), and weir restarted while messages are published (persistent session:
//! the broker queues them and weir receives them when it comes back).
use std::time::Duration;

use weir_tests::{scratch, Mosquitto, MqttPublisher, WeirProcess};

fn publish_all(
    p: &mut MqttPublisher,
    topic: &str,
    rows: impl Iterator<Item = (i64, f64)>,
) -> usize {
    let mut n = 0;
    for (ts, v) in rows {
        p.publish(topic, format!("{{\"ts\":{ts},\"v\":{v}}}"));
        n += 1;
    }
    p.wait_acks();
    n
}

fn script(
    dir: &std::path::Path,
    port: u16,
    topic: &str,
    client_id: &str,
    max: usize,
    out: &std::path::Path,
) -> std::path::PathBuf {
    let path = dir.join(format!("{client_id}-{max}.sql"));
    std::fs::write(
        &path,
        format!(
            "CREATE SOURCE r (ts BIGINT, v DOUBLE)
               WITH (connector = 'mqtt', url = 'mqtt://127.0.0.1:{port}', topic = '{topic}', qos = '1',
                     client_id = '{client_id}', clean_session = 'false', max_messages = '{max}');
             CREATE SINK out WITH (connector = 'file', path = '{}', format = 'csv');
             CREATE PIPELINE copy AS INSERT INTO out SELECT ts, v FROM r;",
            out.display()
        ),
    )
    .unwrap();
    path
}

fn read_ts(path: &std::path::Path) -> Vec<i64> {
    let mut v: Vec<i64> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn broker_restart_mid_stream_loses_and_duplicates_nothing() {
    let mut broker = Mosquitto::start("restart");
    let port = broker.port;
    let dir = scratch("mqtt-broker-restart");
    let topic = format!("weir{}/restart", std::process::id());
    let out = dir.join("out.csv");
    let mut weir = WeirProcess::start(&script(&dir, port, &topic, "weir-restart", 400, &out), &[]);
    weir.wait_for("subscribed to", 1);
    let mut p = MqttPublisher::connect("pub-1", port);
    assert_eq!(
        publish_all(&mut p, &topic, (0..200).map(|i| (i, i as f64))),
        200
    );
    // Give weir the first half, then take the broker away and bring it back on the same port.
    std::thread::sleep(Duration::from_millis(300));
    broker.stop();
    std::thread::sleep(Duration::from_millis(500));
    let _broker2 = Mosquitto::start_on("restart2", port);
    weir.wait_for("subscribed to", 2);
    let mut p2 = MqttPublisher::connect("pub-2", port);
    assert_eq!(
        publish_all(&mut p2, &topic, (200..400).map(|i| (i, i as f64))),
        200
    );
    let log = weir.finish();
    assert!(
        log.iter().any(|l| l.contains("connection lost")),
        "{log:#?}"
    );
    let counters = log
        .iter()
        .find(|l| l.trim_start().starts_with("source:"))
        .cloned()
        .unwrap_or_default();
    assert!(
        counters.contains("messages 400") && counters.contains("reconnects 1"),
        "{counters}"
    );
    assert_eq!(read_ts(&out), (0..400).collect::<Vec<_>>());
}

#[test]
fn persistent_session_receives_what_was_published_while_weir_was_down() {
    let _broker = Mosquitto::start("persist");
    let port = _broker.port;
    let dir = scratch("mqtt-persist");
    let topic = format!("weir{}/persist", std::process::id());
    // First run: creates the session, takes 50 messages, exits.
    let out1 = dir.join("out1.csv");
    let mut weir = WeirProcess::start(&script(&dir, port, &topic, "weir-persist", 50, &out1), &[]);
    weir.wait_for("subscribed to", 1);
    let mut p = MqttPublisher::connect("pub-p", port);
    publish_all(&mut p, &topic, (0..50).map(|i| (i, 1.0)));
    weir.finish();
    assert_eq!(read_ts(&out1), (0..50).collect::<Vec<_>>());
    // While weir is down.
    publish_all(&mut p, &topic, (50..130).map(|i| (i, 2.0)));
    // Second run with the same client id: the queued messages arrive.
    let out2 = dir.join("out2.csv");
    let weir = WeirProcess::start(&script(&dir, port, &topic, "weir-persist", 80, &out2), &[]);
    let log = weir.finish();
    assert!(
        log.iter().any(|l| l.contains("session present: true")),
        "{log:#?}"
    );
    assert_eq!(read_ts(&out2), (50..130).collect::<Vec<_>>());
}

/// A fixed `client_id`: two pipelines of one source share its one connection (each sees every
/// message, no disconnect loop); two sources with the same fixed id are refused with an error
/// naming the id and the other source, instead of knocking each other off the broker.
#[test]
fn a_fixed_client_id_is_never_two_connections() {
    let broker = Mosquitto::start("client-id");
    let dir = scratch("mqtt-client-id");
    let source = |name: &str| {
        format!(
            "CREATE SOURCE {name} (ts BIGINT, v DOUBLE)
               WITH (connector = 'mqtt', url = 'mqtt://127.0.0.1:{}', topic = 'plant/id', qos = '1',
                     client_id = 'plant-reader', max_messages = '100');",
            broker.port
        )
    };
    let sinks = format!(
        "CREATE SINK a WITH (connector = 'file', path = '{}', header = 'false');
         CREATE SINK b WITH (connector = 'file', path = '{}', header = 'false');",
        dir.join("a.csv").display(),
        dir.join("b.csv").display()
    );
    let script = dir.join("one.sql");
    std::fs::write(
        &script,
        format!(
            "{}{sinks}
             CREATE PIPELINE pa AS INSERT INTO a SELECT ts, v FROM r;
             CREATE PIPELINE pb AS INSERT INTO b SELECT ts, v FROM r WHERE v >= 0;",
            source("r")
        ),
    )
    .unwrap();
    let mut weir = WeirProcess::start(&script, &[]);
    weir.wait_for("subscribed to", 1);
    let mut p = MqttPublisher::connect("client-id-pub", broker.port);
    let n = publish_all(&mut p, "plant/id", (0..100).map(|i| (i, i as f64)));
    let stderr = weir.finish().join("\n");
    assert!(!stderr.contains("reconnects"), "{stderr}");
    for f in ["a.csv", "b.csv"] {
        let rows = std::fs::read_to_string(dir.join(f))
            .unwrap()
            .lines()
            .count();
        assert_eq!(rows, n, "{f}: {stderr}");
    }
    let script = dir.join("two.sql");
    std::fs::write(
        &script,
        format!(
            "{}{}{sinks}
             CREATE PIPELINE pa AS INSERT INTO a SELECT ts, v FROM r;
             CREATE PIPELINE pb AS INSERT INTO b SELECT ts, v FROM s;",
            source("r"),
            source("s")
        ),
    )
    .unwrap();
    let run = weir_tests::run_weir(&script, &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "{stderr}");
    assert!(
        stderr.contains("'plant-reader' is already connected to 127.0.0.1")
            && stderr.contains("by source '"),
        "{stderr}"
    );
}
