//! Durable MQTT ingest by kill -9: QoS 1 messages from a real mosquitto → 1 s windows per
//! sensor → a CSV file, with `--state-dir`, the source's archive and a persistent session.
//! weir is killed (SIGKILL) at random moments while a publisher keeps publishing — also while
//! weir is down — and started again on the same state directory; at the end every message is
//! counted exactly once: each window's count, first time and sum equal what the test computes
//! from the messages it published.
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use weir_tests::{scratch, Mosquitto, MqttPublisher, WeirProcess};

const SENSORS: i64 = 4;
const BASE: i64 = 1_700_000_000_000;

/// Message `i`: sensor, event time, value.
fn message(i: i64) -> (String, i64, i64) {
    (format!("s{}", i % SENSORS), BASE + i * 3, i % 101)
}

/// The lines the job must write: `sensor,first,n,total` per sensor and 1 s window.
fn expected(n: i64) -> Vec<String> {
    let mut w: BTreeMap<(String, i64), (i64, i64, i64)> = BTreeMap::new();
    for i in 0..n {
        let (s, ts, v) = message(i);
        let e = w.entry((s, ts - ts % 1000)).or_insert((ts, 0, 0));
        e.0 = e.0.min(ts);
        e.1 += 1;
        e.2 += v;
    }
    let mut lines: Vec<String> = w
        .into_iter()
        .map(|((s, _), (first, n, total))| format!("{s},{first},{n},{total}"))
        .collect();
    lines.push("sensor,first,n,total".into());
    lines.sort();
    lines
}

fn script(dir: &Path, port: u16, out: &Path) -> String {
    format!(
        "CREATE SOURCE r (sensor TEXT, ts BIGINT, v BIGINT)
           WITH (connector = 'mqtt', url = 'mqtt://127.0.0.1:{port}', topic = 'plant/+/v',
                 qos = '1', client_id = 'weir-durable-{pid}', clean_session = 'false',
                 archive = '{archive}', stop_after_idle = '3s', format = 'json',
                 event_time = 'ts', watermark_delay = '100ms');
         CREATE SINK out WITH (connector = 'file', path = '{out}', format = 'csv');
         CREATE PIPELINE p AS INSERT INTO out
         SELECT sensor, min(ts) AS first, count(*) AS n, sum(v) AS total
         FROM r GROUP BY sensor, tumble(ts, INTERVAL '1' SECOND);",
        pid = std::process::id(),
        archive = dir.join("archive").display(),
        out = out.display()
    )
}

fn sorted_lines(path: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect();
    v.sort();
    v
}

/// Publishes messages `0..n` at about `rate` per second, each acknowledged by the broker.
fn publish(port: u16, n: i64, rate: u64) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut p = MqttPublisher::connect("durable-publisher", port);
        let start = std::time::Instant::now();
        for i in 0..n {
            let (s, ts, v) = message(i);
            p.publish(
                &format!("plant/{s}/v"),
                format!("{{\"sensor\":\"{s}\",\"ts\":{ts},\"v\":{v}}}"),
            );
            let due = Duration::from_millis(i as u64 * 1000 / rate);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        p.wait_acks();
    })
}

#[test]
fn mqtt_kill_9_at_random_moments_counts_every_message_once() {
    let broker = Mosquitto::start_configured("durable", "max_inflight_messages 200\n");
    let dir = scratch("durable-mqtt-kill");
    let out = dir.join("out.csv");
    let sql = dir.join("job.sql");
    std::fs::write(&sql, script(&dir, broker.port, &out)).expect("script");
    let state = dir.join("state").display().to_string();
    // The first run creates the persistent session before anything is published.
    let mut first = WeirProcess::start(&sql, &["--state-dir", &state]);
    first.wait_for("subscribed to", 1);
    first.kill();
    let n = 9000;
    let publisher = publish(broker.port, n, 1000);
    let mut seed = 0x3a77u64;
    for round in 0..12 {
        let workers = if round % 2 == 0 { "1" } else { "2" };
        let args = [
            "--state-dir",
            state.as_str(),
            "--checkpoint-every",
            "200ms",
            "--workers",
            workers,
        ];
        let p = WeirProcess::start(&sql, &args);
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(250 + (seed >> 33) % 500));
        p.kill();
        // Down for a while: the broker queues what is published meanwhile.
        std::thread::sleep(Duration::from_millis((seed >> 20) % 200));
    }
    publisher.join().expect("publisher");
    let log = WeirProcess::start(&sql, &["--state-dir", &state]).finish();
    assert!(
        log.iter().any(|l| l.contains("continued from checkpoint")),
        "{log:#?}"
    );
    let got = sorted_lines(&out);
    let want = expected(n);
    let counted: i64 = got
        .iter()
        .filter_map(|l| l.split(',').nth(2)?.parse::<i64>().ok())
        .sum();
    let missing: Vec<_> = want.iter().filter(|l| !got.contains(l)).take(5).collect();
    assert!(
        got == want,
        "{counted} messages counted in {} lines, {n} published in {} windows; wanted but missing e.g. {missing:?}",
        got.len(),
        want.len()
    );
}
