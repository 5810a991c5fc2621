//! Plan lineage: for every sink column of every pipeline, the source and table columns it is
//! derived from, the models (and versions) that computed it, and whether it is a direct copy or
//! transformed. Derived from the compiled plan alone — each stage's SQL expressions are parsed
//! again and their column references followed from the sink back to the sources — so it
//! describes exactly what runs.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use datafusion::arrow::datatypes::Schema;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::DFSchema;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::Expr;
use datafusion::scalar::ScalarValue;
use serde::Serialize;
use weir_operators::window::{WINDOW_END, WINDOW_START};

use crate::plan::{OperatorSpec, ScriptPlan, SinkRef, Stage};
use crate::planner::CHANGELOG_OP;
use crate::session::session;
use crate::{Error, Result};

/// Where a value comes from.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Origin {
    /// `source.column` (sources and tables).
    pub columns: BTreeSet<String>,
    /// `model@version` of the models that computed it.
    pub models: BTreeSet<String>,
    /// False when the value is a copy of one source column.
    pub transformed: bool,
}

/// One sink column's lineage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnLineage {
    pub pipeline: String,
    pub sink: String,
    pub column: String,
    #[serde(flatten)]
    pub origin: Origin,
}

type Columns = BTreeMap<String, Origin>;

fn from_source(source: &str, schema: &Schema) -> Columns {
    schema
        .fields()
        .iter()
        .map(|f| {
            let mut o = Origin::default();
            o.columns.insert(format!("{source}.{}", f.name()));
            (f.name().clone(), o)
        })
        .collect()
}

