//! A small plant for the alert tests: a mosquitto broker, `weir serve` running a pipeline
//! that raises `overheat` alerts from MQTT readings (`temp > 90` raises, `temp < 75` for 30 s
//! of the readings' time verifies, work orders go to `plant/workorders`, review labels to
//! `plant/labels`; each alert carries the current version of the model `risk`, v1 until
//! someone switches to v2; M3 is at site `north`, the others at `south`), the people
//! of the incident loop as users, a publisher of readings and a reader of work orders.
use std::sync::mpsc;
use std::time::Duration;

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};

use crate::serve::{Auth, WeirServer};
use crate::{scratch, Mosquitto, MqttPublisher};

/// The plant.
pub struct Plant {
    /// Its broker.
    pub broker: Mosquitto,
    /// The server.
    pub server: WeirServer,
    /// Publishes readings.
    pub publisher: MqttPublisher,
    /// The work orders received, as JSON.
    pub orders: mpsc::Receiver<Value>,
}

/// The alerting pipeline's script for a broker on `port`, archiving what it reads in
/// `archive` (so each alert's evidence names and traces its input messages).
pub fn script(port: u16, archive: &std::path::Path) -> String {
    format!(
        "CREATE SOURCE readings (machine_id TEXT, ts BIGINT, temp DOUBLE)
           WITH (connector = 'mqtt', url = 'mqtt://127.0.0.1:{port}', topic = 'plant/temps',
                 format = 'json', event_time = 'ts', watermark_delay = '1h',
                 archive = '{archive}');
         CREATE MODEL risk FROM '{models}/linear.onnx' WITH (version = 'v1');
         CREATE MODEL risk FROM '{models}/linear_v2.onnx' WITH (version = 'v2');
         CREATE SINK overheat WITH (connector = 'alerts', key = 'machine_id', severity = 'major',
           title = 'compressor overheating', raise = 'temp > 90', verify = 'temp < 75',
           verify_for = '30s', time = 'ts', playbook = 'Check the cooling fan and the oil level.',
           site = 'site', dispatch_url = 'mqtt://127.0.0.1:{port}', dispatch_topic = 'plant/workorders',
           labels_topic = 'plant/labels');
         CREATE PIPELINE watch WITH (provenance = 'true') AS INSERT INTO overheat
         SELECT machine_id, ts, temp,
                model_version('risk') AS model_version,
                CASE WHEN machine_id = 'M3' THEN 'north' ELSE 'south' END AS site
         FROM readings;",
        models = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/models"),
        archive = archive.display(),
    )
}

/// The people: (name, password, role).
pub const PEOPLE: [(&str, &str, &str); 4] = [
    ("olga", "olga-password", "operator"),
    ("vic", "vic-password", "viewer"),
    ("rita", "rita-password", "reviewer"),
    ("mia", "mia-password", "ml_engineer"),
];

/// `name`'s credentials.
pub fn person(name: &str) -> Auth {
    let p = PEOPLE
        .iter()
        .find(|p| p.0 == name)
        .expect("a person of the plant");
    Auth::Basic(p.0.into(), p.1.into())
}

/// Follows `topic` on the broker at `port`; returns once subscribed.
pub fn follow(port: u16, topic: &str) -> mpsc::Receiver<Value> {
    let id = format!("follow-{}-{}", std::process::id(), topic.replace('/', "-"));
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    let (client, mut conn) = Client::new(o, 1000);
    client
        .subscribe(topic, QoS::AtLeastOnce)
        .expect("subscribe");
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready) = mpsc::channel();
    std::thread::spawn(move || {
        let _keep = client;
        for ev in conn.iter() {
            match ev {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = ready_tx.send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let v = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                    if tx.send(v).is_err() {
                        return;
                    }
                }
                Err(_) => return,
                _ => {}
            }
        }
    });
    ready.recv_timeout(Duration::from_secs(20)).expect("suback");
    rx
}

impl Plant {
    /// Starts the broker, the server with its people, and the pipeline `watch`.
    pub fn start(name: &str) -> Plant {
        let broker = Mosquitto::start(name);
        let dir = scratch(name);
        let server = WeirServer::start(&dir.join("state"), &[]);
        for (n, p, role) in PEOPLE {
            let body = json!({"name": n, "password": p, "roles": [role]});
            assert_eq!(
                server.must("POST", "/api/v1/users", Some(&body)).status,
                201
            );
        }
        let orders = follow(broker.port, "plant/workorders");
        let body = json!({"name": "watch", "sql": script(broker.port, &dir.join("archive"))});
        assert_eq!(
            server.must("POST", "/api/v1/pipelines", Some(&body)).status,
            201
        );
        server.wait_state("watch", "running", Duration::from_secs(30));
        let publisher = MqttPublisher::connect(&format!("{name}-pub"), broker.port);
        let mut plant = Plant {
            broker,
            server,
            publisher,
            orders,
        };
        plant.wait_subscribed();
        plant
    }

    /// Publishes a reading of machine `probe` until the pipeline has read one (its source
    /// subscribes a moment after it runs; the broker keeps nothing for it before).
    fn wait_subscribed(&mut self) {
        let start = std::time::Instant::now();
        while self.server.status("watch")["queries"][0]["rows_in"].as_u64() < Some(1) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the pipeline never read a reading"
            );
            self.publish(&[("probe", 0, 20.0)]);
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Publishes one reading per (machine, ts, temp) and waits for the broker's acks.
    pub fn publish(&mut self, readings: &[(&str, i64, f64)]) {
        for (m, ts, temp) in readings {
            let msg = json!({"machine_id": m, "ts": ts, "temp": temp});
            self.publisher.publish("plant/temps", msg.to_string());
        }
        self.publisher.wait_acks();
    }

    /// Waits until the alerts listed satisfy `ok`; the list.
    pub fn alerts_until(&self, what: &str, ok: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let list = |s: &WeirServer| {
            s.get("/api/v1/alerts")
                .filter(|r| r.status == 200)
                .and_then(|r| r.json().as_array().cloned())
                .unwrap_or_default()
        };
        self.server
            .wait_until(what, Duration::from_secs(30), |s| ok(&list(s)));
        list(&self.server)
    }

    /// Alert `id` with its evidence and events, as `who` sees it.
    pub fn alert(&self, id: u64) -> Value {
        self.server
            .must("GET", &format!("/api/v1/alerts/{id}"), None)
            .json()
    }
}
