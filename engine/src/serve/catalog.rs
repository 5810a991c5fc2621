//! The server's record of its pipelines in the state directory (`server/pipelines.json`):
//! each pipeline's name, SQL and whether it should run. Written whole to a temporary file,
//! fsynced and renamed into place (the directory fsynced too), so a kill -9 leaves the old
//! record or the new one, never a torn one. A server started again on the directory starts
//! again every pipeline recorded as running.
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::ApiError;

/// Whether a pipeline should run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Desired {
    /// Started at submission and after every server start.
    Running,
    /// Stopped by a person: stays stopped across server starts.
    Stopped,
}

impl Desired {
    /// `running` or `stopped`, as serialized.
    pub fn name(self) -> &'static str {
        match self {
            Desired::Running => "running",
            Desired::Stopped => "stopped",
        }
    }
}

/// One recorded pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The pipeline's name (its job's name: checkpoints are kept under it).
    pub name: String,
    /// The script as submitted.
    pub sql: String,
    /// Whether it should run.
    pub desired: Desired,
    /// When it was submitted (ms since the Unix epoch).
    pub created_ms: u64,
    /// Who submitted it.
    #[serde(default)]
    pub owner: String,
    /// Model versions switched to (`ALTER MODEL`), by model: a run started again — after a
    /// stop, a restart of the server, or kill -9 — starts with them current.
    #[serde(default)]
    pub models: std::collections::BTreeMap<String, String>,
}

/// The record file.
pub struct Catalog {
    path: PathBuf,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> ApiError {
    ApiError::Internal(format!("{what} {}: {e}", path.display()))
}

impl Catalog {
    /// The record in `state_dir/server/`, created if missing.
    pub fn open(state_dir: &Path) -> Result<Catalog, ApiError> {
        let dir = state_dir.join("server");
        std::fs::create_dir_all(&dir).map_err(|e| io_err("creating", &dir, e))?;
        Ok(Catalog {
            path: dir.join("pipelines.json"),
        })
    }

    /// The recorded pipelines (none for a new directory).
    pub fn load(&self) -> Result<Vec<Record>, ApiError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::Internal(format!("{}: {e}", self.path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io_err("reading", &self.path, e)),
        }
    }

    /// Replaces the record with `records`, durably.
    pub fn save(&self, records: &[Record]) -> Result<(), ApiError> {
        let text = serde_json::to_vec_pretty(records)
            .map_err(|e| ApiError::Internal(format!("encoding the catalog: {e}")))?;
        write_durably(&self.path, &text)
    }
}

/// Replaces `path` with `bytes`: written to `path.tmp`, fsynced, renamed into place, the
/// directory fsynced.
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), ApiError> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(|e| io_err("creating", &tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| io_err("writing", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err("renaming", &tmp, e))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err("syncing", dir, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_records_load_back() {
        let dir = std::env::temp_dir().join(format!("weir-catalog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let c = Catalog::open(&dir).unwrap();
        assert!(c.load().unwrap().is_empty());
        let r = Record {
            name: "a".into(),
            sql: "SELECT 1".into(),
            desired: Desired::Stopped,
            created_ms: 7,
            owner: "admin".into(),
            models: Default::default(),
        };
        c.save(std::slice::from_ref(&r)).unwrap();
        assert_eq!(Catalog::open(&dir).unwrap().load().unwrap(), vec![r]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
