//! The MQTT source's deduplication window: the keys (a hash of topic and payload) of the last
//! `dedup_window` archived messages. A broker delivers a QoS 1 message again, flagged DUP,
//! when its acknowledgement did not arrive — after weir was killed between archiving it and
//! acknowledging it, say. A redelivered message whose key is in the window is already in the
//! archive: it is acknowledged and dropped. A message without the DUP flag is a first
//! delivery and always kept, so two readings that happen to be equal are never merged.
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

/// The keys of the last `cap` messages.
#[derive(Debug, Default)]
pub struct Dedup {
    order: VecDeque<u64>,
    counts: HashMap<u64, u32>,
    cap: usize,
}

impl Dedup {
    /// An empty window of `cap` messages.
    pub fn new(cap: usize) -> Dedup {
        Dedup {
            order: VecDeque::with_capacity(cap.min(1 << 16)),
            counts: HashMap::new(),
            cap,
        }
    }

    /// The key of a message: the same in every process (SipHash with fixed keys).
    pub fn key(topic: &str, payload: &[u8]) -> u64 {
        #[allow(deprecated)]
        let mut h = std::hash::SipHasher::new();
        topic.hash(&mut h);
        payload.hash(&mut h);
        h.finish()
    }

    /// Whether a message with `key` is in the window.
    pub fn contains(&self, key: u64) -> bool {
        self.counts.contains_key(&key)
    }

    /// Adds a message's key, forgetting the oldest beyond the window.
    pub fn add(&mut self, key: u64) {
        if self.cap == 0 {
            return;
        }
        self.order.push_back(key);
        *self.counts.entry(key).or_default() += 1;
        while self.order.len() > self.cap {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(c) = self.counts.get_mut(&old) {
                *c -= 1;
                if *c == 0 {
                    self.counts.remove(&old);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_forgets_the_oldest() {
        let mut d = Dedup::new(2);
        let (a, b, c) = (
            Dedup::key("t", b"a"),
            Dedup::key("t", b"b"),
            Dedup::key("u", b"a"),
        );
        assert_ne!(a, c);
        d.add(a);
        d.add(b);
        d.add(a);
        assert!(d.contains(a) && d.contains(b));
        d.add(c);
        assert!(d.contains(a) && !d.contains(b) && d.contains(c));
    }
}
