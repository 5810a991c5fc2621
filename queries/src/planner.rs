//! The streaming planner: a SQL query → DataFusion's optimized `LogicalPlan` → weir's
//! pipeline plan (a chain of [`OperatorSpec`]s).
//!
//! Windows: `GROUP BY …, tumble(ts, INTERVAL '1' SECOND)` (or `hop(ts, slide, size)`,
//! `session(ts, gap)`) is rewritten before DataFusion sees it: the call becomes the two columns
//! `window_start, window_end`, which the source shows as extra columns of the event-time type.
//! The streaming planner turns the scan into an `assign_window` operator that fills them, and
//! the `Aggregate` into a windowed aggregate that emits when the watermark passes a window.
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::scalar::ScalarValue;
use datafusion::sql::planner::{PlannerContext, SqlToRel};
use datafusion::sql::sqlparser::ast::{
    self, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, SetExpr, Spanned,
};
use datafusion::sql::unparser::expr_to_sql;
use weir_operators::provenance::{position_column, with_position_column};
use weir_operators::window::{WindowSpec, WINDOW_END, WINDOW_START};

use crate::catalog::{named_relation, Catalog};
use crate::error::SqlError;
use crate::plan::{NamedExpr, OperatorSpec, PipelinePlan, SinkRef, Stage};
use crate::session::{parser_options, Provider};

/// The column an updating pipeline adds to every output row: `insert` or `delete`.
pub const CHANGELOG_OP: &str = "op";

/// A window found in `GROUP BY`.
struct FoundWindow {
    spec: WindowSpec,
    time_column: String,
    /// The source the time column is qualified with (`tumble(a.ts, …)`, `a` an alias of it or
    /// its name): only it gets the window columns.
    source: Option<String>,
    at: (u64, u64),
}

/// Turns a DataFusion error into a positioned SQL error, with a hint where one helps.
pub fn df_error(e: &DataFusionError, line: u64, col: u64, tokens_text: Option<&str>) -> SqlError {
    let (mut l, mut c) = (line, col);
    if let Some(span) = e.diagnostic().and_then(|d| d.span) {
        if span.start.line > 0 {
            l = span.start.line;
            c = span.start.column;
        }
    }
    let msg = e.strip_backtrace();
    let msg = msg
        .trim_start_matches("Error during planning: ")
        .trim_start_matches("Schema error: ")
        .to_string();
    let mut err = SqlError::at(l, c, msg.clone());
    if msg.contains("No field named") {
        err = err.hint("check the column name against the source's declared columns (names are case-insensitive unless quoted)");
    } else if msg.contains("Invalid function") {
        err = err.hint("see the README for the functions weir supports");
    } else if msg.contains("unknown source or view") {
        err = err.hint("declare it first with CREATE SOURCE or CREATE VIEW");
    } else if let Some(t) = tokens_text {
        err = err.hint(format!("while planning: {t}"));
    }
    err
}

fn query_start(query: &ast::Query) -> (u64, u64) {
    let s = query.span();
    (s.start.line.max(1), s.start.column.max(1))
}

