//! `CREATE SOURCE/SINK/TABLE` checked against the connectors' own descriptions
//! (`weir_connectors::describe`) when the statement is read: an unknown connector, an option the
//! connector does not take, a value of the wrong type, a missing required option or a format
//! it cannot handle is an error at the option's line and column, with a hint — before anything
//! runs.
use std::collections::{BTreeMap, HashMap};

use weir_connectors::registry;

use crate::error::SqlError;

/// Which side of a connector a statement declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// `CREATE SOURCE` or `CREATE TABLE`.
    Source,
    /// `CREATE SINK`.
    Sink,
}

/// Where each option of a statement was written, and the statement itself.
pub(crate) struct Positions {
    /// Option name → (line, column).
    pub options: HashMap<String, (u64, u64)>,
    /// The statement's name.
    pub statement: (u64, u64),
}

impl Positions {
    fn of(&self, option: Option<&str>) -> (u64, u64) {
        option
            .and_then(|o| self.options.get(o))
            .copied()
            .unwrap_or(self.statement)
    }
}

/// Checks `connector` and its `options` (the generic ones already taken out).
pub(crate) fn check(
    role: Role,
    connector: &str,
    options: &BTreeMap<String, String>,
    format: Option<&str>,
    at: &Positions,
) -> Result<(), SqlError> {
    let r = registry();
    let (spec, names, what) = match role {
        Role::Source => (r.source_spec(connector), r.source_names(), "source"),
        Role::Sink => (r.sink_spec(connector), r.sink_names(), "sink"),
    };
    let Some(spec) = spec else {
        let (l, c) = at.of(Some("connector"));
        return Err(
            SqlError::at(l, c, format!("unknown {what} connector '{connector}'"))
                .hint(format!("{what} connectors: {}", names.join(", "))),
        );
    };
    spec.check(options, format).map_err(|p| {
        let (l, c) = at.of(p.option.as_deref());
        SqlError::at(l, c, p.message).hint(p.hint)
    })
}
