//! Counters per pipeline, shared by all workers: rows in and out, late rows, dead-letter rows.
//! Printed by `weir run` and ready for a metrics endpoint later.
use std::sync::atomic::{AtomicU64, Ordering};

/// A pipeline's counters.
#[derive(Default, Debug)]
pub struct Metrics {
    /// Rows decoded by the source.
    pub rows_in: AtomicU64,
    /// Rows written to the sink.
    pub rows_out: AtomicU64,
    /// Rows behind the watermark (dropped or sent to the late sink).
    pub late: AtomicU64,
    /// Undecodable records.
    pub dead_letter: AtomicU64,
}

impl Metrics {
    /// Adds to a counter.
    pub fn add(c: &AtomicU64, n: usize) {
        c.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// One operator's rows, summed over the workers that run it.
#[derive(Default, Debug)]
pub struct OperatorCounter {
    /// Rows it took in.
    pub rows_in: AtomicU64,
    /// Rows it gave out.
    pub rows_out: AtomicU64,
}
