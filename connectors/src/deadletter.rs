//! Dead-letter output: undecodable records, written as JSON lines with the source name, the
//! position, the error text and the raw payload, so nothing is lost silently.
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};

use crate::{BadRecord, Error, Result};

/// Appends bad records to a file.
pub struct DeadLetterFile {
    out: BufWriter<std::fs::File>,
    path: String,
}

impl DeadLetterFile {
    /// Opens (appending) `path`.
    pub fn open(path: &str) -> Result<Self> {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(format!("opening dead-letter file {path}"), e))?;
        Ok(DeadLetterFile { out: BufWriter::new(f), path: path.to_string() })
    }

    /// Writes one record.
    pub fn write(&mut self, source: &str, r: &BadRecord) -> Result<()> {
        let line = serde_json::json!({
            "source": source,
            "position": r.position,
            "error": r.error,
            "payload": String::from_utf8_lossy(&r.payload),
        });
        writeln!(self.out, "{line}").map_err(|e| Error::io(format!("writing {}", self.path), e))
    }

    /// Flushes.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::io(format!("writing {}", self.path), e))
    }
}
