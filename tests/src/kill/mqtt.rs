//! MQTT QoS 1 (mosquitto) → 1 s windows per sensor → a CSV file, with the source's archive and
//! a persistent session; a publisher keeps publishing while weir is killed and started again
//! (also while it is down). The reference is computed from the published messages.
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::{sorted_lines, Rounds, Tally};
use crate::{scratch, Mosquitto, MqttPublisher, WeirProcess};

const SENSORS: i64 = 4;
const BASE: i64 = 1_700_000_000_000;

/// Message `i`: sensor, event time, value.
fn message(i: i64) -> (String, i64, i64) {
    (format!("s{}", i % SENSORS), BASE + i * 3, i % 101)
}

/// The lines the job must write for messages `0..n`: `sensor,first,n,total` per sensor and
/// 1 s window, and the header.
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

/// Publishes `n` messages at `rate`/s while `rounds` kill weir; then lets a last run finish.
/// Gives the tally and the last run's log.
pub fn run(n: i64, rate: u64, rounds: &Rounds) -> (Tally, Vec<String>) {
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
    let publisher = publish(broker.port, n, rate);
    rounds.run(&sql, &state);
    publisher.join().expect("publisher");
    let log = WeirProcess::start(&sql, &["--state-dir", &state]).finish();
    (
        Tally::of(&expected(n), &sorted_lines(&out), rounds.kills),
        log,
    )
}
