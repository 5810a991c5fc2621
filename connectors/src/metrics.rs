//! Counters every source and sink keeps: messages, bytes, decode errors, reconnects, lag,
//! time blocked in a sink.
//! Shared by all workers of one source; printed in `weir run`'s summary and ready for a
//! metrics endpoint.
use std::sync::atomic::{AtomicU64, Ordering};

/// A connector's counters.
#[derive(Default, Debug)]
pub struct ConnectorMetrics {
    /// Messages (lines, MQTT messages, Kafka records) read or written.
    pub messages: AtomicU64,
    /// Payload bytes read or written.
    pub bytes: AtomicU64,
    /// Records that did not decode.
    pub decode_errors: AtomicU64,
    /// Blank lines a file source skipped (lines read = rows + decode errors + blank lines).
    pub blank: AtomicU64,
    /// Reconnects after a lost connection.
    pub reconnects: AtomicU64,
    /// Messages waiting at the broker (Kafka lag), when known.
    pub lag: AtomicU64,
    /// Redelivered messages dropped because they were already archived (MQTT).
    pub duplicates: AtomicU64,
    /// Messages waiting in a sink's spool (MQTT store-and-forward), now.
    pub spooled: AtomicU64,
    /// Messages a full spool dropped (`spool_full = 'drop_oldest'`).
    pub dropped: AtomicU64,
    /// Microseconds the pipeline spent blocked in a sink's writes (backpressure: while it
    /// writes, its worker reads nothing).
    pub blocked_us: AtomicU64,
}

impl ConnectorMetrics {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets a gauge.
    pub fn set(gauge: &AtomicU64, v: u64) {
        gauge.store(v, Ordering::Relaxed);
    }

    /// `(name, value)` of every counter.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("messages", self.messages.load(Ordering::Relaxed)),
            ("bytes", self.bytes.load(Ordering::Relaxed)),
            ("decode_errors", self.decode_errors.load(Ordering::Relaxed)),
            ("blank", self.blank.load(Ordering::Relaxed)),
            ("reconnects", self.reconnects.load(Ordering::Relaxed)),
            ("lag", self.lag.load(Ordering::Relaxed)),
            ("duplicates", self.duplicates.load(Ordering::Relaxed)),
            ("spooled", self.spooled.load(Ordering::Relaxed)),
            ("dropped", self.dropped.load(Ordering::Relaxed)),
            ("blocked_us", self.blocked_us.load(Ordering::Relaxed)),
        ]
    }
}