/// Plans a query into DataFusion's optimized logical plan; also returns the window, if any.
pub(crate) fn logical_plan(
    c: &Catalog,
    mut query: Box<ast::Query>,
) -> Result<(LogicalPlan, Option<(WindowSpec, String)>), SqlError> {
    let (ql, qc) = query_start(&query);
    let window = rewrite_window(c, &mut query)?;
    let mut provider = Provider::new(&c.state);
    for s in &c.sources {
        let mut fields: Vec<Field> = s
            .schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        if let Some(i) = c.provenance.iter().position(|n| n == &s.name) {
            fields.push(Field::new(position_column(i), DataType::Int64, false));
        }
        // Window columns on the sources whose event_time is the window's column (on every
        // source when none is: the mismatch is then reported after planning, with a hint).
        let any_match = window.as_ref().map(|w| {
            c.sources
                .iter()
                .any(|x| x.event_time.as_deref() == Some(w.time_column.as_str()))
        });
        let gets_window = match (&window, any_match) {
            (
                Some(FoundWindow {
                    source: Some(only), ..
                }),
                _,
            ) => &s.name == only,
            // A stream without an event time gets them too, so that reading it with a window is
            // reported with a hint below; a table (read through a lookup join) does not.
            (Some(w), Some(true)) => {
                (s.event_time.is_none() && s.table.is_none())
                    || s.event_time.as_deref() == Some(w.time_column.as_str())
            }
            (Some(_), _) => true,
            _ => false,
        };
        if let (true, Some(w)) = (gets_window, &window) {
            let col = s.event_time.as_deref().unwrap_or(w.time_column.as_str());
            let dt = s
                .schema
                .field_with_name(col)
                .map(|f| f.data_type().clone())
                .unwrap_or(DataType::Int64);
            fields.push(Field::new(WINDOW_START, dt.clone(), false));
            fields.push(Field::new(WINDOW_END, dt, false));
        }
        provider.add_table(&s.name, Arc::new(Schema::new(fields)));
    }
    for (name, v) in &c.views {
        provider.add_source(name, v.clone());
    }
    let planner = SqlToRel::new_with_options(&provider, parser_options());
    let plan = planner
        .sql_statement_to_plan(ast::Statement::Query(query))
        .map_err(|e| df_error(&e, ql, qc, None))?;
    let plan = c
        .state
        .optimize(&plan)
        .map_err(|e| df_error(&e, ql, qc, None))?;
    // A windowed view brings its window along.
    let mut window = window;
    if window.is_none() {
        let used = provider.used.borrow();
        if let Some(((spec, col), _)) = c
            .views
            .iter()
            .filter(|(n, _)| used.contains(n))
            .find_map(|(_, v)| v.window.clone().map(|w| (w, ())))
        {
            window = Some(FoundWindow {
                spec,
                time_column: col,
                source: None,
                at: (ql, qc),
            });
            return Ok((plan, window.map(|w| (w.spec, w.time_column))));
        }
    }
    if let Some(w) = &window {
        let used = provider.used.borrow();
        // The window needs one source read here whose event time is its column (a join's
        // other side may have its own event time).
        let windowed = used.iter().any(|u| {
            c.sources
                .iter()
                .any(|s| &s.name == u && s.event_time.as_deref() == Some(w.time_column.as_str()))
        });
        for u in used.iter().filter(|_| !windowed) {
            if let Some(s) = c.sources.iter().find(|s| &s.name == u) {
                if s.event_time.as_deref() != Some(w.time_column.as_str()) {
                    return Err(SqlError::at(w.at.0, w.at.1, format!(
                        "the window is on '{}', but source '{}' has event_time = {}",
                        w.time_column,
                        s.name,
                        s.event_time.as_deref().map(|e| format!("'{e}'")).unwrap_or_else(|| "none".into())
                    ))
                    .hint("windows are on the source's event_time column: declare it WITH (event_time = '<column>')"));
                }
            }
        }
    }
    Ok((plan, window.map(|w| (w.spec, w.time_column))))
}

/// Plans a query into a pipeline.
pub(crate) fn plan_query(
    c: &Catalog,
    query: Box<ast::Query>,
    name: String,
    sink: SinkRef,
    late_sink: Option<String>,
    as_of: Vec<String>,
) -> Result<PipelinePlan, SqlError> {
    let (ql, qc) = query_start(&query);
    let (plan, window) = logical_plan(c, query)?;
    let mut lowering = Lowering::new(c, window, (ql, qc));
    lowering.as_of = as_of;
    let schema = lowering.lower(&plan)?;
    let source = lowering.source.clone().ok_or_else(|| {
        SqlError::at(ql, qc, "the query reads no source")
            .hint("pipelines read a source declared with CREATE SOURCE")
    })?;
    Ok(PipelinePlan {
        name,
        source,
        sink,
        late_sink,
        stages: lowering.stages,
        limit: None,
        provenance: !c.provenance.is_empty(),
        output_schema: if lowering.changelog {
            let mut fields: Vec<Field> =
                schema.fields().iter().map(|f| f.as_ref().clone()).collect();
            fields.push(Field::new(CHANGELOG_OP, DataType::Utf8, false));
            Schema::new(fields)
        } else {
            schema
        },
    })
}

