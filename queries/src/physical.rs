//! From plan to operators: each [`Stage`]'s SQL expressions are parsed against the stage's
//! input schema and turned into DataFusion physical expressions and aggregate functions, then
//! into the `operators` crate's operators. Every worker (thread or process) builds its own.
use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::tree_node::TreeNode;
use datafusion::common::DFSchema;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::Expr;
use datafusion::optimizer::analyzer::type_coercion::TypeCoercionRewriter;
use datafusion::physical_expr::PhysicalExpr;
#[allow(deprecated)]
use datafusion::physical_planner::create_aggregate_expr_and_maybe_filter;
use weir_operators::exchange::Partitioner;
use weir_operators::expr::{Filter, Project};
use weir_operators::features::state::Feature;
use weir_operators::features::Features;
use weir_operators::updating::UpdatingAggregate;
use weir_operators::window::aggregate::{AggregateParts, NamedAggregate};
use weir_operators::window::{AssignWindow, SessionAggregate, WindowAggregate, WindowSpec};
use weir_operators::BatchOperator;

use crate::plan::{NamedExpr, OperatorSpec, Stage};
use crate::{Error, Result};

/// SQL text over `df` → a physical expression, with DataFusion's type coercion applied again
/// (the plan's text carries literals, not the casts the planner had added).
pub(crate) fn physical(
    state: &SessionState,
    sql: &str,
    df: &DFSchema,
) -> Result<Arc<dyn PhysicalExpr>> {
    Ok(state.create_physical_expr(logical(state, sql, df)?, df)?)
}

/// SQL text over `df` → a logical expression with types coerced.
pub(crate) fn logical(state: &SessionState, sql: &str, df: &DFSchema) -> Result<Expr> {
    let e = state.create_logical_expr(sql, df)?;
    Ok(e.rewrite(&mut TypeCoercionRewriter::new(df))?.data)
}

/// Builds the operator of one stage.
pub fn build_stage(state: &SessionState, stage: &Stage) -> Result<Box<dyn BatchOperator>> {
    let schema: SchemaRef = Arc::new(stage.input_schema.clone());
    let df = DFSchema::try_from(stage.input_schema.clone())?;
    Ok(match &stage.op {
        OperatorSpec::AssignWindow {
            time_column,
            window,
        } => {
            let idx = schema
                .index_of(time_column)
                .map_err(|_| Error::Plan(format!("event-time column '{time_column}' missing")))?;
            Box::new(AssignWindow::new(&schema, idx, *window))
        }
        OperatorSpec::Filter { predicate } => {
            Box::new(Filter::new(physical(state, predicate, &df)?, schema))
        }
        OperatorSpec::Project { exprs } => {
            let mut v = Vec::with_capacity(exprs.len());
            for e in exprs {
                v.push((physical(state, &e.sql, &df)?, e.name.clone()));
            }
            Box::new(Project::new(v, &schema)?)
        }
        OperatorSpec::Features {
            partition,
            time_column,
            slots,
            features,
        } => {
            let time = schema
                .index_of(time_column)
                .map_err(|_| Error::Plan(format!("event-time column '{time_column}' missing")))?;
            let keys = partition
                .iter()
                .map(|k| physical(state, k, &df))
                .collect::<Result<Vec<_>>>()?;
            let slots = slots
                .iter()
                .map(|k| physical(state, k, &df))
                .collect::<Result<Vec<_>>>()?;
            let list = features
                .iter()
                .map(|f| {
                    (
                        Feature {
                            function: f.function,
                            frame: f.frame,
                            slot: f.slot,
                        },
                        f.name.clone(),
                        f.data_type.clone(),
                    )
                })
                .collect();
            Box::new(Features::new(&schema, keys, time, slots, list)?)
        }
        OperatorSpec::UpdatingAggregate { .. }
        | OperatorSpec::LookupJoin { .. }
        | OperatorSpec::IntervalJoin { .. } => {
            return Err(Error::Plan(
                "updating aggregates and joins are built by build_updating and physical_join"
                    .into(),
            ))
        }
        OperatorSpec::WindowAggregate {
            window,
            group,
            aggregates,
            window_start,
            window_end,
        } => {
            let group_exprs = named_physical(state, group, &df)?;
            let aggs = aggregate_exprs(state, aggregates, &df, &schema)?;
            let parts = AggregateParts {
                group_exprs,
                window_start: *window_start,
                window_end: *window_end,
                aggregates: aggs,
                input_schema: schema,
            };
            match window {
                WindowSpec::Session { gap } => Box::new(SessionAggregate::new(parts, *gap)?),
                _ => Box::new(WindowAggregate::new(parts)?),
            }
        }
    })
}

/// Builds the pure part of an updating aggregate.
pub fn build_updating(state: &SessionState, stage: &Stage) -> Result<UpdatingAggregate> {
    let OperatorSpec::UpdatingAggregate { group, aggregates } = &stage.op else {
        return Err(Error::Plan("not an updating aggregate".into()));
    };
    let schema: SchemaRef = Arc::new(stage.input_schema.clone());
    let df = DFSchema::try_from(stage.input_schema.clone())?;
    let group_exprs = named_physical(state, group, &df)?;
    let aggs = aggregate_exprs(state, aggregates, &df, &schema)?;
    Ok(UpdatingAggregate::new(group_exprs, aggs, schema)?)
}

/// The partitioner that sends every row of a group to one worker (non-window group keys).
pub fn partitioner(state: &SessionState, stage: &Stage) -> Result<Partitioner> {
    let (group, window_columns) = match &stage.op {
        OperatorSpec::UpdatingAggregate { group, .. } => (group, vec![]),
        OperatorSpec::Features { partition, .. } => {
            let df = DFSchema::try_from(stage.input_schema.clone())?;
            let keys = partition
                .iter()
                .map(|k| physical(state, k, &df))
                .collect::<Result<Vec<_>>>()?;
            return Ok(Partitioner::new(keys));
        }
        OperatorSpec::WindowAggregate {
            group,
            window_start,
            window_end,
            ..
        } => (group, vec![*window_start, *window_end]),
        _ => return Ok(Partitioner::new(Vec::new())),
    };
    let df = DFSchema::try_from(stage.input_schema.clone())?;
    let mut keys = Vec::new();
    for (i, g) in group.iter().enumerate() {
        if !window_columns.contains(&i) {
            keys.push(physical(state, &g.sql, &df)?);
        }
    }
    Ok(Partitioner::new(keys))
}

/// Physical expressions for named SQL expressions over `df`.
fn named_physical(
    state: &SessionState,
    exprs: &[NamedExpr],
    df: &DFSchema,
) -> Result<Vec<(Arc<dyn PhysicalExpr>, String)>> {
    exprs
        .iter()
        .map(|e| Ok((physical(state, &e.sql, df)?, e.name.clone())))
        .collect()
}

/// DataFusion aggregate functions for named aggregate SQL expressions over `df`.
fn aggregate_exprs(
    state: &SessionState,
    exprs: &[NamedExpr],
    df: &DFSchema,
    schema: &Schema,
) -> Result<Vec<NamedAggregate>> {
    let mut aggs = Vec::with_capacity(exprs.len());
    for a in exprs {
        let e = logical(state, &a.sql, df)?;
        #[allow(deprecated)]
        let (agg, filter, _order) =
            create_aggregate_expr_and_maybe_filter(&e, df, schema, state.execution_props())?;
        aggs.push((agg, filter, a.name.clone()));
    }
    Ok(aggs)
}
