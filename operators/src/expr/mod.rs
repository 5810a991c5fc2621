//! Stateless row operators over DataFusion physical expressions.
pub mod filter;
pub mod project;

pub use filter::Filter;
pub use project::Project;
