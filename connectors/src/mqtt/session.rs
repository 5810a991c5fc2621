//! The MQTT source's connection: a background thread drives rumqttc's event loop
//! (reconnecting with backoff, subscribing on every connect) and hands received messages to
//! the worker over a channel. With manual acknowledgements (a source with an archive) each
//! message carries what the worker needs to acknowledge it once it is on disk. Dropping the
//! session disconnects it and ends the thread — after the acknowledgements queued before it
//! have gone out — so the next job of a checkpointed run can take over the same client id.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{Event, Outgoing, Packet, QoS};

use super::{next_backoff, Conn};
use crate::ConnectorMetrics;

/// A received message.
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    /// The broker flagged it as a redelivery.
    pub dup: bool,
    /// What acknowledges it (manual acknowledgements only).
    pub ack: Option<Ack>,
}

/// The packet an acknowledgement answers (its payload dropped).
pub enum Ack {
    V4(rumqttc::Publish),
    V5(rumqttc::v5::mqttbytes::v5::Publish),
}

/// A client of either protocol version.
#[derive(Clone)]
enum Client {
    V4(rumqttc::Client),
    V5(rumqttc::v5::Client),
}

impl Client {
    fn subscribe(&self, filter: &str, qos: QoS) -> Result<(), String> {
        use rumqttc::v5::mqttbytes::QoS as Q5;
        match self {
            Client::V4(c) => c.try_subscribe(filter, qos).map_err(|e| e.to_string()),
            Client::V5(c) => {
                let q = match qos {
                    QoS::AtMostOnce => Q5::AtMostOnce,
                    QoS::AtLeastOnce => Q5::AtLeastOnce,
                    QoS::ExactlyOnce => Q5::ExactlyOnce,
                };
                c.try_subscribe(filter, q).map_err(|e| e.to_string())
            }
        }
    }

    fn disconnect(&self) {
        let _ = match self {
            Client::V4(c) => c.try_disconnect().map_err(|e| e.to_string()),
            Client::V5(c) => c.try_disconnect().map_err(|e| e.to_string()),
        };
    }
}

/// A connection and the messages it receives.
pub struct Session {
    client: Client,
    /// Received messages.
    pub rx: Receiver<Message>,
    stop: Arc<AtomicBool>,
    /// This session's client id on its broker, held while it lives.
    _claim: super::claim::Claim,
}

impl Session {
    /// Connects (MQTT 5 when `v5`) and subscribes to `filter`; `manual_acks`: messages are
    /// acknowledged by [`Session::ack`], not on receipt.
    pub fn start(
        name: String,
        conn: &Conn,
        v5: bool,
        manual_acks: bool,
        filter: String,
        m: Arc<ConnectorMetrics>,
    ) -> crate::Result<Session> {
        let (conn, claim) = super::claim::claim(conn, &name)?;
        let conn = &conn;
        let (tx, rx) = mpsc::sync_channel(65_536);
        let stop = Arc::new(AtomicBool::new(false));
        let qos = conn.qos;
        let s = stop.clone();
        let thread = name.clone();
        let client = if v5 {
            let mut o = conn.v5();
            o.set_manual_acks(manual_acks);
            let (client, mut connection) = rumqttc::v5::Client::new(o, 1024);
            let c = Client::V5(client.clone());
            spawn(&thread, move || {
                let events = connection.iter().map(v5_event);
                drive(&name, &filter, "5", events, &c, qos, tx, m, s)
            })?;
            Client::V5(client)
        } else {
            let mut o = conn.v4();
            o.set_manual_acks(manual_acks);
            let (client, mut connection) = rumqttc::Client::new(o, 1024);
            let c = Client::V4(client.clone());
            spawn(&thread, move || {
                let events = connection.iter().map(v4_event);
                drive(&name, &filter, "3.1.1", events, &c, qos, tx, m, s)
            })?;
            Client::V4(client)
        };
        Ok(Session {
            client,
            rx,
            stop,
            _claim: claim,
        })
    }