/// The model versions `predict`-family calls in `e` use.
fn models_in(e: &Expr, plan: &ScriptPlan, out: &mut BTreeSet<String>) {
    let _ = e.apply(|x| {
        if let Expr::ScalarFunction(f) = x {
            let name = f.func.name();
            let text = |i: usize| match f.args.get(i) {
                Some(Expr::Literal(ScalarValue::Utf8(Some(s)), _)) => Some(s.to_ascii_lowercase()),
                _ => None,
            };
            match (name, text(0)) {
                ("predict_version", Some(m)) => {
                    if let Some(v) = text(1) {
                        out.insert(format!("{m}@{v}"));
                    }
                }
                ("predict" | "predict_label" | "model_version", Some(m)) => {
                    for d in plan.models.iter().filter(|d| d.name == m) {
                        out.insert(format!("{m}@{}", d.version));
                    }
                }
                _ => {}
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
}

/// The origin of `sql` evaluated over columns `cols` (schema `schema`).
fn origin(
    state: &SessionState,
    plan: &ScriptPlan,
    sql: &str,
    schema: &Schema,
    cols: &Columns,
) -> Result<Origin> {
    let df = DFSchema::try_from(schema.clone())?;
    let e = state.create_logical_expr(sql, &df)?;
    let mut o = Origin::default();
    let refs = e.column_refs();
    for c in &refs {
        if let Some(src) = cols.get(&c.name) {
            o.columns.extend(src.columns.iter().cloned());
            o.models.extend(src.models.iter().cloned());
            o.transformed |= src.transformed;
        }
    }
    models_in(&e, plan, &mut o.models);
    let bare = matches!(e.clone().unalias_nested().data, Expr::Column(_));
    o.transformed |= !bare || refs.len() != 1;
    Ok(o)
}

fn transformed(mut o: Origin) -> Origin {
    o.transformed = true;
    o
}

/// Follows `stages` from `cols`.
fn follow(
    state: &SessionState,
    plan: &ScriptPlan,
    stages: &[Stage],
    mut cols: Columns,
) -> Result<Columns> {
    for st in stages {
        let schema = &st.input_schema;
        cols = match &st.op {
            OperatorSpec::Filter { .. } => cols,
            OperatorSpec::AssignWindow { time_column, .. } => {
                let t = transformed(cols.get(time_column).cloned().unwrap_or_default());
                cols.insert(WINDOW_START.into(), t.clone());
                cols.insert(WINDOW_END.into(), t);
                cols
            }
            OperatorSpec::Project { exprs } => {
                let mut next = Columns::new();
                for e in exprs {
                    next.insert(e.name.clone(), origin(state, plan, &e.sql, schema, &cols)?);
                }
                next
            }
            OperatorSpec::WindowAggregate {
                group, aggregates, ..
            }
            | OperatorSpec::UpdatingAggregate { group, aggregates } => {
                let mut next = Columns::new();
                for g in group {
                    next.insert(g.name.clone(), origin(state, plan, &g.sql, schema, &cols)?);
                }
                for a in aggregates {
                    next.insert(
                        a.name.clone(),
                        transformed(origin(state, plan, &a.sql, schema, &cols)?),
                    );
                }
                if matches!(st.op, OperatorSpec::UpdatingAggregate { .. }) {
                    next.insert(CHANGELOG_OP.into(), transformed(Origin::default()));
                }
                next
            }
            OperatorSpec::Features {
                slots, features, ..
            } => {
                for f in features {
                    let o = origin(state, plan, &slots[f.slot], schema, &cols)?;
                    cols.insert(f.name.clone(), transformed(o));
                }
                cols
            }
            OperatorSpec::LookupJoin {
                table,
                table_columns,
                output_schema,
                ..
            } => {
                let def = plan
                    .source(table)
                    .ok_or_else(|| Error::Plan(format!("unknown table '{table}'")))?;
                let tcols = from_source(table, &def.schema);
                let width = schema.fields().len();
                for (i, c) in table_columns.iter().enumerate() {
                    let name = output_schema.field(width + i).name().clone();
                    let from = def.schema.field(*c).name();
                    cols.insert(name, tcols.get(from).cloned().unwrap_or_default());
                }
                cols
            }
            OperatorSpec::IntervalJoin {
                right,
                output_schema,
                ..
            } => {
                let def = plan
                    .source(&right.source)
                    .ok_or_else(|| Error::Plan(format!("unknown source '{}'", right.source)))?;
                let rcols = follow(
                    state,
                    plan,
                    &right.stages,
                    from_source(&right.source, &def.schema),
                )?;
                let width = schema.fields().len();
                for (i, f) in right.schema.fields().iter().enumerate() {
                    let name = output_schema.field(width + i).name().clone();
                    cols.insert(name, rcols.get(f.name()).cloned().unwrap_or_default());
                }
                cols
            }
        };
    }
    Ok(cols)
}

/// The lineage of every sink column of every pipeline, in output-column order.
pub fn lineage(plan: &ScriptPlan) -> Result<Vec<ColumnLineage>> {
    let state = session();
    let mut out = Vec::new();
    for p in &plan.pipelines {
        let src = plan
            .source(&p.source)
            .ok_or_else(|| Error::Plan(format!("unknown source '{}'", p.source)))?;
        let cols = follow(&state, plan, &p.stages, from_source(&p.source, &src.schema))?;
        let sink = match &p.sink {
            SinkRef::Named(n) => n.clone(),
            SinkRef::Collect => "<result>".into(),
        };
        for f in p.output_schema.fields() {
            out.push(ColumnLineage {
                pipeline: p.name.clone(),
                sink: sink.clone(),
                column: f.name().clone(),
                origin: cols.get(f.name()).cloned().unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

/// Lineage as a table.
pub fn table(rows: &[ColumnLineage]) -> String {
    let mut s = String::from("pipeline | sink.column | kind | from | models\n");
    for r in rows {
        let _ = writeln!(
            s,
            "{} | {}.{} | {} | {} | {}",
            r.pipeline,
            r.sink,
            r.column,
            if r.origin.transformed {
                "transformed"
            } else {
                "direct"
            },
            r.origin
                .columns
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            r.origin
                .models
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    s
}

/// Lineage as Graphviz dot: source columns and models → sink columns.
pub fn dot(rows: &[ColumnLineage]) -> String {
    let mut s = String::from("digraph lineage {\n  rankdir=LR;\n");
    let mut nodes = BTreeSet::new();
    for r in rows {
        let to = format!("{}.{}", r.sink, r.column);
        nodes.insert((to.clone(), "box"));
        for c in &r.origin.columns {
            nodes.insert((c.clone(), "ellipse"));
            let style = if r.origin.transformed {
                "solid"
            } else {
                "bold"
            };
            let _ = writeln!(s, "  \"{c}\" -> \"{to}\" [style={style}];");
        }
        for m in &r.origin.models {
            nodes.insert((m.clone(), "diamond"));
            let _ = writeln!(s, "  \"{m}\" -> \"{to}\" [style=dashed];");
        }
    }
    for (n, shape) in nodes {
        let _ = writeln!(s, "  \"{n}\" [shape={shape}];");
    }
    s.push_str("}\n");
    s
}
