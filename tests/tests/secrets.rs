//! Secrets never show: a password given as an option or inside a URL (`mqtt://user:pass@…`)
//! is absent from every output of `weir explain`, `weir lineage`, `weir run` (its summary and
//! progress, its logs at trace level, its OpenLineage events) — and the URL's credentials do
//! log in.
use std::process::Command;

use weir_tests::{scratch, weir_bin, Mosquitto, MqttPublisher, WeirProcess};

const PASSWORD: &str = "Kx9-secret-Vq2";

#[test]
fn a_password_is_absent_from_every_output() {
    let broker = Mosquitto::start_with_password("secrets", "weir", PASSWORD);
    let dir = scratch("secrets");
    let (out, events) = (dir.join("out.csv"), dir.join("events.jsonl"));
    let script = dir.join("p.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE SOURCE r (ts BIGINT, v DOUBLE)
               WITH (connector = 'mqtt', url = 'mqtt://weir:{PASSWORD}@127.0.0.1:{port}', topic = 'plant/s',
                     qos = '1', event_time = 'ts', max_messages = '3');
             CREATE SINK out WITH (connector = 'file', path = '{}', header = 'false');
             CREATE SINK echo WITH (connector = 'mqtt', url = 'mqtt://127.0.0.1:{port}', topic = 'plant/echo',
                                    username = 'weir', password = '{PASSWORD}');
             CREATE PIPELINE p AS INSERT INTO out SELECT ts, v FROM r;
             CREATE PIPELINE q AS INSERT INTO echo SELECT ts, v FROM r;",
            out.display(),
            port = broker.port,
        ),
    )
    .unwrap();
    let mut outputs = Vec::new();
    for args in [
        vec!["explain"],
        vec!["explain", "--json"],
        vec!["lineage"],
        vec!["lineage", "--json"],
        vec!["lineage", "--dot"],
    ] {
        let o = Command::new(weir_bin())
            .args(&args)
            .arg(&script)
            .env("WEIR_LOG", "trace")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        outputs.push((format!("{args:?}"), o.stdout));
        outputs.push((format!("{args:?} stderr"), o.stderr));
    }
    let lineage = format!("--lineage-events={}", events.display());
    let mut weir = WeirProcess::start_logging(&script, &[&lineage, "--json-summary"], "trace");
    weir.wait_for("subscribed to", 1);
    let mut publisher = MqttPublisher::connect_as("secrets", broker.port, Some(("weir", PASSWORD)));
    for i in 0..3 {
        publisher.publish("plant/s", format!("{{\"ts\":{},\"v\":{i}}}", 1000 + i));
    }
    publisher.wait_acks();
    let log = weir.finish().join("\n");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap().lines().count(),
        3,
        "the URL's credentials logged in: {log}"
    );
    outputs.push(("run stderr".into(), log.into_bytes()));
    outputs.push(("lineage events".into(), std::fs::read(&events).unwrap()));
    for (what, bytes) in &outputs {
        assert!(
            !bytes.is_empty() || what.ends_with("stderr"),
            "{what} is empty"
        );
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !text.contains(PASSWORD),
            "{what} shows the password:\n{text}"
        );
    }
    let explain = String::from_utf8_lossy(&outputs[2].1);
    assert!(
        explain.contains("weir:****@127.0.0.1"),
        "the URL is shown, hidden: {explain}"
    );
}