/// Finds `tumble`/`hop`/`session` in `GROUP BY`, replaces it by `window_start, window_end`.
/// The source named `qualifier` (by its name or an alias) in a FROM clause.
fn relation_of(from: &[ast::TableWithJoins], qualifier: &str) -> Option<String> {
    from.iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)))
        .filter_map(named_relation)
        .find(|(name, q)| q.value.to_ascii_lowercase() == qualifier || name == qualifier)
        .map(|(name, _)| name)
}

fn rewrite_window(c: &Catalog, query: &mut ast::Query) -> Result<Option<FoundWindow>, SqlError> {
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Ok(None);
    };
    let GroupByExpr::Expressions(exprs, _) = &mut select.group_by else {
        return Ok(None);
    };
    let mut found: Option<FoundWindow> = None;
    let mut out = Vec::with_capacity(exprs.len() + 1);
    for e in exprs.drain(..) {
        let ast::Expr::Function(f) = &e else {
            out.push(e);
            continue;
        };
        let fname = f.name.to_string().to_ascii_lowercase();
        if !matches!(fname.as_str(), "tumble" | "hop" | "session") {
            out.push(e);
            continue;
        }
        let span = e.span();
        let at = (span.start.line, span.start.column);
        if found.is_some() {
            return Err(SqlError::at(
                at.0,
                at.1,
                "only one window function is allowed in GROUP BY",
            ));
        }
        let args: Vec<ast::Expr> = match &f.args {
            FunctionArguments::List(l) => l
                .args
                .iter()
                .filter_map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => Some(x.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let want = if fname == "hop" { 3 } else { 2 };
        if args.len() != want {
            let form = match fname.as_str() {
                "tumble" => "tumble(ts, INTERVAL '10' SECOND)",
                "hop" => "hop(ts, INTERVAL '5' SECOND, INTERVAL '10' SECOND)  -- slide, size",
                _ => "session(ts, INTERVAL '30' SECOND)  -- gap",
            };
            return Err(
                SqlError::at(at.0, at.1, format!("{fname} takes {want} arguments"))
                    .hint(format!("write {form}")),
            );
        }
        let mut source = None;
        let time_column = match &args[0] {
            ast::Expr::Identifier(i) => i.value.to_ascii_lowercase(),
            ast::Expr::CompoundIdentifier(parts) => {
                if let [q, _] = parts.as_slice() {
                    source = relation_of(&select.from, &q.value.to_ascii_lowercase());
                }
                parts
                    .last()
                    .map(|i| i.value.to_ascii_lowercase())
                    .unwrap_or_default()
            }
            _ => {
                return Err(SqlError::at(
                    at.0,
                    at.1,
                    format!("the first argument of {fname} must be the event-time column"),
                ))
            }
        };
        let mut ms = Vec::new();
        for a in &args[1..] {
            ms.push(interval_ms(c, a)?);
        }
        check_window(&fname, &args[1..], &ms)?;
        let spec = match fname.as_str() {
            "tumble" => WindowSpec::Tumble { size: ms[0] },
            "hop" => {
                if ms[1] % ms[0] != 0 {
                    let s = args[1].span();
                    return Err(SqlError::at(
                        s.start.line,
                        s.start.column,
                        "hop: the size must be a multiple of the slide",
                    ));
                }
                WindowSpec::Hop {
                    slide: ms[0],
                    size: ms[1],
                }
            }
            _ => WindowSpec::Session { gap: ms[0] },
        };
        found = Some(FoundWindow {
            spec,
            time_column,
            source,
            at,
        });
        out.push(ast::Expr::Identifier(ast::Ident::new(WINDOW_START)));
        out.push(ast::Expr::Identifier(ast::Ident::new(WINDOW_END)));
    }
    *exprs = out;
    Ok(found)
}

/// Evaluates a constant interval (or ms integer, or duration string) to milliseconds.
/// Refuses a window longer than [`MAX_WINDOW`](weir_operators::time::MAX_WINDOW), or a hop
/// whose rows would each belong to more than
/// [`MAX_WINDOWS_PER_ROW`](weir_operators::time::MAX_WINDOWS_PER_ROW) windows.
fn check_window(fname: &str, args: &[ast::Expr], ms: &[i64]) -> Result<(), SqlError> {
    use weir_operators::time::{MAX_WINDOW, MAX_WINDOWS_PER_ROW};
    let at = |i: usize| {
        let s = args[i].span();
        (s.start.line, s.start.column)
    };
    if let Some(i) = ms.iter().position(|v| *v > MAX_WINDOW) {
        let (l, c) = at(i);
        return Err(SqlError::at(
            l,
            c,
            format!(
                "{fname}: '{}' is longer than weir's longest window",
                args[i]
            ),
        )
        .hint(format!(
            "windows, slides and gaps are at most {} days",
            MAX_WINDOW / 86_400_000
        )));
    }
    if fname == "hop" && ms.len() == 2 && ms[1] / ms[0] > MAX_WINDOWS_PER_ROW {
        let (l, c) = at(0);
        return Err(SqlError::at(
            l,
            c,
            format!(
                "hop: a slide of {} ms in a window of {} ms puts every row in {} windows",
                ms[0],
                ms[1],
                ms[1] / ms[0]
            ),
        )
        .hint(format!(
            "at most {MAX_WINDOWS_PER_ROW} windows per row: make the slide longer, or use a tumbling window"
        )));
    }
    Ok(())
}

fn interval_ms(c: &Catalog, a: &ast::Expr) -> Result<i64, SqlError> {
    let s = a.span();
    let at = (s.start.line, s.start.column);
    let provider = Provider::new(&c.state);
    let planner = SqlToRel::new_with_options(&provider, parser_options());
    let e = planner
        .sql_to_expr(a.clone(), &DFSchema::empty(), &mut PlannerContext::new())
        .map_err(|e| df_error(&e, at.0, at.1, None))?;
    let ms = match e {
        Expr::Literal(v, _) => scalar_ms(&v),
        _ => None,
    };
    match ms {
        Some(v) if v > 0 => Ok(v),
        _ => Err(SqlError::at(
            at.0,
            at.1,
            format!("'{a}' is not a positive fixed interval"),
        )
        .hint("write INTERVAL '10' SECOND (months and years are not fixed lengths)")),
    }
}

/// A constant duration in milliseconds: a fixed interval, an integer (ms) or a duration string.
pub(crate) fn scalar_ms(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::IntervalMonthDayNano(Some(v)) if v.months == 0 => {
            Some(v.days as i64 * 86_400_000 + v.nanoseconds / 1_000_000)
        }
        ScalarValue::IntervalDayTime(Some(v)) => {
            Some(v.days as i64 * 86_400_000 + v.milliseconds as i64)
        }
        ScalarValue::Int64(Some(v)) => Some(*v),
        ScalarValue::Int32(Some(v)) => Some(*v as i64),
        ScalarValue::UInt64(Some(v)) => Some(*v as i64),
        ScalarValue::Utf8(Some(v)) => crate::duration::parse_ms(v),
        _ => None,
    }
}

