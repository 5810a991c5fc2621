//! The newest dead letters of a run, kept in memory for `weir serve` to show (`GET
//! /api/v1/pipelines/{name}/dead_letters`): a bounded ring per run, given to every job of a
//! checkpointed run's chain, so an operator sees which records were refused and why even
//! when the script declares no dead-letter output. Payloads are cut to [`PAYLOAD_BYTES`];
//! a server started again starts with an empty ring (what a declared output keeps is durable).
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

/// How many bytes of a payload are kept.
pub const PAYLOAD_BYTES: usize = 4096;

/// How many dead letters a run keeps by default.
pub const KEPT: usize = 1000;

/// One kept dead letter.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct KeptDeadLetter {
    /// The source that read it.
    pub source: String,
    /// Where it was (`file:line`, `topic/partition@offset`, …).
    pub position: String,
    /// Why it could not be read.
    pub error: String,
    /// Its bytes as text (invalid UTF-8 replaced), at most [`PAYLOAD_BYTES`] of them.
    pub payload: String,
    /// Whether the payload was longer.
    pub truncated: bool,
    /// When it was refused (milliseconds since the Unix epoch).
    pub at_ms: u64,
}

/// The newest dead letters of a run.
#[derive(Debug)]
pub struct RecentDeadLetters {
    cap: usize,
    seen: AtomicU64,
    kept: Mutex<VecDeque<KeptDeadLetter>>,
}

impl Default for RecentDeadLetters {
    fn default() -> Self {
        RecentDeadLetters::new(KEPT)
    }
}

impl RecentDeadLetters {
    /// A ring of `cap` dead letters.
    pub fn new(cap: usize) -> RecentDeadLetters {
        RecentDeadLetters {
            cap: cap.max(1),
            seen: AtomicU64::new(0),
            kept: Mutex::new(VecDeque::new()),
        }
    }

    /// Keeps `bad`, read by `source`, dropping the oldest beyond the ring's size.
    pub fn push(&self, source: &str, bad: &[weir_connectors::BadRecord]) {
        self.seen.fetch_add(bad.len() as u64, Ordering::Relaxed);
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let skip = bad.len().saturating_sub(self.cap);
        for r in &bad[skip..] {
            let end = r.payload.len().min(PAYLOAD_BYTES);
            kept.push_back(KeptDeadLetter {
                source: source.to_string(),
                position: r.position.clone(),
                error: r.error.clone(),
                payload: String::from_utf8_lossy(&r.payload[..end]).into_owned(),
                truncated: end < r.payload.len(),
                at_ms,
            });
        }
        while kept.len() > self.cap {
            kept.pop_front();
        }
    }

    /// How many dead letters the run has refused (kept or not).
    pub fn seen(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }

    /// The newest `n` kept, oldest first.
    pub fn newest(&self, n: usize) -> Vec<KeptDeadLetter> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let skip = kept.len().saturating_sub(n);
        kept.iter().skip(skip).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_connectors::BadRecord;

    fn bad(i: usize, len: usize) -> BadRecord {
        BadRecord {
            position: format!("f:{i}"),
            error: "bad".into(),
            payload: vec![b'x'; len],
        }
    }

    #[test]
    fn keeps_the_newest_and_counts_all() {
        let r = RecentDeadLetters::new(3);
        r.push("s", &[bad(1, 1), bad(2, 1)]);
        r.push("s", &(3..=7).map(|i| bad(i, 5000)).collect::<Vec<_>>());
        assert_eq!(r.seen(), 7);
        let kept = r.newest(10);
        let at: Vec<&str> = kept.iter().map(|k| k.position.as_str()).collect();
        assert_eq!(at, ["f:5", "f:6", "f:7"]);
        assert!(kept[0].truncated && kept[0].payload.len() == PAYLOAD_BYTES);
        assert_eq!(r.newest(1)[0].position, "f:7");
    }
}
