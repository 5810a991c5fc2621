//! Reading an MQTT archive back from a position: a source restored from a checkpoint first
//! replays the messages archived after it (they were acknowledged, so the broker will not
//! send them again), then goes on with live messages. A position is `"<seq> <offset>"`: the
//! next message's sequence number and its byte offset in the archive file.
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// A position in an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    /// The next message's sequence number.
    pub seq: u64,
    /// Its byte offset.
    pub offset: u64,
}

impl At {
    /// Parses `"<seq> <offset>"`.
    pub fn parse(text: &str) -> Option<At> {
        let (seq, offset) = text.split_once(' ')?;
        Some(At {
            seq: seq.parse().ok()?,
            offset: offset.parse().ok()?,
        })
    }

    /// As a position's text.
    pub fn text(&self) -> String {
        format!("{} {}", self.seq, self.offset)
    }
}

/// One archive read from a position up to an end offset.
pub struct Replay {
    /// The position key (`w<worker>`).
    pub part: String,
    reader: BufReader<File>,
    path: PathBuf,
    /// Where the next message is.
    pub at: At,
    end: u64,
}

impl Replay {
    /// Replays `path` from `from` up to byte `end`.
    pub fn open(part: String, path: &Path, from: At, end: u64) -> Result<Replay> {
        let f =
            File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let mut reader = BufReader::with_capacity(1 << 16, f);
        reader
            .seek(SeekFrom::Start(from.offset))
            .map_err(|e| Error::io(format!("seeking in {}", path.display()), e))?;
        Ok(Replay {
            part,
            reader,
            path: path.to_path_buf(),
            at: from,
            end,
        })
    }

    /// Whether every message up to the end has been read.
    pub fn done(&self) -> bool {
        self.at.offset >= self.end
    }

    /// Up to `max` messages: (sequence number, topic, payload). A line that does not parse
    /// ends the replay (a torn tail of another worker's archive).
    pub fn read(&mut self, max: usize) -> Result<Vec<(u64, String, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut line = String::new();
        while out.len() < max && !self.done() {
            line.clear();
            // Bytes that are not UTF-8 are garbage where a write was lost: a line that does
            // not parse.
            let n = match self.reader.read_line(&mut line) {
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => 0,
                r => r.map_err(|e| Error::io(format!("reading {}", self.path.display()), e))?,
            };
            let parsed = super::archive::decode(line.trim_end());
            let (Some((topic, payload)), true) = (parsed, n > 0 && line.ends_with('\n')) else {
                self.end = self.at.offset;
                break;
            };
            out.push((self.at.seq, topic, payload));
            self.at.seq += 1;
            self.at.offset += n as u64;
        }
        Ok(out)
    }
}
