//! Typed reading of `WITH (…)` options: each connector takes what its [`ConnectorSpec`]
//! declares, of the declared type, and whatever is left is reported as an unknown option. A
//! connector asking for an option it does not declare is a bug in weir, reported as such
//! (every connector's tests read its options).
use std::collections::BTreeMap;

use crate::describe::{ConnectorSpec, Kind};
use crate::{Error, Result};

/// Options being consumed by one connector.
pub struct Options {
    map: BTreeMap<String, String>,
    spec: &'static ConnectorSpec,
    undeclared: Option<String>,
}

impl Options {
    /// Wraps the options given to the connector `spec` describes.
    pub fn new(spec: &'static ConnectorSpec, map: BTreeMap<String, String>) -> Self {
        Options {
            map,
            spec,
            undeclared: None,
        }
    }

    /// Takes `key`, which the spec must declare as of type `kind`.
    fn take(&mut self, key: &str, kind: Kind) -> Option<String> {
        if self.spec.option(key).map(|o| o.kind) != Some(kind) {
            self.undeclared.get_or_insert_with(|| key.to_string());
        }
        self.map.remove(key)
    }

    /// Takes an optional string option.
    pub fn string(&mut self, key: &str) -> Option<String> {
        self.take(key, Kind::Text)
    }

    /// Takes an optional SQL condition option (declared [`Kind::Condition`]).
    pub fn condition(&mut self, key: &str) -> Option<String> {
        self.take(key, Kind::Condition)
    }

    /// Takes a required string option.
    pub fn required(&mut self, key: &str) -> Result<String> {
        self.take(key, Kind::Text).ok_or_else(|| Error::Option {
            option: key.to_string(),
            message: format!("required by the {} connector", self.spec.name),
        })
    }

    /// Takes an optional integer option.
    pub fn u64(&mut self, key: &str, default: u64) -> Result<u64> {
        match self.take(key, Kind::Integer) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| Error::Option {
                option: key.to_string(),
                message: format!("expected a non-negative integer, got '{v}'"),
            }),
        }
    }

    /// Takes an optional boolean option.
    pub fn bool(&mut self, key: &str, default: bool) -> Result<bool> {
        match self.take(key, Kind::Bool).as_deref().map(str::trim) {
            None => Ok(default),
            Some("true") | Some("1") | Some("yes") => Ok(true),
            Some("false") | Some("0") | Some("no") => Ok(false),
            Some(v) => Err(Error::Option {
                option: key.to_string(),
                message: format!("expected true or false, got '{v}'"),
            }),
        }
    }

    /// Takes an optional duration option (`'500ms'`, `'2s'`, `'1m'`, `'1h'`), in ms.
    pub fn duration_ms(&mut self, key: &str, default: i64) -> Result<i64> {
        match self.take(key, Kind::Duration) {
            None => Ok(default),
            Some(v) => parse_duration_ms(&v).ok_or_else(|| Error::Option {
                option: key.to_string(),
                message: format!("expected a duration like '500ms', '2s', '1m', got '{v}'"),
            }),
        }
    }

    /// Fails if any option was not taken, or one was read that the spec does not declare.
    pub fn finish(self) -> Result<()> {
        if let Some(k) = self.undeclared {
            return Err(Error::Option {
                option: k,
                message: format!(
                    "read by the {} connector but not declared in its spec (a bug in weir)",
                    self.spec.name
                ),
            });
        }
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => Err(Error::Option {
                option: k.clone(),
                message: format!("unknown option for the {} connector", self.spec.name),
            }),
        }
    }
}

/// Parses `'500ms'`, `'2s'`, `'1.5s'`, `'3m'`, `'1h'`, `'1d'` or a bare number of ms.
pub fn parse_duration_ms(v: &str) -> Option<i64> {
    let v = v.trim().to_ascii_lowercase();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mul = match unit.trim() {
        "" | "ms" => 1.0,
        "s" | "sec" | "second" | "seconds" => 1000.0,
        "m" | "min" | "minute" | "minutes" => 60_000.0,
        "h" | "hour" | "hours" => 3_600_000.0,
        "d" | "day" | "days" => 86_400_000.0,
        _ => return None,
    };
    Some((n * mul).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("2s"), Some(2000));
        assert_eq!(parse_duration_ms("500ms"), Some(500));
        assert_eq!(parse_duration_ms("1.5 s"), Some(1500));
        assert_eq!(parse_duration_ms("1m"), Some(60_000));
        assert_eq!(parse_duration_ms("x"), None);
    }
}
