//! The MQTT sink's store-and-forward spool (`spool = 'DIR'`, or the sink's directory in the
//! state dir under `--state-dir`): every message is appended to `DIR/spool.log` (fsynced once
//! per written batch) before anything is sent, and a forwarder thread publishes the spool in
//! order, a batch at a time, moving `DIR/spool.acked` past a batch only once the broker has
//! acknowledged all of it. When the broker or the uplink is down, output piles up on disk and
//! goes out in order when it returns; a killed weir resends from the acknowledged point. A
//! message may so reach the broker twice (a batch resent after a lost connection); with
//! `id_field` each message carries a deterministic id — a hash of its content — for consumers
//! to drop repeats.
//!
//! `spool_max` bounds the messages waiting: at the bound, `spool_full = 'block'` (default)
//! holds the pipeline until the forwarder makes room, `'drop_oldest'` drops the oldest waiting
//! message and counts it. The spool lives as long as the process: the jobs of a checkpointed
//! run share one forwarder, so a checkpoint does not break the connection.
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::{ConnectorMetrics, Error, Result};

/// A place in the log: a sequence number and a byte offset.
pub type Mark = (u64, u64);

/// What to do at `spool_max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    Block,
    DropOldest,
}

/// Where the spool stands: the first unacknowledged message and the end, each as a sequence
/// number and a byte offset in `spool.log`.
#[derive(Debug, Default, Clone, Copy)]
struct Marks {
    acked: (u64, u64),
    end: (u64, u64),
}

/// One spool directory.
pub struct Spool {
    dir: PathBuf,
    log: Mutex<File>,
    marks: Mutex<Marks>,
    changed: Condvar,
    max: u64,
    full: Full,
    metrics: Arc<ConnectorMetrics>,
}

fn io(what: String) -> impl Fn(std::io::Error) -> Error {
    move |e| Error::io(what.clone(), e)
}

/// Spools open in this process, by directory.
static OPEN: OnceLock<Mutex<HashMap<PathBuf, Arc<Spool>>>> = OnceLock::new();

