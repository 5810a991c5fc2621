//! Kafka source and sink over rdkafka (librdkafka, which reconnects to lost brokers with
//! backoff by itself: `reconnect.backoff.ms` 100 → `reconnect.backoff.max.ms` 5000).
//!
//! Source options: `brokers` (required), `topic` (required), `start` (`earliest` (default),
//! `latest`, `committed`, or `timestamp:<epoch ms>`), `group_id` (default `weir-<source>`),
//! `commit` (commit consumed offsets to the group; default true), `bounded` (read up to the end
//! offsets seen at start, then finish; default false), `max_messages` (finish after this many;
//! 0 = no limit). Partitions are assigned explicitly across workers (partition p to worker
//! p mod N), and every partition has its own watermark.
//!
//! Sink options: `brokers`, `topic` (required), `key` (a column whose value becomes the record
//! key), `idempotent` (enable the idempotent producer; default false), `format` (`json`
//! default, or `csv`), `delivery` (`at_least_once` default, or `exactly_once`: with
//! `--state-dir`, each checkpoint's output is staged and produced once it is complete, every
//! record exactly once — `exactly_once.rs`).
pub mod exactly_once;
mod record;
pub mod replay;
pub mod sink;
pub mod source;
mod tombstone;

use rdkafka::config::ClientConfig;

/// The option every Kafka source and sink needs.
pub(crate) const BROKERS: crate::describe::OptionSpec = crate::describe::required(
    "brokers",
    crate::describe::Kind::Text,
    "bootstrap brokers, host:port[,host:port…]",
);

/// A Kafka error as a connector error, with what was being done.
pub(crate) fn kafka_err(context: &str) -> impl Fn(rdkafka::error::KafkaError) -> crate::Error + '_ {
    move |e| crate::Error::io(context.to_string(), std::io::Error::other(e.to_string()))
}

/// Common client settings.
pub(crate) fn base_config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "5000")
        .set("broker.address.family", "v4")
        .set("log_level", "3");
    c
}

/// The OpenLineage dataset of a topic: namespace `kafka://<first broker>`, the topic.
pub fn dataset(options: &std::collections::BTreeMap<String, String>) -> (String, String) {
    let opt = |k: &str| options.get(k).cloned().unwrap_or_default();
    let brokers = opt("brokers");
    let first = brokers.split(',').next().unwrap_or_default();
    (format!("kafka://{first}"), opt("topic"))
}
