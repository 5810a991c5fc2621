//! SQL errors a user can act on: what went wrong, where (line and column), and a hint.
use std::fmt;

/// An error in a SQL script.
#[derive(Debug, Clone, thiserror::Error)]
pub struct SqlError {
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
    /// What went wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// Errors of the queries crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The script has an error at a position.
    #[error("{0}")]
    Sql(#[from] SqlError),
    /// A plan could not be turned into operators (e.g. a plan file from another version).
    #[error("plan: {0}")]
    Plan(String),
    /// DataFusion failed while building operators from a plan.
    #[error("datafusion: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// An operator could not be built.
    #[error("operator: {0}")]
    Operator(#[from] weir_operators::Error),
}

/// Result with the crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A refusal of [`weir_connectors::sql_limits`], at its position.
impl From<weir_connectors::sql_limits::Refusal> for SqlError {
    fn from(r: weir_connectors::sql_limits::Refusal) -> Self {
        SqlError::at(r.line, r.column, r.message).hint(r.hint)
    }
}

impl SqlError {
    /// An error at `(line, column)`.
    pub fn at(line: u64, column: u64, message: impl Into<String>) -> Self {
        SqlError {
            line,
            column,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}
