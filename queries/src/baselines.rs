//! `CREATE BASELINE name FROM 'reference.csv' COLUMN x`: reference values for the drift
//! aggregates (`psi(x, 'name')`, …). Declaring a baseline loads it, so a missing file or column
//! is an error at its line; every process loads it again before the pipelines start.
//!
//! `CREATE BASELINE name AS SELECT x FROM source … LIMIT n`: the first n values a query gives
//! (in the order they reach the sink) — the engine runs the query before the pipelines start
//! and stops its sources once n rows arrived.
use weir_operators::drift::baseline::{global, Baseline, Baselines};

use datafusion::sql::sqlparser::ast::{Expr, LimitClause, Value};

use crate::catalog::Catalog;
use crate::error::SqlError;
use crate::plan::{BaselineDef, SinkRef};
use crate::tokens::Cursor;

/// Loads a declared baseline into `into` (a job's catalog, or the process's that `CREATE`
/// checks with).
pub fn load_into(def: &BaselineDef, into: &Baselines) -> Result<(), String> {
    into.register(&def.name, Baseline::from_csv(&def.path, &def.column)?);
    Ok(())
}

impl Catalog {
    fn stream_baseline(
        &mut self,
        name: String,
        c: Cursor,
        loc: (u64, u64),
    ) -> Result<(), SqlError> {
        let hint = "CREATE BASELINE name AS SELECT temperature FROM readings LIMIT 10000";
        let (mut query, as_of) = crate::query::parse_query(c.rest())?;
        let limit = match query.limit_clause.take() {
            Some(LimitClause::LimitOffset {
                limit: Some(Expr::Value(v)),
                offset: None,
                ..
            }) => match &v.value {
                Value::Number(n, _) => n.parse::<u64>().ok(),
                _ => None,
            },
            _ => None,
        };
        let Some(limit) = limit else {
            return Err(
                SqlError::at(loc.0, loc.1, "a baseline from a stream needs LIMIT <rows>")
                    .hint(hint),
            );
        };
        let mut plan = crate::planner::plan_query(
            self,
            query,
            format!("baseline {name}"),
            SinkRef::Collect,
            None,
            as_of,
        )?;
        if plan.output_schema.fields().len() != 1
            || !plan.output_schema.field(0).data_type().is_numeric()
        {
            return Err(
                SqlError::at(loc.0, loc.1, "a baseline query selects one numeric column")
                    .hint(hint),
            );
        }
        plan.limit = Some(limit);
        self.baselines.push(BaselineDef {
            name,
            path: String::new(),
            column: plan.output_schema.field(0).name().clone(),
            query: Some(plan),
        });
        Ok(())
    }

    pub(crate) fn create_baseline(&mut self, mut c: Cursor) -> Result<(), SqlError> {
        c.expect("CREATE")?;
        c.expect("BASELINE")?;
        let loc = c.loc();
        let name = c.ident("a baseline name")?;
        if self.baselines.iter().any(|b| b.name == name) {
            return Err(SqlError::at(
                loc.0,
                loc.1,
                format!("baseline '{name}' is already declared"),
            ));
        }
        if c.eat("AS") {
            return self.stream_baseline(name, c, loc);
        }
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
        let def = BaselineDef {
            name,
            path,
            column,
            query: None,
        };
        load_into(&def, global()).map_err(|e| {
            SqlError::at(ploc.0, ploc.1, e)
                .hint("a baseline is a CSV file with a header and a numeric column")
        })?;
        self.baselines.push(def);
        Ok(())
    }
}
