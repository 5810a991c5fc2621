//! Where an alert kind's work orders go: an MQTT topic the plant's maintenance system
//! follows (`dispatch_url`, `dispatch_topic` on the `alerts` sink). Each work order is one
//! JSON message published at QoS 1 and waited for (its PUBACK) before the dispatch counts.
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Outgoing, Packet, QoS};

/// A work-order target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatch {
    /// The broker's host.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The topic published to.
    pub topic: String,
}

/// How long a work order may take to be acknowledged by the broker.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

impl Dispatch {
    /// Publishes `order` and waits for the broker's acknowledgement.
    pub fn deliver(&self, order: &serde_json::Value) -> Result<(), String> {
        let id = format!("weir-dispatch-{}-{}", std::process::id(), super::now_ms());
        let mut o = MqttOptions::new(id, self.host.clone(), self.port);
        o.set_keep_alive(Duration::from_secs(5));
        let (client, mut conn) = Client::new(o, 8);
        let payload = order.to_string().into_bytes();
        client
            .publish(self.topic.clone(), QoS::AtLeastOnce, false, payload)
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        let mut result = Err(format!(
            "mqtt://{}:{} did not acknowledge within {DELIVERY_TIMEOUT:?}",
            self.host, self.port
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
                    result = Err(format!("mqtt://{}:{}: {e}", self.host, self.port));
                    break;
                }
            }
        }
        let _ = client.disconnect();
        result
    }
}
