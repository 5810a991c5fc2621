//! Per-key feature functions (`… OVER (PARTITION BY key ORDER BY ts ROWS/RANGE …)`): the
//! frame and function vocabulary (`spec`), the per-key history and running state (`state`),
//! and the operator that buffers rows until the watermark passes them, then emits each row
//! with its features, in event-time order per key (`operator`); its state's snapshot and restore
//! (`snapshot`).
pub mod adwin;
pub mod operator;
mod snapshot;
pub mod spec;
pub mod state;

pub use operator::Features;
pub use spec::{FeatureFn, Frame};