impl Spool {
    /// The spool in `dir` (opened once per process; `started` tells whether this call opened
    /// it, so that the caller starts its forwarder).
    pub fn open(
        dir: &Path,
        max: u64,
        full: Full,
        metrics: Arc<ConnectorMetrics>,
    ) -> Result<(Arc<Spool>, bool)> {
        let mut open = OPEN
            .get_or_init(Default::default)
            .lock()
            .map_err(|_| Error::Format("the spool registry is poisoned".into()))?;
        if let Some(s) = open.get(dir) {
            return Ok((s.clone(), false));
        }
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        let path = dir.join("spool.log");
        let log = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io(format!("opening {}", path.display())))?;
        let spool = Spool {
            dir: dir.to_path_buf(),
            log: Mutex::new(log),
            marks: Mutex::new(Marks::default()),
            changed: Condvar::new(),
            max,
            full,
            metrics,
        };
        let marks = spool.recover()?;
        ConnectorMetrics::set(&spool.metrics.spooled, marks.end.0 - marks.acked.0);
        *spool.marks.lock().map_err(|_| poisoned())? = marks;
        let spool = Arc::new(spool);
        open.insert(dir.to_path_buf(), spool.clone());
        Ok((spool, true))
    }

    /// Reads the acknowledged point and walks the log from it to its last whole record.
    fn recover(&self) -> Result<Marks> {
        let text = std::fs::read_to_string(self.dir.join("spool.acked")).unwrap_or_default();
        let mut it = text.split_whitespace().map(|v| v.parse::<u64>().ok());
        let acked = match (it.next().flatten(), it.next().flatten()) {
            (Some(s), Some(o)) => (s, o),
            _ => (0, 0),
        };
        let log = self.log.lock().map_err(|_| poisoned())?;
        let len = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut end = (acked.0, acked.1.min(len));
        while let Some(next) = record_end(&log, end.1, len) {
            end = (end.0 + 1, next);
        }
        if end.1 < len {
            log.set_len(end.1)
                .map_err(io(format!("repairing {}", self.dir.display())))?;
        }
        Ok(Marks { acked, end })
    }

    /// Appends `messages` and fsyncs them; at `spool_max`, blocks or drops the oldest.
    pub fn append(&self, messages: &[Vec<u8>]) -> Result<()> {
        for m in messages {
            self.make_room()?;
            // Locks in one order everywhere: the marks, then the log.
            let mut marks = self.marks.lock().map_err(|_| poisoned())?;
            let mut log = self.log.lock().map_err(|_| poisoned())?;
            let mut rec = Vec::with_capacity(4 + m.len());
            rec.extend_from_slice(&(m.len() as u32).to_le_bytes());
            rec.extend_from_slice(m);
            log.write_all(&rec)
                .map_err(io(format!("writing {}", self.dir.display())))?;
            marks.end = (marks.end.0 + 1, marks.end.1 + rec.len() as u64);
            ConnectorMetrics::set(&self.metrics.spooled, marks.end.0 - marks.acked.0);
        }
        self.log
            .lock()
            .map_err(|_| poisoned())?
            .sync_data()
            .map_err(io(format!("syncing {}", self.dir.display())))?;
        self.changed.notify_all();
        Ok(())
    }

    fn make_room(&self) -> Result<()> {
        let mut marks = self.marks.lock().map_err(|_| poisoned())?;
        while self.max > 0 && marks.end.0 - marks.acked.0 >= self.max {
            if self.full == Full::DropOldest {
                let log = self.log.lock().map_err(|_| poisoned())?;
                let Some(next) = record_end(&log, marks.acked.1, marks.end.1) else {
                    break;
                };
                marks.acked = (marks.acked.0 + 1, next);
                ConnectorMetrics::add(&self.metrics.dropped, 1);
                continue;
            }
            marks = self
                .changed
                .wait_timeout(marks, Duration::from_millis(200))
                .map_err(|_| poisoned())?
                .0;
        }
        Ok(())
    }

    /// Up to `max` messages from the acknowledged point, and the mark after them; waits up to
    /// `wait` for one.
    pub fn peek(&self, max: usize, wait: Duration) -> Result<(Vec<Vec<u8>>, Mark)> {
        let mut marks = self.marks.lock().map_err(|_| poisoned())?;
        if marks.end.0 == marks.acked.0 {
            marks = self
                .changed
                .wait_timeout(marks, wait)
                .map_err(|_| poisoned())?
                .0;
        }
        let log = self.log.lock().map_err(|_| poisoned())?;
        let (mut seq, mut at) = marks.acked;
        let mut out = Vec::new();
        while out.len() < max && seq < marks.end.0 {
            let Some(next) = record_end(&log, at, marks.end.1) else {
                break;
            };
            let mut buf = vec![0; (next - at - 4) as usize];
            log.read_exact_at(&mut buf, at + 4)
                .map_err(io(format!("reading {}", self.dir.display())))?;
            out.push(buf);
            (seq, at) = (seq + 1, next);
        }
        Ok((out, (seq, at)))
    }

    /// The broker acknowledged everything before `mark`: records it (fsynced), and empties the
    /// log when everything is acknowledged.
    pub fn acked(&self, mark: (u64, u64)) -> Result<()> {
        let mut marks = self.marks.lock().map_err(|_| poisoned())?;
        if mark.0 <= marks.acked.0 || mark.0 > marks.end.0 {
            return Ok(());
        }
        marks.acked = mark;
        if marks.acked.0 == marks.end.0 && marks.end.1 > 1 << 20 {
            let log = self.log.lock().map_err(|_| poisoned())?;
            log.set_len(0)
                .map_err(io(format!("emptying {}", self.dir.display())))?;
            marks.acked.1 = 0;
            marks.end.1 = 0;
        }
        let tmp = self.dir.join("spool.acked.tmp");
        let text = format!("{} {}\n", marks.acked.0, marks.acked.1);
        let mut f = File::create(&tmp).map_err(io(format!("writing {}", tmp.display())))?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_data())
            .and_then(|_| std::fs::rename(&tmp, self.dir.join("spool.acked")))
            .map_err(io(format!("writing {}", tmp.display())))?;
        ConnectorMetrics::set(&self.metrics.spooled, marks.end.0 - marks.acked.0);
        drop(marks);
        self.changed.notify_all();
        Ok(())
    }

    /// The end: the sequence number and offset after the last message appended.
    pub fn end(&self) -> (u64, u64) {
        self.marks.lock().map(|m| m.end).unwrap_or_default()
    }

    /// A job restored from a checkpoint whose spool ended at `mark` computes what followed
    /// again: the messages after it that are not sent yet are dropped from the log (those
    /// already acknowledged are not undone; they go out again, with the same ids).
    pub fn truncate_to(&self, mark: (u64, u64)) -> Result<()> {
        let mut marks = self.marks.lock().map_err(|_| poisoned())?;
        let keep = if mark.0 > marks.acked.0 {
            mark
        } else {
            marks.acked
        };
        if keep.0 >= marks.end.0 {
            return Ok(());
        }
        let log = self.log.lock().map_err(|_| poisoned())?;
        log.set_len(keep.1)
            .and_then(|_| log.sync_data())
            .map_err(io(format!("truncating {}", self.dir.display())))?;
        marks.end = keep;
        ConnectorMetrics::set(&self.metrics.spooled, marks.end.0 - marks.acked.0);
        Ok(())
    }

    /// Messages waiting.
    pub fn depth(&self) -> u64 {
        self.marks.lock().map(|m| m.end.0 - m.acked.0).unwrap_or(0)
    }

    /// Waits up to `timeout` until every message is acknowledged; the messages still waiting.
    pub fn drain(&self, timeout: Duration) -> u64 {
        let start = Instant::now();
        while self.depth() > 0 && start.elapsed() < timeout {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.depth()
    }
}

