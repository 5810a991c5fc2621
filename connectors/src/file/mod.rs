//! Files: a bounded line-oriented source (CSV or JSON lines) and a sink.
pub mod sink;
pub mod source;
