//! Errors of the connectors crate, classified for action: a user error (fix the options),
//! an external one (a file or broker; retry with backoff), or an internal one.
use datafusion::arrow::error::ArrowError;

/// Who has to act on an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// Fix the SQL or options.
    User,
    /// Something outside weir (file system, broker); may be retried.
    External,
    /// A bug in weir.
    Internal,
}

/// Connector errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No connector of that name.
    #[error("unknown connector '{name}' (known: {known})")]
    UnknownConnector { name: String, known: String },
    /// An option is missing, unknown or malformed.
    #[error("connector option '{option}': {message}")]
    Option { option: String, message: String },
    /// The format is not supported by this connector.
    #[error("unsupported format '{0}' (supported: csv, json)")]
    Format(String),
    /// A declared column the connector cannot fill.
    #[error("column '{column}': {message}")]
    Column { column: String, message: String },
    /// I/O on a file or socket.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The connector cannot do what was asked (resume from a position, …).
    #[error("{0}")]
    Unsupported(String),
    /// Arrow encode/decode failure outside a single record.
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
}

impl Error {
    /// Who has to act.
    pub fn domain(&self) -> Domain {
        match self {
            Error::Io { .. } => Domain::External,
            Error::Arrow(_) => Domain::Internal,
            _ => Domain::User,
        }
    }

    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Result with the crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
