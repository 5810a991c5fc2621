//! Event-time windows: assignment of rows to windows and windowed aggregation.
//!
//! - `spec`: the window kinds (tumble, hop, session) and their parameters.
//! - `assign`: adds `window_start`/`window_end` columns (hop duplicates a row per window).
//! - `aggregate`: tumble/hop group-by with DataFusion `GroupsAccumulator`s, per window.
//! - `session`: session windows per key, merged with DataFusion `Accumulator` state.
//! - `snapshot`: both aggregates' state as Arrow batches (open windows or sessions, their group
//!   keys and their accumulators' intermediate state), and back.
pub mod aggregate;
pub mod assign;
pub mod session;
pub mod snapshot;
pub mod spec;

pub use aggregate::WindowAggregate;
pub use assign::AssignWindow;
pub use session::SessionAggregate;
pub use spec::WindowSpec;

/// Name of the window start column the planner exposes.
pub const WINDOW_START: &str = "window_start";
/// Name of the window end column the planner exposes.
pub const WINDOW_END: &str = "window_end";
