//! What Postgres clients declare one statement at a time — `CREATE SOURCE`, `SINK`,
//! `TABLE`, `MODEL`, `BASELINE`, `VIEW` — kept for the server in
//! `server/declarations.json`: a later `CREATE PIPELINE` is compiled with every declaration
//! before it, and the pipeline's record keeps that whole script.
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::catalog::write_durably;
use super::error::ApiError;

/// One declaration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Declaration {
    /// `source`, `sink`, `table`, `model`, `baseline` or `view`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its statement.
    pub sql: String,
}

/// A compile error of a script `prefix` + statement, placed in the statement (lines counted
/// from its first).
pub fn at_statement(mut e: weir_queries::SqlError, prefix: &str) -> ApiError {
    let lines = prefix.matches('\n').count() as u64;
    if e.line > lines {
        e.line -= lines;
    }
    ApiError::Sql(e)
}

/// The server's declarations.
pub struct Declarations {
    path: PathBuf,
    list: Mutex<Vec<Declaration>>,
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

impl Declarations {
    /// Those in `state_dir/server/declarations.json`.
    pub fn open(state_dir: &Path) -> Result<Declarations, ApiError> {
        let path = state_dir.join("server").join("declarations.json");
        let list = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(internal)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(internal(format!("{}: {e}", path.display()))),
        };
        Ok(Declarations {
            path,
            list: Mutex::new(list),
        })
    }

    /// Every declaration, in order.
    pub fn all(&self) -> Vec<Declaration> {
        self.list.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The script of every declaration, to be followed by a statement.
    pub fn prefix(&self) -> String {
        self.all()
            .into_iter()
            .map(|d| format!("{};\n", d.sql))
            .collect()
    }

    /// Adds `d` once the declarations with it compile; a name is declared once per kind.
    pub fn add(&self, d: Declaration) -> Result<(), ApiError> {
        let mut list = self.list.lock().map_err(internal)?;
        if list.iter().any(|x| x.kind == d.kind && x.name == d.name) {
            return Err(ApiError::Conflict(format!(
                "{} '{}' exists",
                d.kind, d.name
            )));
        }
        let before: Vec<&str> = list.iter().map(|x| x.sql.as_str()).collect();
        let prefix = match before.is_empty() {
            true => String::new(),
            false => format!("{};\n", before.join(";\n")),
        };
        weir_queries::compile(&format!("{prefix}{}", d.sql))
            .map_err(|e| at_statement(e, &prefix))?;
        list.push(d);
        let bytes = serde_json::to_vec_pretty(&*list).map_err(internal)?;
        write_durably(&self.path, &bytes)
    }
}
