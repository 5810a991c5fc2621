//! Per-key feature functions (`… OVER (PARTITION BY key ORDER BY ts ROWS/RANGE …)`): the
//! frame and function vocabulary (`spec`), the per-key history and running state (`state`),
//! and the operator that buffers rows until the watermark passes them, then emits each row
//! with its features, in event-time order per key (`operator`).
pub mod adwin;
pub mod operator;
pub mod spec;
pub mod state;

pub use operator::Features;
pub use spec::{FeatureFn, Frame};
