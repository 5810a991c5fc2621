//! MQTT fault tests against a real mosquitto: the broker killed and restarted mid-stream (QoS 1,
//! persistent session), and weir restarted while messages are published (persistent session:
//! the broker queues them and weir receives them when it comes back).
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use weir_tests::{scratch, weir_bin, Mosquitto};

/// A publisher that waits for each QoS 1 acknowledgement.
struct Publisher {
    client: Client,
    acks: Receiver<()>,
}

impl Publisher {
    fn connect(id: &str, port: u16) -> Publisher {
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(30));
        let (client, mut conn) = Client::new(o, 1000);
        let (tx, acks) = mpsc::channel();
        std::thread::spawn(move || {
            for ev in conn.iter() {
                match ev {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        if tx.send(()).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                    _ => {}
                }
            }
        });
        Publisher { client, acks }
    }

    fn publish_all(&self, topic: &str, rows: impl Iterator<Item = (i64, f64)>) -> usize {
        let mut n = 0;
        for (ts, v) in rows {
            self.client
                .publish(topic, QoS::AtLeastOnce, false, format!("{{\"ts\":{ts},\"v\":{v}}}").into_bytes())
                .unwrap();
            n += 1;
        }
        for _ in 0..n {
            self.acks.recv_timeout(Duration::from_secs(20)).expect("puback");
        }
        n
    }
}

/// `weir run` with stderr read line by line.
struct Weir {
    child: Child,
    lines: Receiver<String>,
    log: Vec<String>,
}

impl Weir {
    fn start(script: &std::path::Path) -> Weir {
        let mut child = Command::new(weir_bin())
            .args(["run", script.to_str().unwrap(), "--progress", "0"])
            .env("WEIR_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        Weir { child, lines, log: Vec::new() }
    }

    fn wait_for(&mut self, needle: &str, nth: usize) {
        let start = Instant::now();
        while self.log.iter().filter(|l| l.contains(needle)).count() < nth {
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(100)) {
                self.log.push(l);
            }
            assert!(start.elapsed() < Duration::from_secs(30), "waiting for '{needle}' #{nth}: {:#?}", self.log);
        }
    }

    fn finish(mut self) -> Vec<String> {
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "weir did not finish: {:#?}", self.log);
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.log.push(l);
        }
        assert!(status.success(), "{:#?}", self.log);
        self.log
    }
}

fn script(dir: &std::path::Path, port: u16, topic: &str, client_id: &str, max: usize, out: &std::path::Path) -> std::path::PathBuf {
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
    let mut weir = Weir::start(&script(&dir, port, &topic, "weir-restart", 400, &out));
    weir.wait_for("subscribed to", 1);
    let p = Publisher::connect("pub-1", port);
    assert_eq!(p.publish_all(&topic, (0..200).map(|i| (i, i as f64))), 200);
    // Give weir the first half, then take the broker away and bring it back on the same port.
    std::thread::sleep(Duration::from_millis(300));
    broker.stop();
    std::thread::sleep(Duration::from_millis(500));
    let _broker2 = Mosquitto::start_on("restart2", port);
    weir.wait_for("subscribed to", 2);
    let p2 = Publisher::connect("pub-2", port);
    assert_eq!(p2.publish_all(&topic, (200..400).map(|i| (i, i as f64))), 200);
    let log = weir.finish();
    assert!(log.iter().any(|l| l.contains("connection lost")), "{log:#?}");
    let counters = log.iter().find(|l| l.trim_start().starts_with("source:")).cloned().unwrap_or_default();
    assert!(counters.contains("messages 400") && counters.contains("reconnects 1"), "{counters}");
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
    let mut weir = Weir::start(&script(&dir, port, &topic, "weir-persist", 50, &out1));
    weir.wait_for("subscribed to", 1);
    let p = Publisher::connect("pub-p", port);
    p.publish_all(&topic, (0..50).map(|i| (i, 1.0)));
    weir.finish();
    assert_eq!(read_ts(&out1), (0..50).collect::<Vec<_>>());
    // While weir is down.
    p.publish_all(&topic, (50..130).map(|i| (i, 2.0)));
    // Second run with the same client id: the queued messages arrive.
    let out2 = dir.join("out2.csv");
    let weir = Weir::start(&script(&dir, port, &topic, "weir-persist", 80, &out2));
    let log = weir.finish();
    assert!(log.iter().any(|l| l.contains("session present: true")), "{log:#?}");
    assert_eq!(read_ts(&out2), (50..130).collect::<Vec<_>>());
}
