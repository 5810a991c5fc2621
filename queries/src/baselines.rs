//! `CREATE BASELINE name FROM 'reference.csv' COLUMN x`: reference values for the drift
//! aggregates (`psi(x, 'name')`, …). Declaring a baseline loads it, so a missing file or column
//! is an error at its line; every process loads it again before the pipelines start.
use weir_operators::drift::baseline::{register, Baseline};

use crate::error::SqlError;
use crate::plan::BaselineDef;
use crate::script::Compiler;
use crate::tokens::Cursor;

/// Loads a declared baseline into this process.
pub fn load(def: &BaselineDef) -> Result<(), String> {
    register(&def.name, Baseline::from_csv(&def.path, &def.column)?);
    Ok(())
}

impl Compiler {
    pub(crate) fn create_baseline(&mut self, mut c: Cursor) -> Result<(), SqlError> {
        c.expect("CREATE")?;
        c.expect("BASELINE")?;
        let loc = c.loc();
        let name = c.ident("a baseline name")?;
        c.expect("FROM")?;
        let ploc = c.loc();
        let path = c.string("the reference file, as a quoted path")?;
        c.expect("COLUMN")?;
        let column = c.ident("the column holding the reference values")?;
        if !c.at_end() {
            return Err(c
                .error("unexpected text after the baseline's column")
                .hint("CREATE BASELINE name FROM 'reference.csv' COLUMN x"));
        }
        if self.baselines.iter().any(|b| b.name == name) {
            return Err(SqlError::at(
                loc.0,
                loc.1,
                format!("baseline '{name}' is already declared"),
            ));
        }
        let def = BaselineDef { name, path, column };
        load(&def).map_err(|e| {
            SqlError::at(ploc.0, ploc.1, e)
                .hint("a baseline is a CSV file with a header and a numeric column")
        })?;
        self.baselines.push(def);
        Ok(())
    }
}
