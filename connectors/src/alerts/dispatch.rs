//! Where an alert kind's work orders and review labels go (`dispatch_url`/`dispatch_topic`,
//! `labels_url`/`labels_topic` on the `alerts` sink): an MQTT topic the plant's maintenance
//! system follows — each message one JSON object published at QoS 1 and waited for (its
//! PUBACK) — or an HTTP webhook (`http://host:port/path`), each message POSTed as JSON and
//! counted on a 2xx answer. Either way a message that is not taken within 5 s is not
//! delivered, and the action that sent it changes nothing.
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Outgoing, Packet, QoS};

/// A work-order (or label) target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dispatch {
    /// An MQTT topic.
    Mqtt {
        /// The broker's host.
        host: String,
        /// Its port.
        port: u16,
        /// The topic published to.
        topic: String,
    },
    /// An HTTP endpoint POSTed to.
    Http {
        /// The URL.
        url: String,
    },
}

/// How long a message may take to be acknowledged by the broker or answered by the webhook.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

impl Dispatch {
    /// Sends `message` and waits until it is taken.
    pub fn deliver(&self, message: &serde_json::Value) -> Result<(), String> {
        match self {
            Dispatch::Mqtt { host, port, topic } => publish(host, *port, topic, message),
            Dispatch::Http { url } => post(url, message),
        }
    }
}

/// POSTs `message` as JSON to `url`; a 2xx answer delivers it.
fn post(url: &str, message: &serde_json::Value) -> Result<(), String> {
    let r = ureq::post(url)
        .timeout(DELIVERY_TIMEOUT)
        .set("Content-Type", "application/json")
        .send_string(&message.to_string());
    match r {
        Ok(_) => Ok(()),
        Err(ureq::Error::Status(code, r)) => {
            let body = r.into_string().unwrap_or_default();
            let body: String = body.chars().take(200).collect();
            Err(format!("{url} answered {code}: {body}"))
        }
        Err(e) => Err(format!("{url}: {e}")),
    }
}

/// Publishes `order` to `topic` and waits for the broker's acknowledgement.
fn publish(host: &str, port: u16, topic: &str, order: &serde_json::Value) -> Result<(), String> {
    let id = format!("weir-dispatch-{}-{}", std::process::id(), super::now_ms());
    let mut o = MqttOptions::new(id, host.to_string(), port);
    o.set_keep_alive(Duration::from_secs(5));
    let (client, mut conn) = Client::new(o, 8);
    let payload = order.to_string().into_bytes();
    client
        .publish(topic.to_string(), QoS::AtLeastOnce, false, payload)
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut result = Err(format!(
        "mqtt://{host}:{port} did not acknowledge within {DELIVERY_TIMEOUT:?}"
    ));
    while start.elapsed() < DELIVERY_TIMEOUT {
        match conn.recv_timeout(Duration::from_millis(200)) {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => {
                result = Ok(());
                break;
            }
            Ok(Ok(Event::Outgoing(Outgoing::Disconnect))) => break,
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(e)) => {
                result = Err(format!("mqtt://{host}:{port}: {e}"));
                break;
            }
        }
    }
    let _ = client.disconnect();
    result
}
