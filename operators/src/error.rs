//! Errors of the operators crate.
use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;

/// Errors raised while computing on batches.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An Arrow kernel failed.
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    /// A DataFusion expression or accumulator failed.
    #[error("datafusion: {0}")]
    DataFusion(#[from] DataFusionError),
    /// The event-time column has a type that is not an integer or a timestamp.
    #[error("event-time column `{column}` has type {data_type}; expected BIGINT (epoch ms) or TIMESTAMP")]
    EventTimeType { column: String, data_type: String },
    /// The event-time column holds a NULL.
    #[error("event-time column `{0}` holds NULL")]
    NullEventTime(String),
    /// A column the operator needs is missing.
    #[error("column `{0}` not found")]
    MissingColumn(String),
    /// An operator panicked (a bug): the job fails naming it.
    #[error("{operator} panicked: {message}")]
    Panicked {
        operator: &'static str,
        message: String,
    },
    /// A snapshot batch does not fit the operator it is restored into.
    #[error("snapshot: {0}")]
    Snapshot(String),
}

/// Result with the crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
