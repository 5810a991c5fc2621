//! Statement dispatch into the catalog (`catalog.rs`): `CREATE SOURCE`, `CREATE TABLE`,
//! `CREATE SINK`, `CREATE VIEW`, `CREATE PIPELINE … AS INSERT INTO sink SELECT …` and bare
//! queries; `Compiler` collects the pipelines into a `ScriptPlan`.
use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::common::Constraint;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::sql::planner::SqlToRel;
use datafusion::sql::sqlparser::ast::{CreateTableOptions, SqlOption, Statement};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Word};
use weir_operators::time::is_event_time_type;

use crate::catalog::{Catalog, View};
use crate::error::SqlError;
use crate::plan::{PipelinePlan, ScriptPlan, SinkDef, SinkRef, SourceDef, TableDef};
use crate::planner::{df_error, plan_query};
use crate::query::{end_of, parse_query, parser_error};
use crate::session::{parser_options, Provider};
use crate::tokens::{split, to_map, Cursor};

/// Compiles statements one by one into a [`ScriptPlan`].
pub struct Compiler {
    catalog: Catalog,
    pipelines: Vec<PipelinePlan>,
    queries: usize,
}

impl std::ops::Deref for Compiler {
    type Target = Catalog;
    fn deref(&self) -> &Catalog {
        &self.catalog
    }
}

impl std::ops::DerefMut for Compiler {
    fn deref_mut(&mut self) -> &mut Catalog {
        &mut self.catalog
    }
}

impl Default for Compiler {
    fn default() -> Self {
        Self::new()
    }
}

/// Compiles a whole script.
pub fn compile(sql: &str) -> Result<ScriptPlan, SqlError> {
    let mut c = Compiler::new();
    c.add(sql)?;
    Ok(c.plan())
}

impl Compiler {
    /// An empty catalog.
    pub fn new() -> Self {
        Compiler {
            catalog: Catalog::new(),
            pipelines: Vec::new(),
            queries: 0,
        }
    }

    /// The plan of everything added so far.
    pub fn plan(&self) -> ScriptPlan {
        ScriptPlan {
            sources: self.sources.clone(),
            sinks: self.sinks.clone(),
            pipelines: self.pipelines.clone(),
            models: self.models.clone(),
            baselines: self.baselines.clone(),
        }
    }

    /// Compiles more statements; returns the pipelines they added.
    pub fn add(&mut self, sql: &str) -> Result<Vec<PipelinePlan>, SqlError> {
        let mut added = Vec::new();
        for stmt in split(sql)? {
            if let Some(p) = self.statement(stmt)? {
                self.pipelines.push(p.clone());
                added.push(p);
            }
        }
        Ok(added)
    }

    /// Removes the pipelines (keeps sources, sinks and views).
    pub fn clear_pipelines(&mut self) {
        self.pipelines.clear();
    }

    fn name_taken(&self, name: &str) -> bool {
        self.sources.iter().any(|s| s.name == name)
            || self.sinks.iter().any(|s| s.name == name)
            || self.views.iter().any(|(n, _)| n == name)
            || self.pipelines.iter().any(|p| p.name == name)
    }

    fn statement(&mut self, toks: Vec<TokenWithSpan>) -> Result<Option<PipelinePlan>, SqlError> {
        let c = Cursor::new(toks);
        let w0 = c.word_at(0).unwrap_or_default();
        let w1 = c.word_at(1).unwrap_or_default();
        match (w0.as_str(), w1.as_str()) {
            ("CREATE", "SOURCE") => self.create_source(c, false).map(|_| None),
            ("CREATE", "TABLE") => self.create_source(c, true).map(|_| None),
            ("CREATE", "SINK") => self.create_sink(c).map(|_| None),
            ("CREATE", "VIEW") => self.create_view(c).map(|_| None),
            ("CREATE", "PIPELINE") => self.create_pipeline(c).map(Some),
            ("CREATE", "MODEL") => self.create_model(c).map(|_| None),
            ("ALTER", "MODEL") => self.alter_model(c).map(|_| None),
            ("CREATE", "BASELINE") => self.create_baseline(c).map(|_| None),
            ("SELECT", _) | ("WITH", _) => {
                self.queries += 1;
                let name = format!("query_{}", self.queries);
                let (query, as_of) = parse_query(c.rest())?;
                plan_query(self, query, name, SinkRef::Collect, None, as_of).map(Some)
            }
            _ => Err(c.error(format!("unsupported statement starting with '{}'", c.all().first().map(|t| t.token.to_string()).unwrap_or_default()))
                .hint("weir accepts CREATE SOURCE, CREATE TABLE, CREATE SINK, CREATE VIEW, CREATE MODEL, ALTER MODEL, CREATE BASELINE, CREATE PIPELINE and SELECT")),
        }
    }

