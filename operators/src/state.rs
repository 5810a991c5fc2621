//! The one small state interface every stateful operator sits behind.
//!
//! Checkpoints (a later issue) snapshot and restore operator state through this trait without
//! knowing any operator's logic. Today it reports the size of the state, which `weir run`
//! prints, and what is open (windows, sessions).

/// Introspection and (later) snapshot of an operator's state.
pub trait OperatorState {
    /// Number of open state entries (windows × groups, or sessions).
    fn open_entries(&self) -> usize;
    /// Approximate bytes held.
    fn size_bytes(&self) -> usize;
}
