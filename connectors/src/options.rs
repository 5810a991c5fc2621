//! Typed reading of `WITH (…)` options: each connector takes what it knows, and whatever is
//! left is reported as an unknown option.
use std::collections::BTreeMap;

use crate::{Error, Result};

/// Options being consumed by one connector.
pub struct Options {
    map: BTreeMap<String, String>,
    connector: &'static str,
}

impl Options {
    /// Wraps the options given to `connector`.
    pub fn new(connector: &'static str, map: BTreeMap<String, String>) -> Self {
        Options { map, connector }
    }

    /// Takes an optional string option.
    pub fn string(&mut self, key: &str) -> Option<String> {
        self.map.remove(key)
    }

    /// Takes a required string option.
    pub fn required(&mut self, key: &str) -> Result<String> {
        self.map.remove(key).ok_or_else(|| Error::Option {
            option: key.to_string(),
            message: format!("required by the {} connector", self.connector),
        })
    }

    /// Takes an optional integer option.
    pub fn u64(&mut self, key: &str, default: u64) -> Result<u64> {
        match self.map.remove(key) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| Error::Option {
                option: key.to_string(),
                message: format!("expected a non-negative integer, got '{v}'"),
            }),
        }
    }

    /// Takes an optional boolean option.
    pub fn bool(&mut self, key: &str, default: bool) -> Result<bool> {
        match self.map.remove(key).as_deref().map(str::trim) {
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
        match self.map.remove(key) {
            None => Ok(default),
            Some(v) => parse_duration_ms(&v).ok_or_else(|| Error::Option {
                option: key.to_string(),
                message: format!("expected a duration like '500ms', '2s', '1m', got '{v}'"),
            }),
        }
    }

    /// Fails if any option was not taken.
    pub fn finish(self) -> Result<()> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => Err(Error::Option {
                option: k.clone(),
                message: format!("unknown option for the {} connector", self.connector),
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
