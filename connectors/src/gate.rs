//! A durability gate: opened once the checkpoint a job was continued from is on disk. With
//! checkpoints written in the background while the next job runs, what may only follow a
//! durable checkpoint — producing a staged Kafka stage, committing offsets to a consumer
//! group — waits for its gate.
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Shared by the durable loop (which opens it) and the job's connectors (which wait on it).
#[derive(Debug, Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    /// A gate that is open already (a checkpoint loaded from disk).
    pub fn opened() -> Gate {
        let g = Gate::default();
        g.open();
        g
    }

    /// The checkpoint is durable.
    pub fn open(&self) {
        let (lock, cvar) = &*self.0;
        if let Ok(mut open) = lock.lock() {
            *open = true;
        }
        cvar.notify_all();
    }

    /// Whether the checkpoint is durable.
    pub fn is_open(&self) -> bool {
        self.0 .0.lock().map(|o| *o).unwrap_or(false)
    }

    /// Waits up to `timeout` for the checkpoint to be durable; whether it is.
    pub fn wait(&self, timeout: Duration) -> bool {
        let (lock, cvar) = &*self.0;
        let Ok(open) = lock.lock() else { return false };
        cvar.wait_timeout_while(open, timeout, |o| !*o)
            .map(|(o, _)| *o)
            .unwrap_or(false)
    }
}
