//! What each connector takes: its options (name, type, default, whether required, what it
//! does) and formats, declared once beside the connector and read in two places — by
//! `CREATE SOURCE/SINK/TABLE`, which checks the options a user wrote before anything runs
//! ([`ConnectorSpec::check`]), and by the connector itself, whose [`crate::Options`] reader
//! takes only declared options of the declared type.
use std::collections::BTreeMap;

/// An option's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Any text.
    Text,
    /// A non-negative integer.
    Integer,
    /// `true`/`false` (also `1`/`0`, `yes`/`no`).
    Bool,
    /// A duration: `'500ms'`, `'2s'`, `'1m'`, `'1h'`, or a number of ms.
    Duration,
    /// A SQL condition over the rows, within the nesting limits of [`crate::sql_limits`].
    Condition,
}

impl Kind {
    /// The type's name, as errors and the docs spell it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Integer => "integer",
            Kind::Bool => "boolean",
            Kind::Duration => "duration",
            Kind::Condition => "SQL condition",
        }
    }

    /// Whether `value` is of this type; if not, what was expected.
    pub fn check(self, value: &str) -> Result<(), &'static str> {
        let v = value.trim();
        let ok = match self {
            // A condition's nesting is checked with its position by `ConnectorSpec::check`.
            Kind::Text | Kind::Condition => true,
            Kind::Integer => v.parse::<u64>().is_ok(),
            Kind::Bool => matches!(v, "true" | "false" | "1" | "0" | "yes" | "no"),
            Kind::Duration => crate::options::parse_duration_ms(v).is_some(),
        };
        match (ok, self) {
            (true, _) => Ok(()),
            (false, Kind::Integer) => Err("a non-negative integer"),
            (false, Kind::Bool) => Err("true or false"),
            (false, _) => Err("a duration like '500ms', '2s', '1m'"),
        }
    }
}

/// One option of a connector.
#[derive(Debug, Clone, Copy)]
pub struct OptionSpec {
    /// Its name in `WITH (…)`.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// Whether it must be given.
    pub required: bool,
    /// Its default, as the docs say it (empty: none).
    pub default: &'static str,
    /// What it does.
    pub doc: &'static str,
}

/// An optional option.
pub const fn opt(
    name: &'static str,
    kind: Kind,
    default: &'static str,
    doc: &'static str,
) -> OptionSpec {
    OptionSpec {
        name,
        kind,
        required: false,
        default,
        doc,
    }
}

/// A required option.
pub const fn required(name: &'static str, kind: Kind, doc: &'static str) -> OptionSpec {
    OptionSpec {
        name,
        kind,
        required: true,
        default: "",
        doc,
    }
}

/// Whether a source connector can back a `CREATE TABLE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tables {
    /// Streams only (and every sink).
    Stream,
    /// Tables too: rows upsert by primary key.
    Table,
    /// Tables too, and a record without a payload (a tombstone) deletes its key.
    TableWithTombstones,
}

/// How a source's rows are traced back to the records they came from (record provenance):
/// the kind of position its rows carry, and the option that says where those positions are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// Its rows cannot be traced back.
    Untraced,
    /// By file line (`kind` names it in provenance records).
    Lines { kind: &'static str },
    /// By partition and offset in the log that option `at` names.
    Offsets {
        kind: &'static str,
        at: &'static str,
    },
    /// By sequence in the archive that option `at` names; without it, `hint` says why not.
    Archived {
        kind: &'static str,
        at: &'static str,
        hint: &'static str,
    },
}

/// The OpenLineage dataset (namespace, name) of a source or sink, from its options.
pub type Dataset = fn(&BTreeMap<String, String>) -> (String, String);

/// A connector's description.
#[derive(Debug)]
pub struct ConnectorSpec {
    /// Its name (`connector = '…'`).
    pub name: &'static str,
    /// Whether it can back a table.
    pub tables: Tables,
    /// The formats it reads or writes (empty: it takes no `format`).
    pub formats: &'static [&'static str],
    /// Its options, in groups (e.g. MQTT's connection options and the source's own).
    pub options: &'static [&'static [OptionSpec]],
    /// How its rows are traced back (sources).
    pub provenance: Provenance,
    /// Its OpenLineage dataset (`None`: weir's own namespace).
    pub dataset: Option<Dataset>,
    /// Whether a source can continue from a position (`Source::seek`), so a job reading it
    /// can be checkpointed.
    pub resumable: Resumable,
    /// Whether its rows are stamped as they happen (devices, brokers): an event time more than
    /// `max_future` ahead of the wall clock is then quarantined as well.
    pub live: bool,
}

/// Whether a source can continue from a checkpoint.
#[derive(Debug, Clone, Copy)]
pub enum Resumable {
    /// Never (it keeps no position to go back to).
    No,
    /// Always.
    Yes,
    /// With these options; otherwise the error says what to set.
    When(fn(&BTreeMap<String, String>) -> std::result::Result<(), String>),
}

impl Resumable {
    /// `Ok` when a source with `options` can continue from a checkpoint; otherwise why not.
    pub fn check(&self, options: &BTreeMap<String, String>) -> std::result::Result<(), String> {
        match self {
            Resumable::No => Err("it keeps no position to go back to".into()),
            Resumable::Yes => Ok(()),
            Resumable::When(f) => f(options),
        }
    }
}

impl ConnectorSpec {
    /// A stream connector with no options, untraced, in weir's namespace: the base the
    /// connectors' specs fill in (`..ConnectorSpec::BASE`).
    pub const BASE: ConnectorSpec = ConnectorSpec {
        name: "",
        tables: Tables::Stream,
        formats: &[],
        options: &[],
        provenance: Provenance::Untraced,
        dataset: None,
        resumable: Resumable::No,
        live: false,
    };
}

