//! Splitting batches by key for exchange between workers.
pub mod partition;

pub use partition::Partitioner;
