//! Durable checkpoints: a job's snapshot ([`crate::job::JobSnapshot`]) written to a state
//! directory so a process started again — after kill -9 or a power cut — continues from the
//! newest complete one. `store` writes and reads checkpoints (Arrow IPC parts, a manifest with
//! each part's length and CRC written last, every file and directory fsynced, the last two
//! kept, a damaged one skipped for the one before); `crc` is the checksum; `control` watches and
//! stops a checkpointed run.
pub mod background;
pub mod control;
pub mod crc;
pub mod store;

pub use store::{CheckpointError, Store};