/// Why options given at `CREATE` do not fit a connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The option at fault (`None`: one that is missing, or the format).
    pub option: Option<String>,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: String,
}

impl ConnectorSpec {
    /// The declared option `name`.
    pub fn option(&self, name: &str) -> Option<&'static OptionSpec> {
        self.options
            .iter()
            .flat_map(|g| g.iter())
            .find(|o| o.name == name)
    }

    /// The declared options' names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.options
            .iter()
            .flat_map(|g| g.iter())
            .map(|o| o.name)
            .collect()
    }

    /// Checks options as written at `CREATE`: every one declared and of its type, every
    /// required one given, the format one the connector handles.
    pub fn check(
        &self,
        options: &BTreeMap<String, String>,
        format: Option<&str>,
    ) -> Result<(), Problem> {
        for (k, v) in options {
            let Some(spec) = self.option(k) else {
                return Err(Problem {
                    option: Some(k.clone()),
                    message: format!(
                        "connector option '{k}': unknown option for the {} connector",
                        self.name
                    ),
                    hint: self.known(k),
                });
            };
            if spec.kind == Kind::Condition {
                crate::sql_limits::check_expr_text(v).map_err(|r| Problem {
                    option: Some(k.clone()),
                    message: format!("connector option '{k}': {}", r.message),
                    hint: r.hint.into(),
                })?;
            }
            if let Err(expected) = spec.kind.check(v) {
                return Err(Problem {
                    option: Some(k.clone()),
                    message: format!("connector option '{k}': expected {expected}, got '{v}'"),
                    hint: format!("{k} is a {} option: {}", spec.kind.name(), spec.doc),
                });
            }
        }
        for o in self.options.iter().flat_map(|g| g.iter()) {
            if o.required && !options.contains_key(o.name) {
                return Err(Problem {
                    option: None,
                    message: format!(
                        "connector option '{}': required by the {} connector",
                        o.name, self.name
                    ),
                    hint: format!("add {} = '…': {}", o.name, o.doc),
                });
            }
        }
        self.check_format(format)
    }

    fn check_format(&self, format: Option<&str>) -> Result<(), Problem> {
        let Some(f) = format else { return Ok(()) };
        let f = f.to_ascii_lowercase();
        let f = if matches!(f.as_str(), "jsonl" | "ndjson") {
            "json".to_string()
        } else {
            f
        };
        if self.formats.contains(&f.as_str()) {
            return Ok(());
        }
        let hint = if self.formats.is_empty() {
            format!("the {} connector takes no format; leave it out", self.name)
        } else {
            format!(
                "the {} connector takes format = '{}'",
                self.name,
                self.formats.join("' | '")
            )
        };
        Err(Problem {
            option: Some("format".into()),
            message: format!("unsupported format '{f}' for the {} connector", self.name),
            hint,
        })
    }

    /// A hint for an unknown option: the closest declared name, and all of them.
    fn known(&self, given: &str) -> String {
        let names = self.names();
        if names.is_empty() {
            return format!("the {} connector takes no options", self.name);
        }
        let close = names
            .iter()
            .map(|n| (distance(given, n), *n))
            .min()
            .filter(|(d, _)| *d <= 2)
            .map(|(_, n)| format!("did you mean '{n}'? "))
            .unwrap_or_default();
        format!(
            "{close}the {} connector takes: {}",
            self.name,
            names.join(", ")
        )
    }
}

/// Edit distance (Levenshtein) between two short names.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    //! The checks a `CREATE` runs: unknown names (with the closest one), types, required
    //! options and formats.
    use super::*;

    const SPEC: ConnectorSpec = ConnectorSpec {
        name: "demo",
        tables: Tables::Stream,
        formats: &["csv", "json"],
        options: &[&[
            required("path", Kind::Text, "the file"),
            opt("rows", Kind::Integer, "10", "how many"),
            opt("every", Kind::Duration, "1s", "how often"),
        ]],
        ..ConnectorSpec::BASE
    };

    fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn unknown_wrong_typed_missing_and_format() {
        let e = SPEC
            .check(&map(&[("path", "a"), ("rowz", "1")]), None)
            .unwrap_err();
        assert_eq!(e.option.as_deref(), Some("rowz"));
        assert!(e.hint.starts_with("did you mean 'rows'?"), "{}", e.hint);
        let e = SPEC
            .check(&map(&[("path", "a"), ("rows", "x")]), None)
            .unwrap_err();
        assert!(e
            .message
            .contains("expected a non-negative integer, got 'x'"));
        let e = SPEC
            .check(&map(&[("path", "a"), ("every", "soon")]), None)
            .unwrap_err();
        assert!(e.message.contains("expected a duration"));
        let e = SPEC.check(&map(&[]), None).unwrap_err();
        assert!(e.message.contains("'path': required"));
        let e = SPEC
            .check(&map(&[("path", "a")]), Some("avro"))
            .unwrap_err();
        assert!(e.hint.contains("'csv' | 'json'"));
        assert!(SPEC
            .check(&map(&[("path", "a"), ("every", "2s")]), Some("JSONL"))
            .is_ok());
    }

    #[test]
    fn every_connector_declares_each_option_once() {
        let r = crate::registry();
        for spec in r
            .sources
            .iter()
            .map(|s| s.2)
            .chain(r.sinks.iter().map(|s| s.2))
        {
            let mut names = spec.names();
            let n = names.len();
            names.sort();
            names.dedup();
            assert_eq!(n, names.len(), "{}", spec.name);
        }
    }
}
