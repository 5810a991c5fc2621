//! `archive = 'DIR'`: the MQTT source keeps every message it receives, one JSON line
//! `{"topic":…,"payload":…}` per message (`payload_hex` for a payload that is not UTF-8), in
//! `DIR/<source>-w<worker>.jsonl`. A message's sequence number is its line number there
//! (numbering goes on across runs). A broker cannot replay a message; the archive can:
//! provenance names sequence numbers, `weir trace` reads them back from here, and a job
//! restored from a checkpoint replays the messages archived after it (`replay.rs`).
//!
//! Durability: the source appends a poll's messages, fsyncs once for them all (group commit),
//! and only then acknowledges them to the broker. Opening repairs a torn tail (a last line
//! cut short, or garbage where a power cut lost an unsynced write): everything from the first
//! line that does not parse is cut off — those messages were never acknowledged, so the broker
//! delivers them again. The archive's end and its deduplication window stay in memory
//! between the jobs of one process (each checkpoint continues the job in a new one), so
//! reopening does not read the whole file again.
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::dedup::Dedup;
use super::replay::{At, Replay};
use crate::{Error, Result};

/// The archive file of `source` on `worker`.
pub fn path(dir: &str, source: &str, worker: usize) -> PathBuf {
    Path::new(dir).join(format!("{source}-w{worker}.jsonl"))
}

/// What a closed archive leaves for the next open in this process.
struct Tail {
    len: u64,
    next: u64,
    dedup: Dedup,
    last_message: std::time::Instant,
}

/// Archives closed in this process, by path.
static CLOSED: Mutex<Option<HashMap<PathBuf, Tail>>> = Mutex::new(None);

/// One worker's archive, open for appending.
pub struct Archive {
    file: BufWriter<File>,
    path: PathBuf,
    /// The sequence number of the next message.
    next: u64,
    /// The file's length after everything appended.
    len: u64,
    /// Recently archived messages, to drop redeliveries.
    pub dedup: Dedup,
    /// When the last message arrived (or the archive was first opened in this process), for
    /// `stop_after_idle` across the jobs of a checkpointed run.
    pub last_message: std::time::Instant,
}

/// One archive line: the topic and the payload, written as `line`.
pub fn encode(topic: &str, payload: &[u8]) -> String {
    let line = match std::str::from_utf8(payload) {
        Ok(text) => serde_json::json!({ "topic": topic, "payload": text }),
        Err(_) => {
            let hex: String = payload.iter().map(|b| format!("{b:02x}")).collect();
            serde_json::json!({ "topic": topic, "payload_hex": hex })
        }
    };
    let mut s = line.to_string();
    s.push('\n');
    s
}

/// The topic and payload of an archive line (`None`: not one).
pub fn decode(line: &str) -> Option<(String, Vec<u8>)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let topic = v.get("topic")?.as_str()?.to_string();
    if let Some(p) = v.get("payload").and_then(|p| p.as_str()) {
        return Some((topic, p.as_bytes().to_vec()));
    }
    let hex = v.get("payload_hex")?.as_str()?;
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some((topic, bytes))
}

/// Reads the archive at `path` (as a replay from its start reads it): its valid length, the
/// next sequence number, and the window of its last `window` messages; cuts off a torn or
/// damaged tail.
fn scan(path: &Path, window: usize) -> Result<Tail> {
    let mut dedup = Dedup::new(window);
    let total = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut at = At { seq: 1, offset: 0 };
    if total > 0 {
        let mut replay = Replay::open(String::new(), path, at, total)?;
        // A read error ends the valid part, as a line that does not parse does.
        while let Ok(batch) = replay.read(4096) {
            if batch.is_empty() {
                break;
            }
            for (_, topic, payload) in &batch {
                dedup.add(Dedup::key(topic, payload));
            }
        }
        at = replay.at;
    }
    if at.offset < total {
        tracing::warn!(
            "mqtt archive {}: cut off {} damaged or torn bytes at its end (never acknowledged; the broker delivers them again)",
            path.display(),
            total - at.offset
        );
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        f.set_len(at.offset)
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::io(format!("repairing {}", path.display()), e))?;
    }
    Ok(Tail {
        len: at.offset,
        next: at.seq,
        dedup,
        last_message: std::time::Instant::now(),
    })
}

