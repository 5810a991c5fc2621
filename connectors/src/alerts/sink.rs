//! The `alerts` sink's rows turned into observations: each row's key, whether it raises
//! (`raise`, a SQL condition over the row; every row when absent), whether the verification
//! condition holds (`verify`), its time, severity, title and model version, and — for a
//! raising row — the key's latest rows as evidence.
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Float64Array, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::DFSchema;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::SessionContext;
use serde_json::Value;

use super::model::Evidence;
use super::observe::Observation;
use super::store::Store;
use super::KindSpec;
use crate::{ConnectorMetrics, Error, Result, Sink};

/// A value read from a column, or given as a constant.
#[derive(Debug, Clone)]
pub(crate) enum Field {
    Column(usize),
    Const(String),
}

impl Field {
    /// `text` as a column of `schema` if it names one, else as a constant.
    pub(crate) fn of(text: &str, schema: &SchemaRef) -> Field {
        match schema.index_of(text.trim()) {
            Ok(i) => Field::Column(i),
            Err(_) => Field::Const(text.to_string()),
        }
    }
}

/// A compiled condition over the sink's rows.
pub(crate) type Condition = Arc<dyn PhysicalExpr>;

/// Compiles the SQL condition `sql` (option `option`) over `schema`.
pub(crate) fn condition(sql: &str, schema: &SchemaRef, option: &str) -> Result<Condition> {
    let bad = |e: datafusion::error::DataFusionError| Error::Option {
        option: option.into(),
        message: format!("'{sql}': {e}"),
    };
    crate::sql_limits::check_expr_text(sql).map_err(|r| Error::Option {
        option: option.into(),
        message: format!("'{option}' at {r}"),
    })?;
    let ctx = SessionContext::new();
    let df = DFSchema::try_from(schema.as_ref().clone()).map_err(bad)?;
    let expr = ctx.parse_sql_expr(sql, &df).map_err(bad)?;
    ctx.create_physical_expr(expr, &df).map_err(bad)
}

/// Evaluates `c` on `batch`: one answer per row (NULL is false).
fn holds(c: &Condition, batch: &RecordBatch) -> Result<Vec<bool>> {
    let v = c
        .evaluate(batch)
        .and_then(|v| v.into_array(batch.num_rows()))
        .map_err(|e| Error::Format(format!("alerts condition: {e}")))?;
    let b = v
        .as_any()
        .downcast_ref::<BooleanArray>()
        .ok_or_else(|| Error::Format("an alerts condition must be true or false".into()))?;
    Ok((0..b.len()).map(|i| b.is_valid(i) && b.value(i)).collect())
}

/// The `alerts` sink.
pub struct AlertSink {
    pub(crate) spec: KindSpec,
    pub(crate) schema: SchemaRef,
    pub(crate) key: Vec<usize>,
    pub(crate) severity: Field,
    pub(crate) title: Option<Field>,
    pub(crate) site: Option<usize>,
    pub(crate) raise: Option<Condition>,
    pub(crate) verify: Option<Condition>,
    pub(crate) time: Option<usize>,
    pub(crate) model_version: Option<usize>,
    pub(crate) evidence_rows: usize,
    pub(crate) recent: HashMap<String, VecDeque<(i64, Vec<Value>)>>,
    pub(crate) store: Arc<Store>,
    pub(crate) metrics: Arc<ConnectorMetrics>,
}

/// Each column of a batch, readable row by row as JSON values.
struct Columns {
    numbers: Vec<Option<Float64Array>>,
    integers: Vec<Option<Int64Array>>,
    text: Vec<ArrayRef>,
}

