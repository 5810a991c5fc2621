//! Planning joins. A join whose right side is a table (`CREATE TABLE`) becomes a lookup join:
//! each stream row meets the table row of its key valid at the row's event time (Flink's
//! `FOR SYSTEM_TIME AS OF`, which is also what a plain `JOIN table` means here). A join of two
//! streams must bound the time between them — `ON a.k = b.k AND b.ts BETWEEN a.ts - INTERVAL …
//! AND a.ts + INTERVAL …` — and becomes an interval join. Inner and left joins only.
//!
//! Output columns keep their names; a right column whose name the left side already has is
//! renamed `<qualifier>_<name>` inside the plan (expressions above the join are rewritten to it).
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::common::{Column, DFSchemaRef};
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{BinaryExpr, Expr, JoinType, LogicalPlan, Operator};
use weir_operators::join::JoinKind;
use weir_operators::window::WINDOW_END;

use crate::error::SqlError;
use crate::plan::{JoinInput, OperatorSpec, SourceDef, Stage};
use crate::planner::{scalar_ms, Lowering};

/// The table under the right side of a join, if it is one.
fn scanned_table<'p>(plan: &'p LogicalPlan, sources: &'p [SourceDef]) -> Option<&'p SourceDef> {
    match plan {
        LogicalPlan::TableScan(s) => sources
            .iter()
            .find(|d| d.name == s.table_name.table() && d.table.is_some()),
        LogicalPlan::SubqueryAlias(a) => scanned_table(&a.input, sources),
        LogicalPlan::Filter(f) => scanned_table(&f.input, sources),
        LogicalPlan::Projection(p) => scanned_table(&p.input, sources),
        _ => None,
    }
}

/// A column, under casts and aliases.
fn column_of(e: &Expr) -> Option<&Column> {
    match e {
        Expr::Column(c) => Some(c),
        Expr::Cast(c) => column_of(&c.expr),
        Expr::TryCast(c) => column_of(&c.expr),
        Expr::Alias(a) => column_of(&a.expr),
        _ => None,
    }
}

/// `column ± constant` → (column, signed ms).
fn linear(e: &Expr) -> Option<(&Column, i64)> {
    if let Some(c) = column_of(e) {
        return Some((c, 0));
    }
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else {
        return None;
    };
    let (c, _) = linear(left)?;
    let Expr::Literal(v, _) = right.as_ref() else {
        return None;
    };
    let ms = scalar_ms(v)?;
    match op {
        Operator::Plus => Some((c, ms)),
        Operator::Minus => Some((c, -ms)),
        _ => None,
    }
}

/// Bounds on `right_time - left_time` found in a join condition.
#[derive(Default)]
struct Bounds {
    lower: Option<i64>,
    upper: Option<i64>,
    columns: Option<(String, String)>,
}

impl Bounds {
    /// Reads `x op y` as a bound when one side is a right column and the other a left one.
    fn take(
        &mut self,
        x: &Expr,
        op: Operator,
        y: &Expr,
        left: &DFSchemaRef,
        right: &DFSchemaRef,
    ) -> bool {
        let (Some((cx, kx)), Some((cy, ky))) = (linear(x), linear(y)) else {
            return false;
        };
        let side = |c: &Column| (left.has_column(c), right.has_column(c));
        // Normalise to `right - left  op  v`.
        let (op, v, rc, lc) = match (side(cx), side(cy)) {
            ((false, true), (true, false)) => (op, ky - kx, cx, cy),
            ((true, false), (false, true)) => match op.swap() {
                Some(s) => (s, kx - ky, cy, cx),
                None => return false,
            },
            _ => return false,
        };
        let cols = (lc.name.clone(), rc.name.clone());
        if self.columns.get_or_insert(cols.clone()) != &cols {
            return false;
        }
        match op {
            Operator::GtEq => self.lower = Some(self.lower.map_or(v, |l| l.max(v))),
            Operator::Gt => {
                self.lower = Some(
                    self.lower
                        .map_or(v.saturating_add(1), |l| l.max(v.saturating_add(1))),
                )
            }
            Operator::LtEq => self.upper = Some(self.upper.map_or(v, |u| u.min(v))),
            Operator::Lt => {
                self.upper = Some(
                    self.upper
                        .map_or(v.saturating_sub(1), |u| u.min(v.saturating_sub(1))),
                )
            }
            _ => return false,
        }
        true
    }
}