/// Strips column qualifiers and aliases, then prints the expression as SQL.
pub(crate) fn to_sql(e: &Expr) -> Result<String, DataFusionError> {
    let e = e.clone().unalias_nested().data;
    let e = e
        .transform_up(|e| match e {
            Expr::Column(c) => Ok(Transformed::yes(Expr::Column(Column::new_unqualified(
                c.name,
            )))),
            other => Ok(Transformed::no(other)),
        })?
        .data;
    Ok(expr_to_sql(&e)?.to_string())
}

pub(crate) struct Lowering<'a> {
    pub(crate) c: &'a Catalog,
    pub(crate) window: Option<(WindowSpec, String)>,
    pub(crate) source: Option<String>,
    pub(crate) stages: Vec<Stage>,
    pub(crate) at: (u64, u64),
    pub(crate) aggregated: bool,
    pub(crate) changelog: bool,
    /// Columns named by `FOR SYSTEM_TIME AS OF`.
    pub(crate) as_of: Vec<String>,
    /// Join outputs whose names clash: (qualifier, name) → the column's name in the plan.
    pub(crate) renames: Vec<(String, String, String)>,
    /// Keep the source's event-time column even where the query does not read it (a lookup
    /// join reads the table as of it).
    pub(crate) keep_time: bool,
}

