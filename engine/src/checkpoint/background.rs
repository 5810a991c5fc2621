//! Checkpoints written on a thread of their own while the next job runs: the job stops only
//! for its cut (snapshotting its state in memory) and the start of the job that continues it;
//! the files are written and fsynced meanwhile. Checkpoints become durable in order: a write
//! waits for the one before. Each opens its [`Gate`] once durable, so what may follow only a
//! durable checkpoint (a staged Kafka stage produced, offsets committed) waits for it.
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use weir_connectors::gate::Gate;

use super::store::{CheckpointError, Store};
use crate::job::JobSnapshot;

/// A checkpoint on disk.
#[derive(Debug, Clone)]
pub struct Written {
    /// Its bytes.
    pub bytes: u64,
    /// Its state rows.
    pub rows: usize,
    /// From asking the job to suspend until the checkpoint was durable.
    pub took: Duration,
}

/// The write in progress, if any.
pub struct Background {
    store: Store,
    running: Option<JoinHandle<Result<Written, CheckpointError>>>,
}

/// Bytes of the files in `dir`.
fn size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

impl Background {
    /// Writes into `store`.
    pub fn new(store: Store) -> Background {
        Background {
            store,
            running: None,
        }
    }

    /// Waits for the write in progress; what it wrote.
    pub fn finish(&mut self) -> Result<Option<Written>, CheckpointError> {
        match self.running.take() {
            None => Ok(None),
            Some(h) => h
                .join()
                .map_err(|_| CheckpointError::Io {
                    context: "the checkpoint writer".into(),
                    source: std::io::Error::other("it panicked"),
                })?
                .map(Some),
        }
    }

    /// Starts writing `snap` as checkpoint `epoch` (the job was asked to suspend at `asked`),
    /// after the write before it is done — whose result it gives; opens `gate` once durable.
    pub fn start(
        &mut self,
        epoch: u64,
        snap: JobSnapshot,
        gate: Gate,
        asked: Instant,
    ) -> Result<Option<Written>, CheckpointError> {
        let before = self.finish()?;
        let store = self.store.clone();
        let h = std::thread::Builder::new()
            .name(format!("checkpoint-{epoch}"))
            .spawn(move || {
                let at = store.write(epoch, &snap)?;
                gate.open();
                Ok(Written {
                    bytes: size(&at),
                    rows: snap.state_rows(),
                    took: asked.elapsed(),
                })
            })
            .map_err(|e| CheckpointError::Io {
                context: "starting the checkpoint writer".into(),
                source: e,
            })?;
        self.running = Some(h);
        Ok(before)
    }
}
