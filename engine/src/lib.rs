//! weir engine: the runtime and the `weir` binary.
//!
//! Entry points: [`runtime::Runtime`] (long-lived workers that take, run and stop jobs while
//! others run), [`run()`] (one script as one job on a runtime started for it, as `weir run`
//! does) and [`run_sql`]. A job's plan becomes a timely dataflow (`job/build.rs` over the
//! adapters in `dataflow/`): sources hold capabilities at their watermark, stateful operators
//! emit when the frontier passes a window, rows are exchanged by key between workers. SQL text
//! never reaches this crate: it calls `weir_queries` to compile and to build operators from
//! plan specs.

pub mod checkpoint;
pub mod client;
pub mod control;
pub mod dataflow;
pub mod durable;
pub mod error;
pub mod job;
pub mod metrics;
pub mod openlineage;
pub mod run;
pub mod runtime;
pub mod serve;
pub mod shutdown;
pub mod threads;
pub mod trace;

pub use error::{Error, Result};
pub use job::{JobError, JobErrorKind, JobSnapshot, PipelineReport, RunReport};
pub use run::{run, RunOptions};
pub use runtime::{
    Cluster, JobHandle, JobStatus, Runtime, RuntimeOptions, StopMode, SubmitOptions,
};

/// Compiles and runs a script.
pub fn run_sql(sql: &str, opts: &RunOptions) -> Result<RunReport> {
    let plan = weir_queries::compile(sql)?;
    run(&plan, opts)
}