impl Lowering<'_> {
    /// Output schema of a join (left columns, then right columns renamed on a clash), and the
    /// renames it adds.
    fn joined_schema(
        &mut self,
        left: &Schema,
        right: &DFSchemaRef,
        kind: JoinKind,
        keep: &[usize],
    ) -> Schema {
        let mut fields: Vec<Field> = left.fields().iter().map(|f| f.as_ref().clone()).collect();
        for i in keep {
            let (q, f) = right.qualified_field(*i);
            let q = q.map(|q| q.table().to_string()).unwrap_or_default();
            let mut name = f.name().clone();
            if fields.iter().any(|x| x.name() == &name) {
                name = format!("{q}_{}", f.name());
                let mut n = 2;
                while fields.iter().any(|x| x.name() == &name) {
                    name = format!("{q}_{}_{n}", f.name());
                    n += 1;
                }
                self.renames.push((q, f.name().clone(), name.clone()));
            }
            fields.push(
                f.as_ref()
                    .clone()
                    .with_name(name)
                    .with_nullable(f.is_nullable() || kind == JoinKind::Left),
            );
        }
        Schema::new(fields)
    }

    /// Lowers a join.
    pub(crate) fn lower_join(
        &mut self,
        j: &datafusion::logical_expr::Join,
    ) -> Result<Schema, SqlError> {
        let kind = match j.join_type {
            JoinType::Inner => JoinKind::Inner,
            JoinType::Left => JoinKind::Left,
            other => {
                return Err(self.unsupported(
                    &format!("a {other} join"),
                    "weir runs inner and left joins; put the side whose rows must all appear on the left",
                ))
            }
        };
        if j.on.is_empty() {
            return Err(self.unsupported(
                "a join without an equality on keys",
                "join on a key: ON r.machine_id = m.machine_id",
            ));
        }
        if scanned_table(&j.left, &self.c.sources).is_some() {
            return Err(self.unsupported(
                "a table on the left of a join",
                "put the stream first: FROM readings r JOIN machines m ON ...",
            ));
        }
        match scanned_table(&j.right, &self.c.sources) {
            Some(t) => self.lookup_join(j, kind, t),
            None => self.interval_join(j, kind),
        }
    }

    fn lookup_join(
        &mut self,
        j: &datafusion::logical_expr::Join,
        kind: JoinKind,
        table: &SourceDef,
    ) -> Result<Schema, SqlError> {
        self.keep_time = true;
        let left = self.lower(&j.left)?;
        let Some(def) = &table.table else {
            return Err(self.unsupported("a join with a stream on the right", "join a table"));
        };
        let mut table_filters = Vec::new();
        self.table_filters(&j.right, &mut table_filters)?;
        let mut table_columns = Vec::new();
        for f in j.right.schema().fields() {
            table_columns.push(table.schema.index_of(f.name()).map_err(|_| {
                self.unsupported(
                    &format!("the computed column '{}' on the table side", f.name()),
                    "compute it after the join",
                )
            })?);
        }
        let mut left_keys = vec![None; def.primary_key.len()];
        for (l, r) in &j.on {
            let pos = column_of(r).and_then(|c| def.primary_key.iter().position(|k| *k == c.name));
            let Some(pos) = pos else {
                return Err(SqlError::at(self.at.0, self.at.1, format!("a lookup join matches the primary key of table '{}' ({}); '{r}' is not part of it", table.name, def.primary_key.join(", ")))
                    .hint("join ON <stream column> = <table>.<primary key column>; filter on other table columns in WHERE"));
            };
            left_keys[pos] = Some(self.sql(l)?);
        }
        let left_keys: Vec<String> =
            left_keys
                .into_iter()
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    SqlError::at(
                        self.at.0,
                        self.at.1,
                        format!(
                            "the join does not give every primary-key column of table '{}' ({})",
                            table.name,
                            def.primary_key.join(", ")
                        ),
                    )
                    .hint("a lookup finds one row by its whole key")
                })?;
        let as_of = self.as_of_column(&left)?;
        let output_schema = self.joined_schema(
            &left,
            j.right.schema(),
            kind,
            &(0..table_columns.len()).collect::<Vec<_>>(),
        );
        let residual = j.filter.as_ref().map(|f| self.sql(f)).transpose()?;
        self.stages.push(Stage {
            op: OperatorSpec::LookupJoin {
                table: table.name.clone(),
                kind,
                left_keys,
                as_of,
                table_filters,
                table_columns,
                residual,
                output_schema: output_schema.clone(),
            },
            input_schema: left,
        });
        Ok(output_schema)
    }

    /// Filters between the join and the table scan (pushed down from `WHERE` or `ON`).
    fn table_filters(&self, plan: &LogicalPlan, out: &mut Vec<String>) -> Result<(), SqlError> {
        match plan {
            LogicalPlan::TableScan(s) => {
                for f in &s.filters {
                    out.push(self.sql(f)?);
                }
                if s.fetch.is_some() {
                    return Err(self.unsupported("LIMIT on a table", "filter the table instead"));
                }
                Ok(())
            }
            LogicalPlan::SubqueryAlias(a) => self.table_filters(&a.input, out),
            LogicalPlan::Filter(f) => {
                out.push(self.sql(&f.predicate)?);
                self.table_filters(&f.input, out)
            }
            LogicalPlan::Projection(p) => {
                if p.expr.iter().any(|e| column_of(e).is_none()) {
                    return Err(self.unsupported(
                        "computed columns on the table side of a join",
                        "compute them after the join",
                    ));
                }
                self.table_filters(&p.input, out)
            }
            _ => Err(self.unsupported("this table expression", "join the table directly")),
        }
    }

    /// The column giving each stream row's event time: `FOR SYSTEM_TIME AS OF`, else the
    /// source's event time, else `window_end` for window results.
    fn as_of_column(&self, left: &Schema) -> Result<String, SqlError> {
        if let Some(c) = self.as_of.iter().find(|c| left.field_with_name(c).is_ok()) {
            return Ok(c.clone());
        }
        if let Some(c) = self.as_of.first() {
            return Err(SqlError::at(
                self.at.0,
                self.at.1,
                format!(
                    "FOR SYSTEM_TIME AS OF names '{c}', which is not a column of the stream side"
                ),
            )
            .hint("name the stream's event-time column: FOR SYSTEM_TIME AS OF r.ts"));
        }
        let et = self
            .source
            .as_ref()
            .and_then(|s| self.c.sources.iter().find(|d| &d.name == s))
            .and_then(|d| d.event_time.clone());
        match et {
            Some(e) if left.field_with_name(&e).is_ok() => Ok(e),
            _ if left.field_with_name(WINDOW_END).is_ok() => Ok(WINDOW_END.to_string()),
            _ => Err(SqlError::at(self.at.0, self.at.1, "the stream side of the lookup join has no event time")
                .hint("declare the source WITH (event_time = '<column>') and keep that column up to the join")),
        }
    }

    fn interval_join(
        &mut self,
        j: &datafusion::logical_expr::Join,
        kind: JoinKind,
    ) -> Result<Schema, SqlError> {
        let hint = "bound the time between the streams: ON a.k = b.k AND b.ts BETWEEN a.ts - INTERVAL '5' SECOND AND a.ts + INTERVAL '5' SECOND";
        let left = self.lower(&j.left)?;
        if self.aggregated {
            return Err(self.unsupported(
                "an interval join after an aggregate",
                "join the streams first, then aggregate",
            ));
        }
        let mut sub = Lowering::new(self.c, None, self.at);
        let right = sub.lower(&j.right)?;
        if sub.aggregated {
            return Err(self.unsupported(
                "an aggregate on the right of an interval join",
                "join the streams first, then aggregate",
            ));
        }
        let right_source = sub
            .source
            .clone()
            .ok_or_else(|| self.unsupported("a join side without a source", hint))?;
        let mut bounds = Bounds::default();
        let mut rest = Vec::new();
        if let Some(f) = &j.filter {
            for c in split_conjunction(f) {
                let used = match c {
                    Expr::BinaryExpr(BinaryExpr {
                        left: x,
                        op,
                        right: y,
                    }) => bounds.take(x, *op, y, j.left.schema(), j.right.schema()),
                    Expr::Between(b) if !b.negated => {
                        let lo = bounds.take(
                            &b.expr,
                            Operator::GtEq,
                            &b.low,
                            j.left.schema(),
                            j.right.schema(),
                        );
                        lo && bounds.take(
                            &b.expr,
                            Operator::LtEq,
                            &b.high,
                            j.left.schema(),
                            j.right.schema(),
                        )
                    }
                    _ => false,
                };
                if !used {
                    rest.push(c.clone());
                }
            }
        }
        let (Some(lower_ms), Some(upper_ms), Some((left_time, right_time))) =
            (bounds.lower, bounds.upper, bounds.columns)
        else {
            return Err(self.unsupported("a join of two streams without a time bound", hint));
        };
        let event_time = |src: &str| {
            self.c
                .sources
                .iter()
                .find(|d| d.name == src)
                .and_then(|d| d.event_time.clone())
        };
        let left_source = self.source.clone().unwrap_or_default();
        if event_time(&left_source).as_deref() != Some(left_time.as_str())
            || event_time(&right_source).as_deref() != Some(right_time.as_str())
        {
            return Err(SqlError::at(self.at.0, self.at.1, format!("the interval must be between the streams' event-time columns, not '{left_time}' and '{right_time}'"))
                .hint("state is freed as the watermarks pass: bound the sources' event_time columns"));
        }
        if lower_ms > upper_ms {
            return Err(
                SqlError::at(self.at.0, self.at.1, "the join interval is empty").hint(hint),
            );
        }
        let mut left_keys = Vec::new();
        let mut right_keys = Vec::new();
        for (l, r) in &j.on {
            left_keys.push(self.sql(l)?);
            right_keys.push(sub.sql(r)?);
        }
        let all: Vec<usize> = (0..j.right.schema().fields().len()).collect();
        let output_schema = self.joined_schema(&left, j.right.schema(), kind, &all);
        let residual = conjunction(rest).map(|f| self.sql(&f)).transpose()?;
        self.stages.push(Stage {
            op: OperatorSpec::IntervalJoin {
                right: Box::new(JoinInput {
                    source: right_source,
                    stages: sub.stages,
                    schema: right,
                }),
                kind,
                left_keys,
                right_keys,
                left_time,
                right_time,
                lower_ms,
                upper_ms,
                residual,
                output_schema: output_schema.clone(),
            },
            input_schema: left,
        });
        Ok(output_schema)
    }
}
