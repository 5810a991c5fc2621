//! weir queries: SQL → plan.
//!
//! Entry point: [`compile`] (a whole script) or [`Compiler`] (statement by statement), giving
//! a [`plan::ScriptPlan`]; and [`physical::build_stage`], which turns a plan's operator spec
//! into an operator. Statements are tokenized with positions (`tokens`), weir's DDL is read in
//! `script`, queries are planned by DataFusion (`SqlToRel` + its analyzer and optimizer) and
//! lowered into weir's plan in `planner`. Depends on `operators`, `models` and `connectors`
//! (whose descriptions `CREATE` checks options against): no timely, no I/O.
//!
//! How to add a statement: add its head to `Compiler::statement`, parse it with `Cursor`,
//! record it in the catalog, and document it in the README's SQL reference.

pub mod baselines;
pub mod catalog;
mod connector_check;
pub mod duration;
pub mod error;
mod features;
mod functions;
pub mod job_plan;
mod join;
pub mod lineage;
mod models;
pub mod physical;
pub mod physical_join;
pub mod plan;
pub mod planner;
mod provenance;
mod query;
pub mod redact;
pub mod script;
pub mod session;
pub mod tokens;

pub use error::{Error, Result, SqlError};
pub use models::parse_alter_model;
pub use script::{compile, Compiler};