impl Columns {
    fn of(batch: &RecordBatch) -> Columns {
        let numbers = batch
            .columns()
            .iter()
            .map(|c| match c.data_type().is_numeric() {
                true => cast(c, &DataType::Float64)
                    .ok()
                    .and_then(|a| a.as_any().downcast_ref::<Float64Array>().cloned()),
                false => None,
            })
            .collect();
        let integers = batch
            .columns()
            .iter()
            .map(|c| match c.data_type().is_integer() {
                true => cast(c, &DataType::Int64)
                    .ok()
                    .and_then(|a| a.as_any().downcast_ref::<Int64Array>().cloned()),
                false => None,
            })
            .collect();
        Columns {
            numbers,
            integers,
            text: batch.columns().to_vec(),
        }
    }

    fn value(&self, col: usize, row: usize) -> Value {
        if let Some(n) = &self.integers[col] {
            return match n.is_valid(row) {
                true => Value::from(n.value(row)),
                false => Value::Null,
            };
        }
        if let Some(n) = &self.numbers[col] {
            return match n.is_valid(row) {
                true => {
                    serde_json::Number::from_f64(n.value(row)).map_or(Value::Null, Value::Number)
                }
                false => Value::Null,
            };
        }
        let a = &self.text[col];
        if a.is_null(row) {
            return Value::Null;
        }
        let opts = FormatOptions::default();
        ArrayFormatter::try_new(a.as_ref(), &opts)
            .map(|f| Value::String(f.value(row).to_string()))
            .unwrap_or(Value::Null)
    }

    fn text(&self, col: usize, row: usize) -> String {
        match self.value(col, row) {
            Value::String(s) => s,
            Value::Null => String::new(),
            v => v.to_string(),
        }
    }
}

/// Each row's time in ms: the `time` column's (TIMESTAMP or BIGINT ms), else the wall clock
/// (also where the column is NULL).
fn times(batch: &RecordBatch, time: Option<usize>) -> Result<Vec<i64>> {
    let now = super::now_ms() as i64;
    let all = crate::kpi::row_times(batch, time, "alerts")?;
    Ok(all.into_iter().map(|t| t.unwrap_or(now)).collect())
}

impl AlertSink {
    fn observations(&mut self, batch: &RecordBatch) -> Result<Vec<Observation>> {
        let n = batch.num_rows();
        let raise = match &self.raise {
            Some(c) => holds(c, batch)?,
            None => vec![true; n],
        };
        let verify = match &self.verify {
            Some(c) => Some(holds(c, batch)?),
            None => None,
        };
        let times = times(batch, self.time)?;
        let cols = Columns::of(batch);
        let names: Vec<String> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let mut out = Vec::with_capacity(n);
        for r in 0..n {
            let key: Vec<String> = self.key.iter().map(|&c| cols.text(c, r)).collect();
            let key = key.join("/");
            let row: Vec<Value> = (0..names.len()).map(|c| cols.value(c, r)).collect();
            let recent = self.recent.entry(key.clone()).or_default();
            recent.push_back((times[r], row));
            while recent.len() > self.evidence_rows {
                recent.pop_front();
            }
            let text = |f: &Field| match f {
                Field::Column(c) => cols.text(*c, r),
                Field::Const(s) => s.clone(),
            };
            out.push(Observation {
                raise: raise[r],
                verify: verify.as_ref().map(|v| v[r]),
                time_ms: times[r],
                severity: text(&self.severity).to_ascii_lowercase(),
                title: match &self.title {
                    Some(f) => text(f),
                    None => format!("{} on {key}", self.spec.kind),
                },
                model_version: self.model_version.map(|c| cols.text(c, r)),
                site: self.site.map(|c| cols.text(c, r)).unwrap_or_default(),
                evidence: raise[r].then(|| Evidence {
                    columns: names.clone(),
                    rows: recent.iter().map(|(_, row)| row.clone()).collect(),
                    times: recent.iter().map(|(t, _)| *t).collect(),
                    time_column: self.time.map(|c| names[c].clone()),
                }),
                key,
            });
        }
        Ok(out)
    }
}

impl Sink for AlertSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        ConnectorMetrics::add(&self.metrics.messages, batch.num_rows() as u64);
        let obs = self.observations(batch)?;
        self.store.observe(&self.spec, obs)
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}
