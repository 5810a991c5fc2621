//! The MQTT sink's forwarder: one thread per spool publishes it in order, a batch at a time,
//! and marks a batch acknowledged once the broker has acknowledged every message of it
//! (QoS 1 PUBACK, QoS 2 PUBCOMP; at QoS 0, once sent). Its connection is a clean session, so
//! after a lost connection the client forgets what it had in flight and the forwarder sends the
//! unacknowledged batch again once connected — in order, possibly twice (see `spool.rs`).
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rumqttc::{Client, Event, Outgoing, Packet, QoS};

use super::spool::Spool;
use super::{next_backoff, Conn};

/// The connection as the forwarder sees it.
#[derive(Default)]
struct Link {
    /// Incremented on every connect.
    generation: u64,
    up: bool,
    /// Acknowledgements in this generation.
    acks: u64,
}

type Shared = Arc<(Mutex<Link>, Condvar)>;

/// Starts the forwarder of `spool`, publishing to `topic`.
pub fn start(
    name: String,
    spool: Arc<Spool>,
    conn: &Conn,
    topic: String,
    retain: bool,
) -> crate::Result<()> {
    let qos = conn.qos;
    let mut o = conn.v4();
    o.set_clean_session(true);
    let (client, connection) = Client::new(o, 1024);
    let link: Shared = Arc::default();
    let l = link.clone();
    let n = name.clone();
    std::thread::Builder::new()
        .name(format!("mqtt-link-{name}"))
        .spawn(move || drive(&n, connection, qos, l))
        .map_err(|e| crate::Error::io("starting the MQTT thread", e))?;
    std::thread::Builder::new()
        .name(format!("mqtt-spool-{name}"))
        .spawn(move || {
            if let Err(e) = forward(&spool, &client, &topic, qos, retain, &link) {
                tracing::error!("mqtt sink '{name}': the spool's forwarder stopped: {e}");
            }
        })
        .map_err(|e| crate::Error::io("starting the MQTT thread", e))?;
    Ok(())
}

/// Follows the connection: connects, counts acknowledgements, backs off after a loss.
fn drive(name: &str, mut connection: rumqttc::Connection, qos: QoS, link: Shared) {
    let mut backoff = Duration::from_millis(100);
    for event in connection.iter() {
        let (lock, cvar) = &*link;
        let Ok(mut l) = lock.lock() else { return };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                l.generation += 1;
                l.up = true;
                l.acks = 0;
                backoff = Duration::from_millis(100);
            }
            Ok(Event::Incoming(Packet::PubAck(_))) if qos == QoS::AtLeastOnce => l.acks += 1,
            Ok(Event::Incoming(Packet::PubComp(_))) if qos == QoS::ExactlyOnce => l.acks += 1,
            Ok(Event::Outgoing(Outgoing::Publish(_))) if qos == QoS::AtMostOnce => l.acks += 1,
            Ok(_) => continue,
            Err(e) => {
                l.up = false;
                drop(l);
                cvar.notify_all();
                tracing::warn!("mqtt sink '{name}': connection lost ({e}); retrying in {backoff:?}; output waits in the spool");
                std::thread::sleep(backoff);
                backoff = next_backoff(backoff);
                continue;
            }
        }
        drop(l);
        cvar.notify_all();
    }
}

/// Publishes the spool batch by batch, each until all of it is acknowledged in one connection.
fn forward(
    spool: &Spool,
    client: &Client,
    topic: &str,
    qos: QoS,
    retain: bool,
    link: &Shared,
) -> crate::Result<()> {
    let (lock, cvar) = &**link;
    let poisoned = || crate::Error::Format("the MQTT link's lock is poisoned".into());
    loop {
        let (batch, mark) = spool.peek(100, Duration::from_millis(500))?;
        if batch.is_empty() {
            continue;
        }
        let (generation, base) = {
            let mut l = lock.lock().map_err(|_| poisoned())?;
            while !l.up {
                l = cvar
                    .wait_timeout(l, Duration::from_millis(200))
                    .map_err(|_| poisoned())?
                    .0;
            }
            (l.generation, l.acks)
        };
        for m in batch.iter() {
            client.publish(topic, qos, retain, m.clone()).map_err(|e| {
                crate::Error::io("publishing to MQTT", std::io::Error::other(e.to_string()))
            })?;
        }
        let mut l = lock.lock().map_err(|_| poisoned())?;
        let done = loop {
            if l.generation != generation {
                break false;
            }
            if l.acks - base >= batch.len() as u64 {
                break true;
            }
            l = cvar
                .wait_timeout(l, Duration::from_millis(200))
                .map_err(|_| poisoned())?
                .0;
        };
        drop(l);
        if done {
            spool.acked(mark)?;
        }
    }
}
