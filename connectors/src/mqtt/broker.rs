//! The embedded MQTT broker (rumqttd) for edge boxes without one: `weir run --mqtt-listen
//! 127.0.0.1:1883` starts it inside the weir process before the pipelines, so sensors publish
//! straight to weir and pipelines read it with `connector = 'mqtt'` at that address.
use std::net::SocketAddr;

use crate::{Error, Result};

/// Starts an MQTT 3.1.1 broker listening on `listen` in a background thread.
pub fn start(listen: SocketAddr) -> Result<()> {
    let config = serde_json::json!({
        "id": 0,
        "router": {
            "max_connections": 10010,
            "max_outgoing_packet_count": 200,
            "max_segment_size": 104857600,
            "max_segment_count": 10
        },
        "v4": {
            "1": {
                "name": "weir-v4",
                "listen": listen.to_string(),
                "next_connection_delay_ms": 1,
                "connections": {
                    "connection_timeout_ms": 60000,
                    "max_payload_size": 1048576,
                    "max_inflight_count": 100,
                    "dynamic_filters": true
                }
            }
        }
    });
    let config: rumqttd::Config = serde_json::from_value(config).map_err(|e| Error::Option {
        option: "mqtt-listen".into(),
        message: format!("broker config: {e}"),
    })?;
    // Fail early when the address is taken.
    std::net::TcpListener::bind(listen)
        .map_err(|e| Error::io(format!("listening on {listen}"), e))?;
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            if let Err(e) = broker.start() {
                tracing::error!("embedded MQTT broker on {listen}: {e}");
            }
        })
        .map_err(|e| Error::io("starting the embedded MQTT broker", e))?;
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(listen).is_err() {
        if start.elapsed() > std::time::Duration::from_secs(10) {
            return Err(Error::io(
                format!("embedded MQTT broker on {listen}"),
                std::io::Error::from(std::io::ErrorKind::TimedOut),
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    tracing::info!("embedded MQTT broker listening on {listen}");
    Ok(())
}