impl Archive {
    /// Opens (or creates) the archive of `source` on `worker` under `dir`, keeping the last
    /// `window` messages' keys for deduplication.
    pub fn open(dir: &str, source: &str, worker: usize, window: usize) -> Result<Archive> {
        let path = path(dir, source, worker);
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {dir}"), e))?;
        let on_disk = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let closed = CLOSED
            .lock()
            .ok()
            .and_then(|mut c| c.as_mut()?.remove(&path))
            .filter(|t| t.len == on_disk);
        let tail = match closed {
            Some(t) => t,
            None => scan(&path, window)?,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        Ok(Archive {
            file: BufWriter::new(file),
            path,
            next: tail.next,
            len: tail.len,
            dedup: tail.dedup,
            last_message: tail.last_message,
        })
    }

    /// Appends a message; returns its sequence number.
    pub fn append(&mut self, topic: &str, payload: &[u8]) -> Result<u64> {
        let line = encode(topic, payload);
        self.file
            .write_all(line.as_bytes())
            .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))?;
        self.dedup.add(Dedup::key(topic, payload));
        self.len += line.len() as u64;
        self.next += 1;
        Ok(self.next - 1)
    }

    /// Writes what is buffered through to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.file
            .flush()
            .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))
    }

    /// Writes what is buffered through to the disk (fsync): after it, the messages may be
    /// acknowledged.
    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        self.file
            .get_ref()
            .sync_data()
            .map_err(|e| Error::io(format!("syncing {}", self.path.display()), e))
    }

    /// The next sequence number and the file's length: the archive's end.
    pub fn end(&self) -> (u64, u64) {
        (self.next, self.len)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Archive {
    /// Leaves the end and the window for the next open in this process.
    fn drop(&mut self) {
        if self.flush().is_err() {
            return;
        }
        let tail = Tail {
            len: self.len,
            next: self.next,
            dedup: std::mem::take(&mut self.dedup),
            last_message: self.last_message,
        };
        if let Ok(mut c) = CLOSED.lock() {
            c.get_or_insert_with(HashMap::new)
                .insert(self.path.clone(), tail);
        }
    }
}

/// The payloads of the messages numbered in `ranges` (inclusive) in the archive of `source`
/// on `worker`, in sequence order.
pub fn read(dir: &str, source: &str, worker: usize, ranges: &[(i64, i64)]) -> Result<Vec<String>> {
    let path = path(dir, source, worker);
    let wanted = |n: i64| ranges.iter().any(|(a, b)| (*a..=*b).contains(&n));
    crate::file::numbered_lines(&path, wanted)?
        .into_iter()
        .map(|(n, line)| {
            let (_, payload) = decode(&line).ok_or_else(|| {
                Error::Format(format!("{}:{n}: not an archive line", path.display()))
            })?;
            Ok(String::from_utf8_lossy(&payload).to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_tail_is_cut_off_and_numbering_goes_on() {
        let dir = std::env::temp_dir().join(format!("weir-archive-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let d = dir.display().to_string();
        {
            let mut a = Archive::open(&d, "s", 0, 10).unwrap();
            assert_eq!(a.append("t", b"{\"v\":1}").unwrap(), 1);
            assert_eq!(a.append("t", &[0xff, 0x00]).unwrap(), 2);
            a.sync().unwrap();
        }
        // Another process: nothing cached; a torn write at the end.
        CLOSED.lock().unwrap().take();
        let p = path(&d, "s", 0);
        let good = std::fs::metadata(&p).unwrap().len();
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"topic\":\"t\",\"payl").unwrap();
        drop(f);
        let mut a = Archive::open(&d, "s", 0, 10).unwrap();
        assert_eq!(a.end(), (3, good));
        assert!(a.dedup.contains(Dedup::key("t", &[0xff, 0x00])));
        assert_eq!(a.append("t", b"x").unwrap(), 3);
        a.sync().unwrap();
        let lines = std::fs::read_to_string(&p).unwrap();
        let back: Vec<_> = lines.lines().map(|l| decode(l).unwrap().1).collect();
        assert_eq!(
            back,
            vec![b"{\"v\":1}".to_vec(), vec![0xff, 0x00], b"x".to_vec()]
        );
        // Garbage that is not even UTF-8 (a lost write) is cut off the same way.
        drop(a);
        CLOSED.lock().unwrap().take();
        let good = std::fs::metadata(&p).unwrap().len();
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(&[0xff, 0xfe, 0x00, b'\n']).unwrap();
        drop(f);
        let a = Archive::open(&d, "s", 0, 10).unwrap();
        assert_eq!(a.end(), (4, good));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