impl<'a> Lowering<'a> {
    pub(crate) fn new(
        c: &'a Catalog,
        window: Option<(WindowSpec, String)>,
        at: (u64, u64),
    ) -> Self {
        Lowering {
            c,
            window,
            source: None,
            stages: Vec::new(),
            at,
            aggregated: false,
            changelog: false,
            as_of: Vec::new(),
            renames: Vec::new(),
            keep_time: false,
        }
    }

    pub(crate) fn unsupported(&self, what: &str, hint: &str) -> SqlError {
        SqlError::at(
            self.at.0,
            self.at.1,
            format!("{what} is not supported in a streaming pipeline yet"),
        )
        .hint(hint)
    }

    pub(crate) fn sql(&self, e: &Expr) -> Result<String, SqlError> {
        let e = if self.renames.is_empty() {
            e.clone()
        } else {
            e.clone()
                .transform_up(|x| match x {
                    Expr::Column(col) => {
                        let q = col.relation.as_ref().map(|r| r.table().to_string());
                        match self
                            .renames
                            .iter()
                            .find(|(rq, n, _)| Some(rq) == q.as_ref() && *n == col.name)
                        {
                            Some((_, _, to)) => {
                                Ok(Transformed::yes(Expr::Column(Column::new_unqualified(to))))
                            }
                            None => Ok(Transformed::no(Expr::Column(col))),
                        }
                    }
                    other => Ok(Transformed::no(other)),
                })
                .map(|t| t.data)
                .unwrap_or_else(|_| e.clone())
        };
        let e = &e;
        to_sql(e).map_err(|err| {
            SqlError::at(
                self.at.0,
                self.at.1,
                format!("cannot express {e} in a plan: {err}"),
            )
        })
    }

    /// The group and aggregate expressions of an `Aggregate`, named as in its output schema.
    fn named(
        &self,
        a: &datafusion::logical_expr::Aggregate,
    ) -> Result<(Vec<NamedExpr>, Vec<NamedExpr>), SqlError> {
        let fields = a.schema.fields();
        let mut group = Vec::new();
        for (i, g) in a.group_expr.iter().enumerate() {
            group.push(NamedExpr {
                sql: self.sql(g)?,
                name: fields[i].name().clone(),
            });
        }
        let n = group.len();
        let mut aggregates = Vec::new();
        for (i, e) in a.aggr_expr.iter().enumerate() {
            aggregates.push(NamedExpr {
                sql: self.sql(e)?,
                name: fields[n + i].name().clone(),
            });
        }
        Ok((group, aggregates))
    }