fn poisoned() -> Error {
    Error::Format("the MQTT spool's lock is poisoned (a thread panicked)".into())
}

/// The offset after the record at `at`, if a whole one lies before `len`.
fn record_end(log: &File, at: u64, len: u64) -> Option<u64> {
    if at + 4 > len {
        return None;
    }
    let mut n = [0u8; 4];
    log.read_exact_at(&mut n, at).ok()?;
    let next = at + 4 + u32::from_le_bytes(n) as u64;
    (next <= len).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_wait_until_acknowledged_and_survive_a_reopen() {
        let dir = std::env::temp_dir().join(format!("weir-spool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let m = Arc::new(ConnectorMetrics::default());
        let (s, started) = Spool::open(&dir, 3, Full::DropOldest, m.clone()).unwrap();
        assert!(started);
        s.append(&[b"a".to_vec(), b"bb".to_vec()]).unwrap();
        let (batch, mark) = s.peek(10, Duration::ZERO).unwrap();
        assert_eq!(batch, vec![b"a".to_vec(), b"bb".to_vec()]);
        s.acked((1, 5)).unwrap();
        s.append(&[b"c".to_vec(), b"d".to_vec(), b"e".to_vec()])
            .unwrap();
        // At 3 waiting, the oldest ("bb") was dropped for "e".
        assert_eq!(m.dropped.load(std::sync::atomic::Ordering::Relaxed), 1);
        let (batch, _) = s.peek(10, Duration::ZERO).unwrap();
        assert_eq!(batch, vec![b"c".to_vec(), b"d".to_vec(), b"e".to_vec()]);
        assert!(mark.0 == 2);
        // Another process: reads the acknowledged point back.
        OPEN.get().unwrap().lock().unwrap().remove(&dir);
        drop(s);
        let (s, _) = Spool::open(&dir, 3, Full::Block, m).unwrap();
        let (batch, _) = s.peek(10, Duration::ZERO).unwrap();
        assert_eq!(
            batch.len(),
            4,
            "'bb' dropped in memory only; acked point was after 'a'"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
