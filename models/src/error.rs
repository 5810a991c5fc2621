//! Errors of the models crate.

/// Errors loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("reading model '{path}': {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The file is not a valid ONNX model.
    #[error("model '{path}' is not valid ONNX: {message}")]
    Format { path: String, message: String },
    /// The model uses something weir cannot evaluate.
    #[error("model '{path}': {message}")]
    Unsupported { path: String, message: String },
    /// tract failed to load or run the model.
    #[error("tract: {0}")]
    Tract(String),
    /// Evaluation failed (bad input shape, missing value, …).
    #[error("evaluating model: {0}")]
    Eval(String),
    /// The registry has no such model or version.
    #[error("{0}")]
    Registry(String),
}

/// Result with the crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
