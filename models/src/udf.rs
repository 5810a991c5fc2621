//! The SQL functions over models, as DataFusion scalar UDFs (volatile: a model version can
//! change while a pipeline runs, so the planner never folds them):
//! - `predict('model', x1, …, xn)` → DOUBLE: the current version's score (regression value, or
//!   the positive-class probability of a classifier; see [`crate::score`]);
//! - `predict_label('model', x1, …)` → BIGINT: the classifier's label;
//! - `predict_version('model', 'v2', x1, …)` → DOUBLE: a given version (shadow/challenger runs);
//! - `model_version('model')` → TEXT: the version `predict` used for the same rows;
//! - `ab_bucket(key, share)` → BOOLEAN: true for a deterministic `share` of keys (FNV-1a hash
//!   of the key's text, bucket = hash mod 10 000 < share × 10 000), for routing keys to a
//!   challenger.
//!
//! Features are cast to FLOAT; a row with a NULL feature gets a NULL prediction.
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float32Array, Float64Array, Int64Array, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, DataFusionError, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::registry::{registry, Registry, Version};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Predict,
    Label,
    Versioned,
    ModelVersion,
    AbBucket,
}

/// One model function, reading its models from one registry (a job's catalog).
struct ModelFn {
    kind: Kind,
    name: &'static str,
    signature: Signature,
    models: Arc<Registry>,
}

impl std::fmt::Debug for ModelFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelFn").field("name", &self.name).finish()
    }
}

impl PartialEq for ModelFn {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && Arc::ptr_eq(&self.models, &other.models)
    }
}

impl Eq for ModelFn {}

impl std::hash::Hash for ModelFn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        (Arc::as_ptr(&self.models) as usize).hash(state);
    }
}

/// Every model function over the process's registry (the one `CREATE MODEL` checks with).
pub fn functions() -> Vec<ScalarUDF> {
    functions_with(registry().clone())
}

/// Every model function over `models`: a job's own catalog, so two jobs may each have a model
/// of one name at different versions.
pub fn functions_with(models: Arc<Registry>) -> Vec<ScalarUDF> {
    [
        (Kind::Predict, "predict"),
        (Kind::Label, "predict_label"),
        (Kind::Versioned, "predict_version"),
        (Kind::ModelVersion, "model_version"),
        (Kind::AbBucket, "ab_bucket"),
    ]
    .into_iter()
    .map(|(kind, name)| {
        ScalarUDF::new_from_impl(ModelFn {
            kind,
            name,
            signature: Signature::variadic_any(Volatility::Volatile),
            models: models.clone(),
        })
    })
    .collect()
}

fn text_arg(v: &ColumnarValue, what: &str) -> datafusion::error::Result<String> {
    match v {
        ColumnarValue::Scalar(ScalarValue::Utf8(Some(s)))
        | ColumnarValue::Scalar(ScalarValue::LargeUtf8(Some(s)))
        | ColumnarValue::Scalar(ScalarValue::Utf8View(Some(s))) => Ok(s.to_ascii_lowercase()),
        _ => exec_err!("{what} must be a text literal"),
    }
}

fn ext(e: crate::Error) -> DataFusionError {
    DataFusionError::Execution(e.to_string())
}

