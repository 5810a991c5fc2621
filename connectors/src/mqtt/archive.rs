//! `archive = 'DIR'`: the MQTT source keeps every message it receives, one JSON line
//! `{"topic":…,"payload":…}` per message, in `DIR/<source>-w<worker>.jsonl`. A message's
//! sequence number is its line number there (numbering goes on across runs). A broker cannot
//! replay a message; the archive can: provenance names sequence numbers, and `weir trace`
//! reads them back from here.
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The archive file of `source` on `worker`.
pub fn path(dir: &str, source: &str, worker: usize) -> PathBuf {
    Path::new(dir).join(format!("{source}-w{worker}.jsonl"))
}

/// One worker's archive, open for appending.
pub struct Archive {
    file: BufWriter<File>,
    path: PathBuf,
    /// The sequence number of the next message.
    next: u64,
}

impl Archive {
    /// Opens (or creates) the archive of `source` on `worker` under `dir`.
    pub fn open(dir: &str, source: &str, worker: usize) -> Result<Archive> {
        let path = path(dir, source, worker);
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {dir}"), e))?;
        let existing = match File::open(&path) {
            Ok(f) => BufReader::new(f).lines().count() as u64,
            Err(_) => 0,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        Ok(Archive {
            file: BufWriter::new(file),
            path,
            next: existing + 1,
        })
    }

    /// Appends a message; returns its sequence number.
    pub fn append(&mut self, topic: &str, payload: &[u8]) -> Result<u64> {
        let line = serde_json::json!({
            "topic": topic,
            "payload": String::from_utf8_lossy(payload),
        });
        writeln!(self.file, "{line}")
            .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))?;
        self.next += 1;
        Ok(self.next - 1)
    }

    /// Writes what is buffered through to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.file
            .flush()
            .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))
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
            let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| {
                Error::Format(format!("{}:{n}: not an archive line: {e}", path.display()))
            })?;
            Ok(v["payload"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}