    /// Lowers `plan`; returns its output schema (unqualified).
    pub(crate) fn lower(&mut self, plan: &LogicalPlan) -> Result<Schema, SqlError> {
        match plan {
            LogicalPlan::TableScan(scan) => {
                let name = scan.table_name.table().to_string();
                if self.source.is_some() {
                    return Err(self.unsupported(
                        "reading two sources in one pipeline without a join",
                        "join them: a table with JOIN ... ON key, two streams with an interval join",
                    ));
                }
                let def = self
                    .c
                    .sources
                    .iter()
                    .find(|s| s.name == name)
                    .ok_or_else(|| {
                        SqlError::at(self.at.0, self.at.1, format!("unknown source '{name}'"))
                    })?;
                if def.table.is_some() {
                    return Err(self.unsupported(
                        &format!("reading table '{name}' on its own"),
                        "tables are read through a join: FROM <source> JOIN <table> ON <key>",
                    ));
                }
                self.source = Some(name);
                let mut schema = def.schema.clone();
                if let Some(i) = self.c.provenance.iter().position(|n| n == &def.name) {
                    schema = with_position_column(&schema, position_column(i));
                }
                // The window is assigned where planning gave the source window columns.
                let window = self.window.clone().filter(|(_, t)| {
                    def.event_time.as_deref() == Some(t.as_str())
                        && scan.source.schema().index_of(WINDOW_START).is_ok()
                });
                if let Some((spec, time_column)) = &window {
                    self.stages.push(Stage {
                        op: OperatorSpec::AssignWindow {
                            time_column: time_column.clone(),
                            window: *spec,
                        },
                        input_schema: schema.clone(),
                    });
                    let dt = schema
                        .field_with_name(time_column)
                        .map(|f| f.data_type().clone())
                        .unwrap_or(DataType::Int64);
                    let mut fields: Vec<Field> =
                        schema.fields().iter().map(|f| f.as_ref().clone()).collect();
                    fields.push(Field::new(WINDOW_START, dt.clone(), false));
                    fields.push(Field::new(WINDOW_END, dt, false));
                    schema = Schema::new(fields);
                }
                for f in &scan.filters {
                    let predicate = self.sql(f)?;
                    self.stages.push(Stage {
                        op: OperatorSpec::Filter { predicate },
                        input_schema: schema.clone(),
                    });
                }
                let mut projection = scan.projection.clone();
                if let (true, Some(p), Some(et)) =
                    (self.keep_time, projection.as_mut(), &def.event_time)
                {
                    if let Ok(i) = schema.index_of(et) {
                        if !p.contains(&i) {
                            p.push(i);
                        }
                    }
                }
                if let Some(proj) = &projection {
                    let all: Vec<usize> = (0..schema.fields().len()).collect();
                    if *proj != all {
                        let exprs = proj
                            .iter()
                            .map(|i| {
                                let n = schema.field(*i).name().clone();
                                NamedExpr {
                                    sql: format!("\"{}\"", n.replace('"', "\"\"")),
                                    name: n,
                                }
                            })
                            .collect();
                        self.stages.push(Stage {
                            op: OperatorSpec::Project { exprs },
                            input_schema: schema.clone(),
                        });
                        schema = Schema::new(
                            proj.iter()
                                .map(|i| schema.field(*i).clone())
                                .collect::<Vec<_>>(),
                        );
                    }
                }
                if scan.fetch.is_some() {
                    return Err(
                        self.unsupported("LIMIT", "streams have no end; filter or window instead")
                    );
                }
                Ok(schema)
            }
            LogicalPlan::Filter(f) => {
                let input = self.lower(&f.input)?;
                let predicate = self.sql(&f.predicate)?;
                self.stages.push(Stage {
                    op: OperatorSpec::Filter { predicate },
                    input_schema: input.clone(),
                });
                Ok(input)
            }
            LogicalPlan::Projection(p) => {
                let input = self.lower(&p.input)?;
                let mut exprs = Vec::with_capacity(p.expr.len());
                for (e, f) in p.expr.iter().zip(p.schema.fields()) {
                    exprs.push(NamedExpr {
                        sql: self.sql(e)?,
                        name: f.name().clone(),
                    });
                }
                let identity = exprs.len() == input.fields().len()
                    && exprs
                        .iter()
                        .zip(input.fields())
                        .all(|(e, f)| e.name == *f.name() && e.sql.trim_matches('"') == f.name());
                self.renames.clear();
                let mut seen = std::collections::HashSet::new();
                for e in &exprs {
                    if !seen.insert(e.name.clone()) {
                        return Err(SqlError::at(
                            self.at.0,
                            self.at.1,
                            format!("two output columns are named '{}'", e.name),
                        )
                        .hint("give one of them an alias: SELECT r.machine_id, m.machine_id AS table_machine_id"));
                    }
                }
                if !identity {
                    self.stages.push(Stage {
                        op: OperatorSpec::Project { exprs },
                        input_schema: input,
                    });
                }
                Ok(Schema::new(
                    p.schema
                        .fields()
                        .iter()
                        .map(|f| f.as_ref().clone())
                        .collect::<Vec<_>>(),
                ))
            }
            LogicalPlan::SubqueryAlias(s) => self.lower(&s.input),
            LogicalPlan::Aggregate(a) => {
                let input = self.lower(&a.input)?;
                if self.aggregated {
                    return Err(self.unsupported(
                        "an aggregate over an aggregate",
                        "aggregate once per pipeline, or write a second pipeline",
                    ));
                }
                self.aggregated = true;
                let fields = a.schema.fields();
                let (group, aggregates) = self.named(a)?;
                self.renames.clear();
                let Some((spec, _)) = self.window else {
                    if group.is_empty() {
                        return Err(self.unsupported(
                            "an aggregate without GROUP BY or window",
                            "group by a key, or add a window",
                        ));
                    }
                    self.changelog = true;
                    self.stages.push(Stage {
                        op: OperatorSpec::UpdatingAggregate { group, aggregates },
                        input_schema: input,
                    });
                    return Ok(Schema::new(
                        fields
                            .iter()
                            .map(|f| f.as_ref().clone())
                            .collect::<Vec<_>>(),
                    ));
                };
                let pos = |col: &str| group.iter().position(|g| g.sql.trim_matches('"') == col);
                let (Some(window_start), Some(window_end)) = (pos(WINDOW_START), pos(WINDOW_END))
                else {
                    return Err(self.unsupported(
                        "a window whose bounds are not grouped on",
                        "keep tumble/hop/session directly in GROUP BY",
                    ));
                };
                self.stages.push(Stage {
                    op: OperatorSpec::WindowAggregate {
                        window: spec,
                        group,
                        aggregates,
                        window_start,
                        window_end,
                    },
                    input_schema: input,
                });
                Ok(Schema::new(
                    fields
                        .iter()
                        .map(|f| f.as_ref().clone())
                        .collect::<Vec<_>>(),
                ))
            }
            LogicalPlan::Join(j) => self.lower_join(j),
            LogicalPlan::Sort(_) => Err(self.unsupported(
                "ORDER BY",
                "sinks receive rows in event-time order per window; sort downstream",
            )),
            LogicalPlan::Limit(_) => {
                Err(self.unsupported("LIMIT", "streams have no end; filter or window instead"))
            }
            LogicalPlan::Union(_) => {
                Err(self.unsupported("UNION", "write one pipeline per source into the same sink"))
            }
            LogicalPlan::Distinct(_) => {
                Err(self.unsupported("DISTINCT", "group by the columns in a window instead"))
            }
            LogicalPlan::Window(w) => self.lower_features(w),
            LogicalPlan::EmptyRelation(_) | LogicalPlan::Values(_) => {
                Err(
                    SqlError::at(self.at.0, self.at.1, "the query reads no source")
                        .hint("add FROM <source>"),
                )
            }
            other => Err(self.unsupported(
                &format!("the plan node {}", other.display()),
                "see the README for supported SQL",
            )),
        }
    }
}
