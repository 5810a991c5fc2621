//! MQTT (3.1.1) source and sink over rumqttc.
//!
//! Source options: `url` (`mqtt://host:port`, default `mqtt://127.0.0.1:1883`), `topic` (a
//! filter with `+`/`#`, required), `protocol` (`3.1.1` default, or `5`), `shared_group` (every
//! worker subscribes to `$share/<group>/<topic>` and the broker spreads messages across them), `topic_columns` (names for the `+` levels, left to right),
//! `qos` (0, 1 or 2; default 1), `client_id` (default `weir-<source>-<pid>`), `clean_session`
//! (default true; false with a fixed `client_id` keeps a persistent session, so messages
//! published while weir was down are delivered when it comes back), `username`, `password`,
//! `keep_alive` ('30s'), `max_messages` (stop after this many; 0 = run forever),
//! `stop_after_idle` (stop when no message arrived for this long after the first; default off),
//! `extra_column` (a declared TEXT column that receives the payload's undeclared fields as a
//! JSON object; without it they are ignored), `archive` (a directory that keeps every received
//! message, numbered, so that provenance can name and `weir trace` read them back; messages
//! are then acknowledged only once archived and fsynced, and with a fixed `client_id` and
//! `clean_session = 'false'` a job with `--state-dir` resumes from the archive after kill -9),
//! `dedup_window` (with an archive: a redelivered message among the last this many archived is
//! dropped, counted as `duplicates`; default 100000).
//!
//! Sink options: `url`, `topic` (required), `qos` (default 1), `client_id`, `username`,
//! `password`, `retain` (default false), `spool` (store-and-forward directory; under
//! `--state-dir` the sink spools there by default), `spool_max` (default 1000000),
//! `spool_full` (`block` or `drop_oldest`), `id_field` (a content-hash id field added to each
//! message). Rows are published one JSON object per message.
//!
//! TLS (both): `url = 'mqtts://host:port'` or `tls = 'true'`, with `ca_file` (PEM of the CA
//! that signed the broker's certificate) and, for client authentication, `client_cert_file` and
//! `client_key_file` (rustls with the ring provider).
//!
//! Lost brokers are retried with exponential backoff (100 ms doubling to 5 s); a clean-session
//! source subscribes again on every reconnect.
pub mod archive;
pub mod broker;
mod claim;
pub mod dedup;
mod forward;
pub mod replay;
pub mod resume;
mod session;
pub mod sink;
pub mod source;
pub mod spool;
pub mod topic;

use std::time::Duration;

use crate::describe::{opt, required, Kind, OptionSpec};

/// The connection options the MQTT source and sink share.
pub const CONNECTION: &[OptionSpec] = &[
    opt(
        "url",
        Kind::Text,
        "mqtt://127.0.0.1:1883",
        "the broker: mqtt://host:port or mqtts://host:port",
    ),
    opt(
        "client_id",
        Kind::Text,
        "weir-<name>-<pid>",
        "the MQTT client id",
    ),
    opt(
        "keep_alive",
        Kind::Duration,
        "30s",
        "keep-alive interval (at least 5s)",
    ),
    opt(
        "clean_session",
        Kind::Bool,
        "true",
        "false with a fixed client_id keeps a persistent session",
    ),
    opt("username", Kind::Text, "", "user name"),
    opt("password", Kind::Text, "", "password (with username)"),
    opt("qos", Kind::Integer, "1", "quality of service: 0, 1 or 2"),
    opt(
        "tls",
        Kind::Bool,
        "true for mqtts://",
        "connect over TLS (rustls)",
    ),
    opt(
        "ca_file",
        Kind::Text,
        "",
        "PEM of the CA that signed the broker's certificate (with TLS)",
    ),
    opt(
        "client_cert_file",
        Kind::Text,
        "",
        "client certificate, PEM (with client_key_file)",
    ),
    opt(
        "client_key_file",
        Kind::Text,
        "",
        "client key, PEM (with client_cert_file)",
    ),
];

