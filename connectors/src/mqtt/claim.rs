//! One connection per MQTT client id within a weir process. A broker drops the older of two
//! connections with one client id, so two sources with the same `client_id` knock each other
//! off in turn (110 disconnects in 11 s, each seeing half the data). A source claims its id on
//! a broker while its session lives: a derived id that is taken gets a suffix (`-2`, `-3`, …);
//! a fixed `client_id` that is taken is waited for briefly (the previous job of a checkpointed
//! run hands it over as it stops) and then refused with an error naming the other source.
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Conn;
use crate::{Error, Result};

/// `host:port/client id` → the source holding it.
static CLAIMED: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());

/// How long a fixed client id that is taken is waited for.
const HANDOVER: Duration = Duration::from_secs(5);

/// A claimed client id, released when dropped.
pub struct Claim {
    key: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Ok(mut c) = CLAIMED.lock() {
            c.remove(&self.key);
        }
    }
}

fn key(conn: &Conn, id: &str) -> String {
    format!("{}:{}/{id}", conn.host, conn.port)
}

/// Claims `conn`'s client id for source `owner`; gives the connection settings to use (a
/// derived id may have been given a suffix) and the claim.
pub fn claim(conn: &Conn, owner: &str) -> Result<(Conn, Claim)> {
    let started = Instant::now();
    loop {
        let mut claimed = CLAIMED
            .lock()
            .map_err(|_| Error::Format("the MQTT client-id registry is poisoned".into()))?;
        let free = (1..=1000)
            .map(|n| match n {
                1 => conn.id.clone(),
                n => format!("{}-{n}", conn.id),
            })
            .take(if conn.fixed_id { 1 } else { 1000 })
            .find(|id| !claimed.contains_key(&key(conn, id)));
        if let Some(id) = free {
            let k = key(conn, &id);
            claimed.insert(k.clone(), owner.to_string());
            return Ok((conn.with_id(id), Claim { key: k }));
        }
        let holder = claimed
            .get(&key(conn, &conn.id))
            .cloned()
            .unwrap_or_default();
        drop(claimed);
        if started.elapsed() >= HANDOVER {
            return Err(Error::Option {
                option: "client_id".into(),
                message: format!(
                    "'{}' is already connected to {}:{} by source '{holder}' in this weir; two \
                     connections with one client id knock each other off the broker. Give each \
                     source its own client_id, or leave it out and weir derives one",
                    conn.id, conn.host, conn.port
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
