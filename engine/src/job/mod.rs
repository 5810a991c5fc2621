//! A job: one compiled script running on the runtime. `resources` makes what a job shares in a
//! process (catalog, sinks, per-pipeline state), `build` makes one worker's operators and wires
//! them into a dataflow, `report` says what the job did, `error` why it failed, `snapshot` how it
//! stops at a cut and how another job continues from it.
pub mod build;
pub mod error;
pub mod recent;
pub mod report;
pub mod resources;
pub mod snapshot;
pub mod wire;

pub use error::{JobError, JobErrorKind};
pub use report::{PipelineMetrics, PipelineReport, RunReport};
pub use resources::JobResources;
pub use snapshot::{JobSnapshot, SourceCut};
