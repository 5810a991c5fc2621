//! MQTT sink store-and-forward against a real mosquitto: a rate-limited generator → an MQTT
//! sink with a spool; the broker is stopped for 30 s mid-run (gracefully, its persistence
//! keeping the subscriber's session) and started again on the same port. Every row arrives —
//! after dropping repeats by the content id the sink adds — exactly once, each sensor's rows
//! in order, and the spool ends empty.
use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use weir_tests::{scratch, Mosquitto, WeirProcess};

/// A persistent-session subscriber that reconnects by itself; sends each payload.
fn subscribe(port: u16, topic: &str) -> mpsc::Receiver<String> {
    let mut o = rumqttc::MqttOptions::new("spool-subscriber", "127.0.0.1", port);
    o.set_clean_session(false);
    o.set_keep_alive(Duration::from_secs(5));
    let (client, mut conn) = rumqttc::Client::new(o, 100);
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready) = mpsc::channel();
    let topic = topic.to_string();
    std::thread::spawn(move || {
        for ev in conn.iter() {
            match ev {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                    let _ = client.try_subscribe(topic.clone(), rumqttc::QoS::AtLeastOnce);
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                    let _ = ready_tx.send(());
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    if tx
                        .send(String::from_utf8_lossy(&p.payload).to_string())
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    });
    ready
        .recv_timeout(Duration::from_secs(10))
        .expect("subscribed");
    rx
}

#[test]
fn the_broker_down_30s_loses_nothing_and_the_spool_drains() {
    let dir = scratch("mqtt-spool");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut broker = Mosquitto::start_persistent(&dir, port);
    let topic = format!("weir{}/spooled", std::process::id());
    let rx = subscribe(port, &topic);
    let rows = 2400;
    let sql = dir.join("job.sql");
    std::fs::write(
        &sql,
        format!(
            "CREATE SOURCE r (sensor_id TEXT, ts BIGINT, temperature DOUBLE)
               WITH (connector = 'generator', sensors = '6', rows = '{rows}', rate = '60', batch = '6');
             CREATE SINK out WITH (connector = 'mqtt', url = 'mqtt://127.0.0.1:{port}', topic = '{topic}',
                                   spool = '{}', id_field = 'id');
             CREATE PIPELINE p AS INSERT INTO out SELECT sensor_id, ts, temperature FROM r;",
            dir.join("spool").display()
        ),
    )
    .expect("script");
    let weir = WeirProcess::start(&sql, &[]);
    std::thread::sleep(Duration::from_secs(5));
    broker.terminate();
    let spool_log = dir.join("spool/spool.log");
    let before = std::fs::metadata(&spool_log).map(|m| m.len()).unwrap_or(0);
    std::thread::sleep(Duration::from_secs(30));
    let during = std::fs::metadata(&spool_log).map(|m| m.len()).unwrap_or(0);
    assert!(
        during > before,
        "output piled up in the spool while the broker was down"
    );
    let _broker = Mosquitto::start_persistent(&dir, port);
    let log = weir.finish();
    let sink = log
        .iter()
        .find(|l| l.trim_start().starts_with("sink:"))
        .cloned()
        .unwrap_or_default();
    assert!(
        sink.contains(&format!("messages {rows}")) && !sink.contains("spooled"),
        "the spool drained: {sink}"
    );
    let (mut ids, mut last, mut repeats) = (HashSet::new(), HashMap::new(), 0);
    let start = Instant::now();
    while ids.len() < rows && start.elapsed() < Duration::from_secs(30) {
        let Ok(m) = rx.recv_timeout(Duration::from_millis(500)) else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&m).expect("json");
        if !ids.insert(v["id"].as_str().expect("an id").to_string()) {
            repeats += 1;
            continue;
        }
        let sensor = v["sensor_id"].as_str().expect("sensor").to_string();
        let ts = v["ts"].as_i64().expect("ts");
        let prev = last.insert(sensor.clone(), ts);
        assert!(prev.is_none_or(|p| p < ts), "{sensor}: {prev:?} then {ts}");
    }
    assert_eq!(ids.len(), rows, "{repeats} repeats dropped");
    let acked = std::fs::read_to_string(dir.join("spool/spool.acked")).expect("acked mark");
    assert!(acked.starts_with(&format!("{rows} ")), "{acked}");
}
