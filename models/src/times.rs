//! How long inference takes, per model and version, for the whole process: each batch a
//! version scores is counted in a histogram of batch times (and its rows counted), whichever
//! job or pipeline scored it — what `weir serve` shows in `/metrics` as
//! `weir_inference_batch_seconds{model, version}`. The table is keyed by model and version
//! name, so a version keeps its figures across the jobs of a checkpointed run.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The upper bounds of the histogram's buckets, in seconds (the last bucket is `+Inf`).
pub const BOUNDS: [f64; 12] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// One version's batch times.
#[derive(Default, Debug)]
pub struct BatchTimes {
    /// Batches per bucket (not cumulative), the last for batches over every bound.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    nanos: AtomicU64,
    batches: AtomicU64,
    rows: AtomicU64,
}

/// A copy of one version's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct TimesSnapshot {
    /// Model name.
    pub model: String,
    /// Version name.
    pub version: String,
    /// Batches at or under each of [`BOUNDS`], cumulative, then all batches (`+Inf`).
    pub cumulative: Vec<u64>,
    /// Total time, in seconds.
    pub seconds: f64,
    /// Batches scored.
    pub batches: u64,
    /// Rows scored.
    pub rows: u64,
}

impl BatchTimes {
    /// Counts one batch of `rows` rows that took `took`.
    pub fn record(&self, rows: usize, took: Duration) {
        let s = took.as_secs_f64();
        let at = BOUNDS.iter().position(|b| s <= *b).unwrap_or(BOUNDS.len());
        self.buckets[at].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(nanos, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.rows.fetch_add(rows as u64, Ordering::Relaxed);
    }

    fn snapshot(&self, model: &str, version: &str) -> TimesSnapshot {
        let mut total = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|b| {
                total += b.load(Ordering::Relaxed);
                total
            })
            .collect();
        TimesSnapshot {
            model: model.to_string(),
            version: version.to_string(),
            cumulative,
            seconds: self.nanos.load(Ordering::Relaxed) as f64 / 1e9,
            batches: self.batches.load(Ordering::Relaxed),
            rows: self.rows.load(Ordering::Relaxed),
        }
    }
}

type Table = Mutex<BTreeMap<(String, String), Arc<BatchTimes>>>;

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(Table::default)
}

/// The figures of version `version` of `model` (made the first time it is asked for).
pub fn times_of(model: &str, version: &str) -> Arc<BatchTimes> {
    let mut t = table().lock().unwrap_or_else(|p| p.into_inner());
    t.entry((model.to_string(), version.to_string()))
        .or_default()
        .clone()
}

/// Every version's figures, by model and version name.
pub fn all_times() -> Vec<TimesSnapshot> {
    let t = table().lock().unwrap_or_else(|p| p.into_inner());
    t.iter().map(|((m, v), b)| b.snapshot(m, v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_fall_in_their_buckets() {
        let t = times_of("times-test", "v1");
        t.record(10, Duration::from_micros(50));
        t.record(20, Duration::from_millis(3));
        t.record(5, Duration::from_secs(2));
        let s = all_times()
            .into_iter()
            .find(|s| s.model == "times-test")
            .expect("listed");
        assert_eq!((s.batches, s.rows), (3, 35));
        assert_eq!(s.cumulative[0], 1, "50 µs is under 100 µs");
        assert_eq!(s.cumulative[4], 1, "3 ms is over 2.5 ms");
        assert_eq!(s.cumulative[5], 2, "and under 5 ms");
        assert_eq!(s.cumulative[11], 2, "2 s is over every bound");
        assert_eq!(s.cumulative[12], 3);
        assert!((s.seconds - 2.003_05).abs() < 1e-9, "{}", s.seconds);
    }
}
