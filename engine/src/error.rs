//! Errors of the engine: a script that does not compile, a connector that cannot start, an
//! operator that fails while running.
use weir_queries::SqlError;

/// Engine errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SQL has an error.
    #[error("{0}")]
    Sql(#[from] SqlError),
    /// Building operators from the plan failed.
    #[error("{0}")]
    Plan(#[from] weir_queries::Error),
    /// A source or sink could not be created or failed.
    #[error("{context}: {source}")]
    Connector {
        context: String,
        #[source]
        source: weir_connectors::Error,
    },
    /// An operator failed while running.
    #[error("pipeline '{pipeline}': {message}")]
    Runtime { pipeline: String, message: String },
    /// Reading the script or another file.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A job failed.
    #[error("{0}")]
    Job(#[from] crate::job::JobError),
    /// A request the runtime cannot carry out (a job that is not running, a model version
    /// its catalog lacks, a job submitted to another process than 0).
    #[error("{0}")]
    Request(String),
    /// timely could not start workers.
    #[error("starting workers: {0}")]
    Workers(String),
}

/// Result with the engine's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