/// Runs `v` on the feature columns; returns scores or labels per row (NULL where a feature is).
fn run(
    v: &Version,
    features: &[ColumnarValue],
    rows: usize,
    labels: bool,
) -> datafusion::error::Result<ArrayRef> {
    let width = v.model.features();
    if features.len() != width {
        return exec_err!(
            "model version '{}' takes {width} features, {} were given",
            v.version,
            features.len()
        );
    }
    let cols = features
        .iter()
        .map(|c| {
            let a = c.clone().into_array(rows)?;
            Ok(cast(&a, &DataType::Float32)?)
        })
        .collect::<datafusion::error::Result<Vec<ArrayRef>>>()?;
    let cols: Vec<&Float32Array> = cols
        .iter()
        .map(|c| c.as_any().downcast_ref::<Float32Array>())
        .collect::<Option<_>>()
        .ok_or_else(|| DataFusionError::Execution("features must be numeric".into()))?;
    let mut x = Vec::with_capacity(rows * width);
    let mut valid = Vec::with_capacity(rows);
    for r in 0..rows {
        valid.push(cols.iter().all(|c| c.is_valid(r)));
        for c in &cols {
            x.push(if c.is_valid(r) { c.value(r) } else { 0.0 });
        }
    }
    let started = std::time::Instant::now();
    let out = v.model.predict(&x, rows).map_err(ext)?;
    v.times.record(rows, started.elapsed());
    Ok(if labels {
        let l = crate::label(&out, rows).map_err(ext)?;
        Arc::new(Int64Array::from_iter(
            (0..rows).map(|r| valid[r].then_some(l[r])),
        ))
    } else {
        let s = crate::score(&out, rows).map_err(ext)?;
        Arc::new(Float64Array::from_iter(
            (0..rows).map(|r| valid[r].then_some(s[r] as f64)),
        ))
    })
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl ScalarUDFImpl for ModelFn {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(match self.kind {
            Kind::Predict | Kind::Versioned => DataType::Float64,
            Kind::Label => DataType::Int64,
            Kind::ModelVersion => DataType::Utf8,
            Kind::AbBucket => DataType::Boolean,
        })
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let rows = args.number_rows;
        let a = &args.args;
        match self.kind {
            Kind::Predict | Kind::Label => {
                let Some(first) = a.first() else {
                    return exec_err!("{}('model', feature, …) needs a model name", self.name);
                };
                let v = self
                    .models
                    .current(&text_arg(first, "the model name")?)
                    .map_err(ext)?;
                Ok(ColumnarValue::Array(run(
                    &v,
                    &a[1..],
                    rows,
                    self.kind == Kind::Label,
                )?))
            }
            Kind::Versioned => {
                if a.len() < 2 {
                    return exec_err!("predict_version('model', 'version', feature, …)");
                }
                let name = text_arg(&a[0], "the model name")?;
                let version = match &a[1] {
                    ColumnarValue::Scalar(ScalarValue::Utf8(Some(s))) => s.clone(),
                    _ => return exec_err!("the version must be a text literal"),
                };
                let v = self.models.version(&name, &version).map_err(ext)?;
                Ok(ColumnarValue::Array(run(&v, &a[2..], rows, false)?))
            }
            Kind::ModelVersion => {
                let Some(first) = a.first() else {
                    return exec_err!("model_version('model')");
                };
                let v = self
                    .models
                    .current(&text_arg(first, "the model name")?)
                    .map_err(ext)?;
                Ok(ColumnarValue::Array(Arc::new(StringArray::from(
                    vec![v.version.as_str(); rows],
                ))))
            }
            Kind::AbBucket => {
                if a.len() != 2 {
                    return exec_err!("ab_bucket(key, share)");
                }
                let share = match &a[1] {
                    ColumnarValue::Scalar(s) => match s.cast_to(&DataType::Float64)? {
                        ScalarValue::Float64(Some(f)) => f,
                        _ => return exec_err!("ab_bucket: the share must be a number"),
                    },
                    _ => return exec_err!("ab_bucket: the share must be a literal"),
                };
                let keys = cast(&a[0].clone().into_array(rows)?, &DataType::Utf8)?;
                let keys = keys
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or_else(|| DataFusionError::Execution("ab_bucket: key".into()))?;
                let limit = (share * 10_000.0).round() as u64;
                Ok(ColumnarValue::Array(Arc::new(BooleanArray::from_iter(
                    (0..rows).map(|r| {
                        keys.is_valid(r)
                            .then(|| fnv(keys.value(r)) % 10_000 < limit)
                    }),
                ))))
            }
        }
    }
}
