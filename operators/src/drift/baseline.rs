//! Named baselines (`CREATE BASELINE b FROM 'ref.csv' COLUMN x`): the reference values, sorted,
//! with their decile bin edges and bin fractions. A job keeps its baselines in a catalog of its
//! own ([`Baselines`]), so two jobs may each have a baseline of one name; the process's catalog
//! ([`global`]) is the one `CREATE BASELINE` checks files with.
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use super::stats;

/// A baseline.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub sorted: Vec<f64>,
    pub edges: Vec<f64>,
    pub fractions: Vec<f64>,
}

impl Baseline {
    /// From reference values (NaN dropped).
    pub fn new(mut values: Vec<f64>) -> Baseline {
        values.retain(|v| !v.is_nan());
        values.sort_by(f64::total_cmp);
        let edges = stats::edges(&values);
        let fractions = stats::fractions(&edges, &values);
        Baseline {
            sorted: values,
            edges,
            fractions,
        }
    }

    /// Reads column `column` of a CSV file with a header.
    pub fn from_csv(path: &str, column: &str) -> Result<Baseline, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("reading baseline '{path}': {e}"))?;
        let mut lines = text.lines();
        let header = lines
            .next()
            .ok_or_else(|| format!("baseline '{path}' is empty"))?;
        let idx = header
            .split(',')
            .position(|h| h.trim().trim_matches('"').eq_ignore_ascii_case(column))
            .ok_or_else(|| {
                format!("baseline '{path}' has no column '{column}' (header: {header})")
            })?;
        let mut values = Vec::new();
        for (n, l) in lines.enumerate() {
            let field = l.split(',').nth(idx).unwrap_or("").trim();
            if field.is_empty() {
                continue;
            }
            values.push(field.parse::<f64>().map_err(|_| {
                format!(
                    "baseline '{path}' line {}: '{field}' is not a number",
                    n + 2
                )
            })?);
        }
        if values.len() < 10 {
            return Err(format!(
                "baseline '{path}' has {} values; at least 10 are needed for its bins",
                values.len()
            ));
        }
        Ok(Baseline::new(values))
    }
}

/// Baselines by name (case-insensitive).
#[derive(Debug, Default)]
pub struct Baselines {
    map: RwLock<HashMap<String, Arc<Baseline>>>,
}

impl Baselines {
    /// An empty catalog.
    pub fn new() -> Arc<Baselines> {
        Arc::new(Baselines::default())
    }

    /// Registers a baseline under `name` (replacing one of that name).
    pub fn register(&self, name: &str, b: Baseline) {
        if let Ok(mut r) = self.map.write() {
            r.insert(name.to_ascii_lowercase(), Arc::new(b));
        }
    }

    /// The baseline `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Baseline>> {
        self.map
            .read()
            .ok()?
            .get(&name.to_ascii_lowercase())
            .cloned()
    }
}

/// The process's catalog.
pub fn global() -> &'static Arc<Baselines> {
    static R: OnceLock<Arc<Baselines>> = OnceLock::new();
    R.get_or_init(Baselines::new)
}