    /// `CREATE SOURCE` (a stream) or `CREATE TABLE` (keyed, upserted, read through joins).
    fn create_source(&mut self, c: Cursor, is_table: bool) -> Result<(), SqlError> {
        // Parse as CREATE TABLE (same columns syntax); the SOURCE word becomes TABLE in place,
        // so positions in errors stay right.
        let mut toks = c.all().to_vec();
        let (sl, scol) = (toks[1].span.start.line, toks[1].span.start.column);
        let end = end_of(&toks);
        toks[1].token = Token::Word(Word {
            value: "TABLE".into(),
            quote_style: None,
            keyword: datafusion::sql::sqlparser::keywords::Keyword::TABLE,
        });
        let stmt = Parser::new(&GenericDialect {})
            .with_tokens_with_locations(toks)
            .parse_statement()
            .map_err(|e| parser_error(e, end))?;
        let Statement::CreateTable(mut ct) = stmt else {
            return Err(SqlError::at(
                sl,
                scol,
                "expected CREATE SOURCE name (columns) WITH (...)",
            ));
        };
        let name = ct.name.to_string().to_ascii_lowercase();
        if self.name_taken(&name) {
            return Err(SqlError::at(
                sl,
                scol,
                format!("'{name}' is already declared"),
            ));
        }
        if ct.columns.is_empty() {
            return Err(SqlError::at(sl, scol, format!("source '{name}' declares no columns"))
                .hint("list the columns: CREATE SOURCE s (sensor_id TEXT, ts TIMESTAMP, value DOUBLE) WITH (...)"));
        }
        let options = match std::mem::take(&mut ct.table_options) {
            CreateTableOptions::With(o)
            | CreateTableOptions::Options(o)
            | CreateTableOptions::Plain(o) => o,
            _ => Vec::new(),
        };
        let mut map = BTreeMap::new();
        let mut at = crate::connector_check::Positions {
            options: std::collections::HashMap::new(),
            statement: (sl, scol),
        };
        for o in options {
            match o {
                SqlOption::KeyValue { key, value } => {
                    let start = key.span.start;
                    at.options.insert(
                        key.value.to_ascii_lowercase(),
                        (start.line.max(1), start.column.max(1)),
                    );
                    let v = value.to_string();
                    let v = v
                        .strip_prefix('\'')
                        .and_then(|s| s.strip_suffix('\''))
                        .map(|s| s.replace("''", "'"))
                        .unwrap_or(v);
                    map.insert(key.value.to_ascii_lowercase(), v);
                }
                other => {
                    return Err(
                        SqlError::at(sl, scol, format!("unsupported option '{other}'"))
                            .hint("options are key = 'value'"),
                    )
                }
            }
        }
        let provider = Provider::new(&self.state);
        let plan = SqlToRel::new_with_options(&provider, parser_options())
            .sql_statement_to_plan(Statement::CreateTable(ct))
            .map_err(|e| df_error(&e, sl, scol, None))?;
        let LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(cmt)) = plan else {
            return Err(SqlError::at(sl, scol, "could not read the column list"));
        };
        let schema: Schema = cmt.input.schema().as_arrow().clone();
        let what = if is_table { "table" } else { "source" };
        let primary_key: Vec<String> = cmt
            .constraints
            .iter()
            .filter_map(|k| match k {
                Constraint::PrimaryKey(cols) => Some(cols.clone()),
                _ => None,
            })
            .flatten()
            .map(|i| schema.field(i).name().clone())
            .collect();
        let connector = map.remove("connector").ok_or_else(|| {
            SqlError::at(sl, scol, format!("source '{name}' has no connector"))
                .hint("add WITH (connector = 'file' | 'generator', ...)")
        })?;
        let table = if is_table {
            Some(self.table_def(
                &name,
                &schema,
                primary_key,
                &connector,
                &mut map,
                (sl, scol),
            )?)
        } else if !primary_key.is_empty() {
            return Err(
                SqlError::at(sl, scol, format!("source '{name}' declares a PRIMARY KEY"))
                    .hint("a keyed collection that rows update is a table: write CREATE TABLE"),
            );
        } else {
            None
        };
        let format = map.remove("format");
        let event_time = map.remove("event_time").map(|s| s.to_ascii_lowercase());
        if let Some(et) = &event_time {
            match schema.field_with_name(et) {
                Ok(f) if is_event_time_type(f.data_type()) => {}
                Ok(f) => {
                    return Err(SqlError::at(
                        sl,
                        scol,
                        format!("event_time column '{et}' has type {}", f.data_type()),
                    )
                    .hint("use a TIMESTAMP column or a BIGINT of epoch milliseconds"))
                }
                Err(_) => {
                    return Err(SqlError::at(
                        sl,
                        scol,
                        format!("event_time column '{et}' is not a column of {what} '{name}'"),
                    ))
                }
            }
        }
        let dur = |key: &str, m: &mut BTreeMap<String, String>| -> Result<Option<i64>, SqlError> {
            match m.remove(key) {
                None => Ok(None),
                Some(v) => crate::duration::parse_ms(&v).map(Some).ok_or_else(|| {
                    SqlError::at(sl, scol, format!("option {key} = '{v}' is not a duration"))
                        .hint("write durations like '500ms', '2s', '1m'")
                }),
            }
        };
        let watermark_delay_ms = dur("watermark_delay", &mut map)?.unwrap_or(0);
        let idle_timeout_ms = dur("idle_timeout", &mut map)?;
        let max_future_ms = match map.get("max_future").map(|v| v.trim().to_ascii_lowercase()) {
            Some(v) if v == "off" || v == "none" => {
                map.remove("max_future");
                None
            }
            _ => match dur("max_future", &mut map)? {
                Some(ms) if ms <= 0 => {
                    return Err(SqlError::at(sl, scol, "max_future must be longer than 0")
                        .hint("write a duration like '1h', or 'off' to accept any event time"))
                }
                ms => Some(ms.unwrap_or(crate::plan::DEFAULT_MAX_FUTURE_MS)),
            },
        };
        let dead_letter = map.remove("dead_letter");
        crate::connector_check::check(
            crate::connector_check::Role::Source,
            &connector,
            &map,
            format.as_deref(),
            &at,
        )?;
        self.sources.push(SourceDef {
            name,
            connector,
            format,
            schema,
            options: map,
            event_time,
            watermark_delay_ms,
            idle_timeout_ms,
            max_future_ms,
            dead_letter,
            table,
        });
        if let Some(t) = self.sources.last() {
            // A table read from a log of changes (with tombstones) keeps every version.
            let log = weir_connectors::registry()
                .source_spec(&t.connector)
                .is_some_and(|s| {
                    s.tables == weir_connectors::describe::Tables::TableWithTombstones
                });
            if t.table.is_some()
                && log
                && t.event_time.is_none()
                && t.options
                    .get("bounded")
                    .map(|b| b != "true")
                    .unwrap_or(true)
            {
                return Err(SqlError::at(sl, scol, format!("Kafka table '{}' has no event_time", t.name))
                    .hint("declare WITH (event_time = '<column>') so lookups know which version each row sees, or read it once with bounded = 'true'"));
            }
        }
        Ok(())
    }

    /// The keyed part of `CREATE TABLE`.
    fn table_def(
        &self,
        name: &str,
        schema: &Schema,
        primary_key: Vec<String>,
        connector: &str,
        map: &mut BTreeMap<String, String>,
        (sl, scol): (u64, u64),
    ) -> Result<TableDef, SqlError> {
        if primary_key.is_empty() {
            return Err(SqlError::at(sl, scol, format!("table '{name}' has no primary key"))
                .hint("add PRIMARY KEY (<column>) to the column list: rows with the same key replace each other"));
        }
        let r = weir_connectors::registry();
        let can = |c: &str| {
            r.source_spec(c)
                .is_some_and(|s| s.tables != weir_connectors::describe::Tables::Stream)
        };
        if !can(connector) {
            let able: Vec<String> = r
                .source_names()
                .into_iter()
                .filter(|c| can(c))
                .map(|c| format!("'{c}'"))
                .collect();
            return Err(SqlError::at(
                sl,
                scol,
                format!("tables read from {}, not '{connector}'", able.join(" or ")),
            )
            .hint("declare a stream with CREATE SOURCE instead"));
        }
        let op_column = map.remove("op_column").map(|s| s.to_ascii_lowercase());
        if let Some(op) = &op_column {
            if schema.field_with_name(op).is_err() {
                return Err(SqlError::at(
                    sl,
                    scol,
                    format!("op_column '{op}' is not a column of table '{name}'"),
                )
                .hint("op_column names a TEXT column whose value 'delete' removes the row's key"));
            }
        }
        Ok(TableDef {
            primary_key,
            op_column,
        })
    }

    fn create_sink(&mut self, mut c: Cursor) -> Result<(), SqlError> {
        c.expect("CREATE")?;
        c.expect("SINK")?;
        let loc = c.loc();
        let name = c.ident("a sink name")?;
        if self.name_taken(&name) {
            return Err(SqlError::at(
                loc.0,
                loc.1,
                format!("'{name}' is already declared"),
            ));
        }
        let opts = c.options()?;
        if !c.at_end() {
            return Err(c.error("unexpected text after the sink's options"));
        }
        let mut map = to_map(&opts);
        let connector = map.remove("connector").ok_or_else(|| {
            SqlError::at(loc.0, loc.1, format!("sink '{name}' has no connector"))
                .hint("add WITH (connector = 'file' | 'stdout', ...)")
        })?;
        let format = map.remove("format");
        let at = crate::connector_check::Positions {
            options: opts.iter().map(|(k, _, l)| (k.clone(), *l)).collect(),
            statement: loc,
        };
        crate::connector_check::check(
            crate::connector_check::Role::Sink,
            &connector,
            &map,
            format.as_deref(),
            &at,
        )?;
        self.sinks.push(SinkDef {
            name,
            connector,
            format,
            options: map,
        });
        Ok(())
    }

    fn create_view(&mut self, mut c: Cursor) -> Result<(), SqlError> {
        c.expect("CREATE")?;
        c.expect("VIEW")?;
        let loc = c.loc();
        let name = c.ident("a view name")?;
        if self.name_taken(&name) {
            return Err(SqlError::at(
                loc.0,
                loc.1,
                format!("'{name}' is already declared"),
            ));
        }
        c.expect("AS")?;
        let (query, _) = parse_query(c.rest())?;
        let (plan, window) = crate::planner::logical_plan(self, query)?;
        self.views.push((name, Arc::new(View { plan, window })));
        Ok(())
    }

    fn create_pipeline(&mut self, mut c: Cursor) -> Result<PipelinePlan, SqlError> {
        c.expect("CREATE")?;
        c.expect("PIPELINE")?;
        let loc = c.loc();
        let name = c.ident("a pipeline name")?;
        if self.name_taken(&name) {
            return Err(SqlError::at(
                loc.0,
                loc.1,
                format!("'{name}' is already declared"),
            ));
        }
        let opts = c.options()?;
        let mut late_sink = None;
        let mut provenance = false;
        for (k, v, (l, col)) in &opts {
            match k.as_str() {
                "provenance" => provenance = v.eq_ignore_ascii_case("true"),
                "late_rows" => {
                    let v = v.to_ascii_lowercase();
                    if v != "drop" {
                        if !self.sinks.iter().any(|s| s.name == v) {
                            return Err(SqlError::at(
                                *l,
                                *col,
                                format!("late_rows names sink '{v}', which is not declared"),
                            )
                            .hint("declare it first with CREATE SINK, or use late_rows = 'drop'"));
                        }
                        late_sink = Some(v);
                    }
                }
                other => {
                    return Err(SqlError::at(
                        *l,
                        *col,
                        format!("unknown pipeline option '{other}'"),
                    )
                    .hint(
                        "pipelines take late_rows = 'drop' | '<sink name>' and provenance = 'true'",
                    ))
                }
            }
        }
        c.expect("AS")?;
        c.expect("INSERT")?;
        c.expect("INTO")?;
        let sloc = c.loc();
        let sink = c.ident("a sink name")?;
        if !self.sinks.iter().any(|s| s.name == sink) {
            return Err(
                SqlError::at(sloc.0, sloc.1, format!("unknown sink '{sink}'"))
                    .hint("declare it first with CREATE SINK"),
            );
        }
        let (mut query, as_of) = parse_query(c.rest())?;
        if provenance {
            self.provenance = crate::provenance::add_provenance(&mut query, loc, &self.sources)?;
        }
        let planned = plan_query(self, query, name, SinkRef::Named(sink), late_sink, as_of);
        self.provenance.clear();
        planned
    }
}