/// The MQTT source's own options.
pub const SOURCE: &[OptionSpec] = &[
    required(
        "topic",
        Kind::Text,
        "a topic filter, with + and # wildcards",
    ),
    opt("protocol", Kind::Text, "3.1.1", "MQTT version: 3.1.1 or 5"),
    opt(
        "max_message_size",
        Kind::Integer,
        "4194304",
        "bytes; a larger message is a dead letter (its first 1 KiB kept) and the connection stays up",
    ),
    opt(
        "shared_group",
        Kind::Text,
        "",
        "subscribe as $share/<group>/<topic>, spreading messages over workers",
    ),
    opt(
        "topic_columns",
        Kind::Text,
        "",
        "column names for the topic's + levels, left to right",
    ),
    opt(
        "max_messages",
        Kind::Integer,
        "0",
        "stop after this many messages (0: run forever)",
    ),
    opt(
        "extra_column",
        Kind::Text,
        "",
        "a TEXT column that receives a payload's undeclared fields as JSON",
    ),
    opt(
        "stop_after_idle",
        Kind::Duration,
        "0",
        "stop when no message arrived for this long after the first (0: never)",
    ),
    opt(
        "archive",
        Kind::Text,
        "",
        "a directory keeping every received message, numbered: for provenance, and acknowledged only once in it, so a checkpointed job resumes from it",
    ),
    opt(
        "dedup_window",
        Kind::Integer,
        "100000",
        "with an archive: redelivered messages among the last this many archived are dropped",
    ),
];

/// The MQTT sink's own options.
pub const SINK: &[OptionSpec] = &[
    required("topic", Kind::Text, "the topic to publish to"),
    opt("retain", Kind::Bool, "false", "publish retained messages"),
    opt(
        "spool",
        Kind::Text,
        "the sink's directory under --state-dir",
        "store-and-forward: a directory where output waits, on disk, until the broker has it",
    ),
    opt(
        "spool_max",
        Kind::Integer,
        "1000000",
        "most messages waiting in the spool (0: no bound)",
    ),
    opt(
        "spool_full",
        Kind::Text,
        "block",
        "at spool_max: 'block' the pipeline, or 'drop_oldest' (counted as dropped)",
    ),
    opt(
        "id_field",
        Kind::Text,
        "",
        "a JSON field added to each message: a hash of its content, for consumers to drop repeats",
    ),
];

use rumqttc::{MqttOptions, QoS};

use crate::{Error, Options, Result};

/// Connection settings shared by the source and the sink.
#[derive(Clone)]
pub(crate) struct Conn {
    pub host: String,
    pub port: u16,
    pub id: String,
    /// `id` was given (`client_id`), not derived.
    pub fixed_id: bool,
    pub keep_alive: Duration,
    pub clean: bool,
    pub credentials: Option<(String, String)>,
    pub qos: QoS,
    pub tls: Option<Tls>,
}

/// TLS material, read from files when the connector is built.
#[derive(Clone)]
pub(crate) struct Tls {
    pub ca: Vec<u8>,
    pub client_auth: Option<(Vec<u8>, Vec<u8>)>,
}

impl Tls {
    fn transport(&self) -> rumqttc::Transport {
        rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Simple {
            ca: self.ca.clone(),
            alpn: None,
            client_auth: self.client_auth.clone(),
        })
    }
}

/// The largest packet MQTT allows (256 MiB).
const MAX_PACKET: usize = 268_435_455;

impl Conn {
    /// MQTT 3.1.1 client options.
    pub fn v4(&self) -> MqttOptions {
        let mut o = MqttOptions::new(self.id.clone(), self.host.clone(), self.port);
        o.set_keep_alive(self.keep_alive);
        o.set_clean_session(self.clean);
        // Incoming up to MQTT's own limit: a message too big for the pipeline is the source's
        // to refuse (a dead letter), never a reason to drop the connection (whose redelivery
        // would repeat the message forever).
        o.set_max_packet_size(MAX_PACKET, 1 << 20);
        if let Some((u, p)) = &self.credentials {
            o.set_credentials(u.clone(), p.clone());
        }
        if let Some(t) = &self.tls {
            o.set_transport(t.transport());
        }
        o
    }

    /// MQTT 5 client options; a persistent session (`clean_session = false`) never expires.
    pub fn v5(&self) -> rumqttc::v5::MqttOptions {
        let mut o = rumqttc::v5::MqttOptions::new(self.id.clone(), self.host.clone(), self.port);
        o.set_keep_alive(self.keep_alive);
        o.set_clean_start(self.clean);
        if !self.clean {
            o.set_session_expiry_interval(Some(u32::MAX));
        }
        o.set_max_packet_size(Some(MAX_PACKET as u32));
        if let Some((u, p)) = &self.credentials {
            o.set_credentials(u.clone(), p.clone());
        }
        if let Some(t) = &self.tls {
            o.set_transport(t.transport());
        }
        o
    }

