//! Graceful shutdown: at SIGTERM or SIGINT `weir run` stops reading, flushes every sink, prints
//! the summary and exits 0 — the file sink holds every row the summary counts (it held 0 bytes
//! after 24,900 rows before), MQTT messages taken in are written, and a checkpointed run stops
//! at a last checkpoint that a restart continues from without a gap or a repeat.
use std::collections::BTreeSet;
use std::time::Duration;

use weir_tests::{scratch, Mosquitto, MqttPublisher, WeirProcess};

/// `rows out N` of pipeline `p` in the summary.
fn rows_out(stderr: &str) -> usize {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("pipeline p:"))
        .unwrap_or_else(|| panic!("no summary: {stderr}"));
    let rest = &line[line.find("rows out ").expect("rows out") + 9..];
    rest.split(',').next().unwrap().trim().parse().unwrap()
}

/// The script: `source` copied to a CSV file.
fn script(dir: &std::path::Path, source: &str) -> std::path::PathBuf {
    let path = dir.join("p.sql");
    std::fs::write(
        &path,
        format!(
            "CREATE SOURCE r (sensor_id TEXT, ts BIGINT, temperature DOUBLE) WITH ({source});
             CREATE SINK out WITH (connector = 'file', path = '{}', header = 'false');
             CREATE PIPELINE p AS INSERT INTO out SELECT sensor_id, ts FROM r;",
            dir.join("out.csv").display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn sigterm_and_sigint_flush_every_sink_and_exit_0() {
    for sig in ["TERM", "INT"] {
        let dir = scratch(&format!("shutdown-{sig}"));
        let path = script(
            &dir,
            "connector = 'generator', sensors = '10', rows = '100000000', rate = '20000', event_time = 'ts'",
        );
        let weir = WeirProcess::start(&path, &[]);
        std::thread::sleep(Duration::from_millis(1500));
        weir.signal(sig);
        let stderr = weir.finish().join("\n");
        assert!(
            stderr.contains(&format!("weir: SIG{sig}: stopping")),
            "{stderr}"
        );
        let n = rows_out(&stderr);
        let lines = std::fs::read_to_string(dir.join("out.csv")).unwrap();
        assert!(n > 1000, "{stderr}");
        assert_eq!(lines.lines().count(), n, "the file holds every row counted");
        assert!(lines.ends_with('\n'), "no torn last line");
    }
}

#[test]
fn sigterm_writes_every_mqtt_message_taken_in() {
    let broker = Mosquitto::start("shutdown");
    let dir = scratch("shutdown-mqtt");
    let path = script(
        &dir,
        &format!(
            "connector = 'mqtt', url = 'mqtt://127.0.0.1:{}', topic = 'plant/r', qos = '1', event_time = 'ts'",
            broker.port
        ),
    );
    let mut weir = WeirProcess::start(&path, &[]);
    weir.wait_for("subscribed to", 1);
    let mut publisher = MqttPublisher::connect("shutdown", broker.port);
    for i in 0..5_000 {
        let m = format!(
            "{{\"sensor_id\":\"s{}\",\"ts\":{},\"temperature\":1}}",
            i % 7,
            1_000 + i
        );
        publisher.publish("plant/r", m);
    }
    publisher.wait_acks();
    std::thread::sleep(Duration::from_secs(2));
    weir.signal("TERM");
    let stderr = weir.finish().join("\n");
    assert_eq!(rows_out(&stderr), 5_000, "{stderr}");
    let got: BTreeSet<String> = std::fs::read_to_string(dir.join("out.csv"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(got.len(), 5_000);
}

/// A checkpointed run stopped by SIGTERM continues from its last checkpoint: the two runs
/// together write every generated row exactly once.
#[test]
fn sigterm_on_a_checkpointed_run_stops_at_a_checkpoint_that_a_restart_continues() {
    let dir = scratch("shutdown-durable");
    let rows = 60_000;
    let path = script(
        &dir,
        &format!("connector = 'generator', sensors = '10', rows = '{rows}', rate = '20000', event_time = 'ts'"),
    );
    let state = dir.join("state");
    let args = [
        "--state-dir",
        state.to_str().unwrap(),
        "--checkpoint-every",
        "200ms",
    ];
    let weir = WeirProcess::start(&path, &args);
    std::thread::sleep(Duration::from_millis(1500));
    weir.signal("TERM");
    let first = weir.finish().join("\n");
    let part = std::fs::read_to_string(dir.join("out.csv"))
        .unwrap()
        .lines()
        .count();
    assert!(
        part > 0 && part < rows,
        "stopped midway: {part} rows; {first}"
    );
    let second = WeirProcess::start(&path, &args).finish().join("\n");
    assert!(second.contains("continued from checkpoint"), "{second}");
    let all: Vec<String> = std::fs::read_to_string(dir.join("out.csv"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!(
        (all.len(), distinct.len()),
        (rows, rows),
        "{first}\n{second}"
    );
}
