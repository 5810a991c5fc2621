//! The audit log: every request that changes something — allowed or denied — appended as
//! one JSON line to `server/audit.log` (who, what, when, outcome) and fsynced before the
//! response leaves. Request bodies are never written (they may hold connector secrets): the
//! entry names the route and its target.
use std::fs::{File, OpenOptions};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;

/// One audited request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Entry {
    /// When (ms since the Unix epoch).
    pub ts_ms: u64,
    /// Who (`-` when nobody signed in).
    pub user: String,
    /// The method and route, e.g. `POST /api/v1/pipelines/{name}/stop`.
    pub action: String,
    /// What it named (a pipeline, a user), if anything.
    pub target: String,
    /// The response status.
    pub status: u16,
    /// `ok`, `denied` or `failed`.
    pub outcome: String,
}

/// The outcome of a request that got `status`: `ok`, `denied` (401, 403) or `failed`.
pub fn outcome(status: u16) -> &'static str {
    match status {
        200..=299 => "ok",
        401 | 403 => "denied",
        _ => "failed",
    }
}

/// The audit log file.
pub struct Audit {
    path: PathBuf,
    file: Mutex<File>,
}

impl Audit {
    /// The log in `state_dir/server/audit.log`, appended to.
    pub fn open(state_dir: &Path) -> Result<Audit, ApiError> {
        let path = state_dir.join("server").join("audit.log");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| ApiError::Internal(format!("{}: {e}", path.display())))?;
        Ok(Audit {
            path,
            file: Mutex::new(file),
        })
    }

    /// Appends `e`, durably.
    pub fn append(&self, e: &Entry) {
        let Ok(mut line) = serde_json::to_vec(e) else {
            return;
        };
        line.push(b'\n');
        if let Ok(mut f) = self.file.lock() {
            if let Err(err) = f.write_all(&line).and_then(|_| f.sync_data()) {
                tracing::error!(error = %err, "writing the audit log");
            }
        }
    }

    /// Every entry, oldest first (a torn last line, from a crash mid-write, is left out).
    pub fn read(&self) -> Vec<Entry> {
        let Ok(f) = File::open(&self.path) else {
            return Vec::new();
        };
        std::io::BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str(&l).ok())
            .collect()
    }
}
