//! Counters every source and sink keeps: messages, bytes, decode errors, reconnects, lag.
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
    /// Reconnects after a lost connection.
    pub reconnects: AtomicU64,
    /// Messages waiting at the broker (Kafka lag), when known.
    pub lag: AtomicU64,
}

impl ConnectorMetrics {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// `(name, value)` of every counter.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("messages", self.messages.load(Ordering::Relaxed)),
            ("bytes", self.bytes.load(Ordering::Relaxed)),
            ("decode_errors", self.decode_errors.load(Ordering::Relaxed)),
            ("reconnects", self.reconnects.load(Ordering::Relaxed)),
            ("lag", self.lag.load(Ordering::Relaxed)),
        ]
    }
}
