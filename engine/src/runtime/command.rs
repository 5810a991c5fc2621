//! The commands a runtime's workers take, in one order on every worker of every process
//! (timely's `Sequencer`). Process 0's worker 0 sequences what the runtime's caller asks; any
//! worker sequences what it learns (its part of a job is ready; the job failed there).
//!
//! Each command says what it requires and what it owes:
//! - `Submit`: the job id is new. Every process opens the job's resources once; every worker
//!   builds its operators and owes one `Ready`.
//! - `Ready`: one per worker and job. When a worker has seen every worker's `Ready` for a job,
//!   it installs the job's dataflow if all were ready, or ends the job with the first error —
//!   every worker decides the same way at the same point of the sequence, so dataflows are
//!   installed in one order everywhere.
//! - `Stop`: `Drain` stops the job's sources, so open windows close as at the end of input and
//!   sinks finish; `Cancel` drops the job's dataflow at once (nothing more is written);
//!   `Suspend` stops the sources at once and snapshots every operator (`job/snapshot.rs`).
//! - `Fail`: a worker saw the job fail; every worker drops the job's dataflow and the job
//!   ends with that error. Later `Fail`s for the job are ignored.
//! - `AlterModel`: switches the job's model to a version its catalog has, between batches.
//! - `Checkpoint`: reserved for durable checkpoints at event time `epoch` (not taken yet:
//!   workers log and ignore it).
//! - `Shutdown`: workers cancel what still runs and leave; nothing may follow.
use serde::{Deserialize, Serialize};

use crate::job::error::JobError;

/// How to stop a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopMode {
    /// Stop reading; let open windows close and sinks finish.
    Drain,
    /// Drop the job now.
    Cancel,
    /// Stop reading at once and snapshot the job's state instead of closing it
    /// ([`crate::job::JobSnapshot`]): another job can continue from there.
    Suspend,
}

/// A command, as every worker sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Command {
    /// Run a job: its plan as JSON (exactly as it travels to another process) and the values
    /// of baselines computed from queries.
    Submit {
        job: u64,
        plan: String,
        baselines: Vec<(String, Vec<f64>)>,
        /// A job the runtime runs for itself (a baseline's query).
        internal: bool,
    },
    /// Worker `worker` has built its part of `job` (or failed to).
    Ready {
        job: u64,
        worker: usize,
        error: Option<JobError>,
    },
    /// Stop a job.
    Stop { job: u64, mode: StopMode },
    /// A job failed.
    Fail { job: u64, error: JobError },
    /// Switch a job's model to a version.
    AlterModel {
        job: u64,
        model: String,
        version: String,
    },
    /// Take a checkpoint of a job at event time `epoch` (reserved).
    Checkpoint { job: u64, epoch: u64 },
    /// End the runtime.
    Shutdown,
}