    /// Acknowledges a message to the broker.
    pub fn ack(&self, ack: &Ack) -> crate::Result<()> {
        let r = match (&self.client, ack) {
            (Client::V4(c), Ack::V4(p)) => c.ack(p).map_err(|e| e.to_string()),
            (Client::V5(c), Ack::V5(p)) => c.ack(p).map_err(|e| e.to_string()),
            _ => Err("an acknowledgement for the other protocol version".into()),
        };
        r.map_err(|e| crate::Error::io("acknowledging an MQTT message", std::io::Error::other(e)))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.client.disconnect();
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> crate::Result<()> {
    std::thread::Builder::new()
        .name(format!("mqtt-{name}"))
        .spawn(f)
        .map(|_| ())
        .map_err(|e| crate::Error::io("starting the MQTT thread", e))
}

/// A connection event, the same for both protocol versions.
enum Ev {
    ConnAck(bool),
    SubAck,
    Publish(Box<Message>),
    Lost(String),
    Closed,
    Other,
}

/// A received message as an event.
fn publish(topic: String, payload: Vec<u8>, dup: bool, ack: Ack) -> Ev {
    Ev::Publish(Box::new(Message {
        topic,
        payload,
        dup,
        ack: Some(ack),
    }))
}

fn v4_event(e: Result<Event, rumqttc::ConnectionError>) -> Ev {
    match e {
        Ok(Event::Incoming(Packet::ConnAck(a))) => Ev::ConnAck(a.session_present),
        Ok(Event::Incoming(Packet::SubAck(_))) => Ev::SubAck,
        Ok(Event::Incoming(Packet::Publish(p))) => {
            let (topic, payload, dup) = (p.topic.clone(), p.payload.to_vec(), p.dup);
            let ack = Ack::V4(rumqttc::Publish {
                payload: Default::default(),
                ..p
            });
            publish(topic, payload, dup, ack)
        }
        Ok(Event::Outgoing(Outgoing::Disconnect)) => Ev::Closed,
        Ok(_) => Ev::Other,
        Err(e) => Ev::Lost(e.to_string()),
    }
}

fn v5_event(e: Result<rumqttc::v5::Event, rumqttc::v5::ConnectionError>) -> Ev {
    use rumqttc::v5::mqttbytes::v5::Packet as P5;
    use rumqttc::v5::Event as E5;
    match e {
        Ok(E5::Incoming(P5::ConnAck(a))) => Ev::ConnAck(a.session_present),
        Ok(E5::Incoming(P5::SubAck(_))) => Ev::SubAck,
        Ok(E5::Incoming(P5::Publish(p))) => {
            let topic = String::from_utf8_lossy(&p.topic).to_string();
            let (payload, dup) = (p.payload.to_vec(), p.dup);
            let ack = Ack::V5(rumqttc::v5::mqttbytes::v5::Publish {
                payload: Default::default(),
                ..p
            });
            publish(topic, payload, dup, ack)
        }
        Ok(E5::Outgoing(Outgoing::Disconnect)) => Ev::Closed,
        Ok(_) => Ev::Other,
        Err(e) => Ev::Lost(e.to_string()),
    }
}

/// Drives one connection: counts, subscribes on every (re)connect, forwards messages, backs
/// off after a lost connection (the client reconnects on the next poll), ends when the
/// session is dropped.
#[allow(clippy::too_many_arguments)]
fn drive(
    name: &str,
    filter: &str,
    protocol: &str,
    events: impl Iterator<Item = Ev>,
    client: &Client,
    qos: QoS,
    tx: SyncSender<Message>,
    m: Arc<ConnectorMetrics>,
    stop: Arc<AtomicBool>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut was_connected = false;
    for event in events {
        match event {
            Ev::ConnAck(session_present) => {
                if was_connected {
                    m.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                was_connected = true;
                backoff = Duration::from_millis(100);
                tracing::info!("mqtt source '{name}': connected with MQTT {protocol} (session present: {session_present})");
                if let Err(e) = client.subscribe(filter, qos) {
                    tracing::warn!("mqtt source '{name}': subscribing to {filter}: {e}");
                }
            }
            Ev::SubAck => tracing::info!("mqtt source '{name}': subscribed to {filter}"),
            Ev::Publish(msg) => {
                m.messages.fetch_add(1, Ordering::Relaxed);
                m.bytes
                    .fetch_add(msg.payload.len() as u64, Ordering::Relaxed);
                if tx.send(*msg).is_err() {
                    client.disconnect();
                }
            }
            Ev::Closed => return,
            Ev::Lost(_) if stop.load(Ordering::Relaxed) => return,
            Ev::Lost(e) => {
                tracing::warn!(
                    "mqtt source '{name}': connection lost ({e}); retrying in {backoff:?}"
                );
                std::thread::sleep(backoff);
                backoff = next_backoff(backoff);
            }
            Ev::Other => {}
        }
    }
}