    /// The same settings under another client id.
    pub fn with_id(&self, id: String) -> Conn {
        Conn { id, ..self.clone() }
    }
}

/// Reads `url`, `client_id`, `username`, `password`, `keep_alive`, `qos`, `clean_session`.
pub(crate) fn connection(o: &mut Options, default_id: String) -> Result<Conn> {
    let url = o
        .string("url")
        .unwrap_or_else(|| "mqtt://127.0.0.1:1883".into());
    // Credentials may come in the URL (`mqtt://user:password@host:port`).
    let (url, in_url) = crate::secret::split_userinfo(&url);
    let tls_scheme = url.starts_with("mqtts://") || url.starts_with("ssl://");
    let (host, port) = parse_url(&url).ok_or_else(|| Error::Option {
        option: "url".into(),
        message: format!("expected mqtt://host:port, got '{url}'"),
    })?;
    let fixed = o.string("client_id");
    let fixed_id = fixed.is_some();
    let id = fixed.unwrap_or(default_id);
    let keep_alive = Duration::from_millis(o.duration_ms("keep_alive", 30_000)?.max(5000) as u64);
    let clean = o.bool("clean_session", true)?;
    let credentials = match (o.string("username"), o.string("password")) {
        (Some(u), p) => Some((u, p.unwrap_or_default())),
        (None, Some(_)) => {
            return Err(Error::Option {
                option: "password".into(),
                message: "given without username".into(),
            })
        }
        (None, None) => in_url,
    };
    let qos = match o.u64("qos", 1)? {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        2 => QoS::ExactlyOnce,
        q => {
            return Err(Error::Option {
                option: "qos".into(),
                message: format!("expected 0, 1 or 2, got {q}"),
            })
        }
    };
    let tls = if o.bool("tls", tls_scheme)? {
        let read = |opt: &str, path: String| {
            std::fs::read(&path).map_err(|e| Error::io(format!("{opt} '{path}'"), e))
        };
        let ca = read("ca_file", o.required("ca_file")?)?;
        let client_auth = match (o.string("client_cert_file"), o.string("client_key_file")) {
            (Some(c), Some(k)) => Some((read("client_cert_file", c)?, read("client_key_file", k)?)),
            (None, None) => None,
            _ => {
                return Err(Error::Option {
                    option: "client_cert_file".into(),
                    message: "client_cert_file and client_key_file go together".into(),
                })
            }
        };
        // One process-wide crypto provider (ring); installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Some(Tls { ca, client_auth })
    } else {
        None
    };
    Ok(Conn {
        host,
        port,
        id,
        fixed_id,
        keep_alive,
        clean,
        credentials,
        qos,
        tls,
    })
}

/// `mqtt://host:port`, `tcp://host:port` or `host:port`.
pub fn parse_url(url: &str) -> Option<(String, u16)> {
    let tls = url.starts_with("mqtts://") || url.starts_with("ssl://");
    let rest = ["mqtt://", "tcp://", "mqtts://", "ssl://"]
        .iter()
        .find_map(|p| url.strip_prefix(p))
        .unwrap_or(url);
    let rest = rest.trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((h, p)) => Some((h.to_string(), p.parse().ok()?)),
        None if !rest.is_empty() => Some((rest.to_string(), if tls { 8883 } else { 1883 })),
        None => None,
    }
}

/// Backoff between reconnect attempts: 100 ms doubling to 5 s.
pub(crate) fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(Duration::from_secs(5))
}

/// The OpenLineage dataset of a topic filter: namespace `mqtt://<host:port>`, the filter.
pub fn dataset(options: &std::collections::BTreeMap<String, String>) -> (String, String) {
    let opt = |k: &str| options.get(k).cloned().unwrap_or_default();
    let (url, _) = crate::secret::split_userinfo(&opt("url"));
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or(&url)
        .trim_end_matches('/')
        .to_string();
    (format!("mqtt://{host}"), opt("topic"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("mqtt://127.0.0.1:1884"),
            Some(("127.0.0.1".into(), 1884))
        );
        assert_eq!(parse_url("broker"), Some(("broker".into(), 1883)));
        assert_eq!(parse_url("mqtt://h:x"), None);
    }
}
