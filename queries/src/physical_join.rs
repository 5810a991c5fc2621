//! From plan to join operators: key encoders (for routing rows and for the table's
//! arrangement), the lookup join and the interval join, with their SQL expressions turned into
//! DataFusion physical expressions over each side's schema.
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::execution::context::SessionState;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::PhysicalExpr;
use weir_operators::join::{IntervalJoin, KeyEncoder, LookupJoin};
use weir_operators::window::WINDOW_END;

use crate::physical::physical;
use crate::plan::{OperatorSpec, SourceDef, Stage};
use crate::{Error, Result};

fn exprs(
    state: &SessionState,
    sql: &[String],
    schema: &Schema,
) -> Result<Vec<Arc<dyn PhysicalExpr>>> {
    let df = DFSchema::try_from(schema.clone())?;
    sql.iter().map(|s| physical(state, s, &df)).collect()
}

/// An optional condition over `schema`.
fn condition(
    state: &SessionState,
    sql: Option<&String>,
    schema: &Schema,
) -> Result<Option<Arc<dyn PhysicalExpr>>> {
    let df = DFSchema::try_from(schema.clone())?;
    sql.map(|s| physical(state, s, &df)).transpose()
}

fn types(exprs: &[Arc<dyn PhysicalExpr>], schema: &Schema) -> Result<Vec<DataType>> {
    Ok(exprs
        .iter()
        .map(|e| e.data_type(schema))
        .collect::<std::result::Result<_, _>>()?)
}

/// The primary-key encoder of a table's rows (the arrangement's keys).
pub fn table_keys(table: &SourceDef) -> Result<KeyEncoder> {
    let def = table
        .table
        .as_ref()
        .ok_or_else(|| Error::Plan(format!("'{}' is not a table", table.name)))?;
    let mut cols: Vec<Arc<dyn PhysicalExpr>> = Vec::new();
    let mut tys = Vec::new();
    for k in &def.primary_key {
        let i = table
            .schema
            .index_of(k)
            .map_err(|_| Error::Plan(format!("primary key '{k}' missing")))?;
        cols.push(Arc::new(Column::new(k, i)));
        tys.push(table.schema.field(i).data_type().clone());
    }
    Ok(KeyEncoder::new(cols, tys)?)
}

fn lookup_parts(
    state: &SessionState,
    stage: &Stage,
    table: &SourceDef,
) -> Result<(KeyEncoder, usize)> {
    let OperatorSpec::LookupJoin {
        left_keys, as_of, ..
    } = &stage.op
    else {
        return Err(Error::Plan("not a lookup join".into()));
    };
    let keys = exprs(state, left_keys, &stage.input_schema)?;
    let def = table
        .table
        .as_ref()
        .ok_or_else(|| Error::Plan("not a table".into()))?;
    let tys = def
        .primary_key
        .iter()
        .map(|k| {
            table
                .schema
                .field_with_name(k)
                .map(|f| f.data_type().clone())
                .map_err(|_| Error::Plan(format!("primary key '{k}' missing")))
        })
        .collect::<Result<Vec<_>>>()?;
    let as_of = stage
        .input_schema
        .index_of(as_of)
        .map_err(|_| Error::Plan(format!("as-of column '{as_of}' missing")))?;
    Ok((KeyEncoder::new(keys, tys)?, as_of))
}

/// The stream side's key encoder of a lookup join (routes rows to the worker holding the key).
pub fn lookup_keys(state: &SessionState, stage: &Stage, table: &SourceDef) -> Result<KeyEncoder> {
    Ok(lookup_parts(state, stage, table)?.0)
}

/// Builds a lookup join against `table`.
pub fn build_lookup(state: &SessionState, stage: &Stage, table: &SourceDef) -> Result<LookupJoin> {
    let OperatorSpec::LookupJoin {
        kind,
        table_filters,
        table_columns,
        residual,
        output_schema,
        ..
    } = &stage.op
    else {
        return Err(Error::Plan("not a lookup join".into()));
    };
    let (keys, as_of) = lookup_parts(state, stage, table)?;
    let residual = condition(state, residual.as_ref(), output_schema)?;
    // A window result is read as of its last instant (`window_end` is exclusive).
    let as_of_offset = if stage.input_schema.field(as_of).name() == WINDOW_END {
        -1
    } else {
        0
    };
    Ok(LookupJoin {
        keys,
        as_of,
        as_of_offset,
        table_schema: Arc::new(table.schema.clone()),
        table_filters: exprs(state, table_filters, &table.schema)?,
        table_columns: table_columns.clone(),
        residual,
        kind: *kind,
        output_schema: Arc::new(output_schema.clone()),
    })
}

/// The key encoders of an interval join's sides (the right side's keys are cast to the left's
/// types).
pub fn interval_keys(state: &SessionState, stage: &Stage) -> Result<(KeyEncoder, KeyEncoder)> {
    let OperatorSpec::IntervalJoin {
        right,
        left_keys,
        right_keys,
        ..
    } = &stage.op
    else {
        return Err(Error::Plan("not an interval join".into()));
    };
    let l = exprs(state, left_keys, &stage.input_schema)?;
    let r = exprs(state, right_keys, &right.schema)?;
    let tys = types(&l, &stage.input_schema)?;
    Ok((KeyEncoder::new(l, tys.clone())?, KeyEncoder::new(r, tys)?))
}

/// Builds an interval join.
pub fn build_interval(state: &SessionState, stage: &Stage) -> Result<IntervalJoin> {
    let OperatorSpec::IntervalJoin {
        right,
        kind,
        left_time,
        right_time,
        lower_ms,
        upper_ms,
        residual,
        output_schema,
        ..
    } = &stage.op
    else {
        return Err(Error::Plan("not an interval join".into()));
    };
    let (lk, rk) = interval_keys(state, stage)?;
    let lt = stage
        .input_schema
        .index_of(left_time)
        .map_err(|_| Error::Plan(format!("time column '{left_time}' missing")))?;
    let rt = right
        .schema
        .index_of(right_time)
        .map_err(|_| Error::Plan(format!("time column '{right_time}' missing")))?;
    let residual = condition(state, residual.as_ref(), output_schema)?;
    let out: SchemaRef = Arc::new(output_schema.clone());
    Ok(IntervalJoin::new(
        lk,
        rk,
        (lt, rt),
        (*lower_ms, *upper_ms),
        residual,
        *kind,
        stage.input_schema.fields().len(),
        out,
    ))
}
