//! weir engine: the runtime and the `weir` binary.
//!
//! Entry point: [`run_sql`] (compile and run a script) or [`runner::run`] (run a compiled
//! [`weir_queries::plan::ScriptPlan`]). The plan becomes a timely dataflow (`dataflow/`): sources
//! hold capabilities at their watermark, stateful operators emit when the frontier passes a
//! window, rows are exchanged by key between workers. SQL text never reaches this crate: it calls
//! `weir_queries` to compile and to build operators from plan specs.

pub mod control;
pub mod dataflow;
pub mod error;
pub mod metrics;
pub mod openlineage;
pub mod runner;
pub mod trace;

pub use error::{Error, Result};
pub use runner::{run, Cluster, PipelineReport, RunOptions, RunReport};

/// Compiles and runs a script.
pub fn run_sql(sql: &str, opts: &RunOptions) -> Result<RunReport> {
    let plan = weir_queries::compile(sql)?;
    run(&plan, opts)
}
