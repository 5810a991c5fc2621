//! weir models: ONNX models as batch predictors, a registry of named, versioned models that a
//! running pipeline can switch between, and the SQL functions that call them (`predict`,
//! `predict_label`, `predict_version`, `model_version`, `ab_bucket`).
//!
//! Two evaluators, chosen per model when it loads:
//! - tract-onnx, for neural networks and the linear ONNX-ML operators (linear and logistic
//!   regression, MLPs). Input shapes are given to tract explicitly — skl2onnx leaves the batch
//!   dimension unset — with one optimized plan per power-of-two batch size up to 1024 (rows are
//!   padded up to it; larger batches run in chunks of 1024).
//! - weir's own (`interp`, `tree`), for graphs with tree ensembles (`TreeEnsembleRegressor`,
//!   which tract lacks, and `TreeEnsembleClassifier`, whose two-class case tract mislabels) and
//!   the element-wise operators around them (IsolationForest).
//!
//! A model is always run on a whole Arrow batch at once, never row by row.
pub mod error;
pub mod graph;
pub mod interp;
pub mod registry;
pub mod tensor;
pub mod times;
pub mod tract_backend;
pub mod tree;
pub mod udf;

use std::sync::Arc;

pub use error::{Error, Result};
pub use registry::{begin_batch, registry, Registry};
use tensor::{Data, Tensor};

/// A model's outputs for a batch: (output name, tensor with the batch as first dimension).
pub type Outputs = Vec<(String, Tensor)>;

/// A loaded model.
pub trait Predictor: Send + Sync {
    /// Number of input features.
    fn features(&self) -> usize;
    /// Runs the model on `rows` rows of `features()` values, row-major.
    fn predict(&self, x: &[f32], rows: usize) -> Result<Outputs>;
    /// Which evaluator runs it.
    fn evaluator(&self) -> &'static str;
}

/// weir's evaluator as a [`Predictor`].
struct Own {
    interp: interp::Interpreter,
    features: usize,
}

impl Predictor for Own {
    fn features(&self) -> usize {
        self.features
    }

    fn predict(&self, x: &[f32], rows: usize) -> Result<Outputs> {
        let t = Tensor::f32(vec![rows, self.features], x.to_vec());
        let outs = self.interp.run(t)?;
        Ok(self
            .interp
            .graph()
            .outputs
            .iter()
            .cloned()
            .zip(outs)
            .collect())
    }

    fn evaluator(&self) -> &'static str {
        "weir"
    }
}

/// Loads an ONNX model; `features` overrides the input width when the file leaves it unset.
pub fn load(path: &str, features: Option<usize>) -> Result<Arc<dyn Predictor>> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_string(),
        source,
    })?;
    let graph = graph::Graph::parse(path, &bytes)?;
    let width = features
        .or_else(|| graph.inputs.first().and_then(|i| i.1))
        .ok_or_else(|| Error::Unsupported {
            path: path.to_string(),
            message: "the input's feature count is not in the file: declare it with inputs = '<n>'"
                .into(),
        })?;
    if graph.inputs.len() != 1 {
        return Err(Error::Unsupported {
            path: path.to_string(),
            message: format!(
                "{} inputs; weir feeds models one float matrix",
                graph.inputs.len()
            ),
        });
    }
    let ops = graph.ops();
    let needs_own = ops
        .iter()
        .any(|o| o.starts_with("TreeEnsemble") || o == "LabelEncoder");
    if needs_own {
        if let Some(bad) = ops
            .iter()
            .find(|o| !interp::SUPPORTED.contains(&o.as_str()))
        {
            return Err(Error::Unsupported {
                path: path.to_string(),
                message: format!("operator {bad} next to a tree ensemble is not supported"),
            });
        }
        return Ok(Arc::new(Own {
            interp: interp::Interpreter::new(graph)?,
            features: width,
        }));
    }
    Ok(Arc::new(tract_backend::TractModel::load(
        path,
        &bytes,
        width,
        graph.outputs,
    )?))
}

/// The score a model gives each row: for a classifier (an output named `probabilities`, or any
/// float output with several columns) the probability of the last class — the positive class of
/// a binary classifier; otherwise the first column of the first float output.
pub fn score(outputs: &Outputs, rows: usize) -> Result<Vec<f32>> {
    let floats: Vec<&Tensor> = outputs
        .iter()
        .map(|(_, t)| t)
        .filter(|t| matches!(t.data, Data::F32(_)))
        .collect();
    let probs = outputs
        .iter()
        .find(|(n, t)| n == "probabilities" && matches!(t.data, Data::F32(_)))
        .map(|(_, t)| t)
        .or_else(|| {
            floats
                .iter()
                .find(|t| t.shape.len() == 2 && t.shape[1] > 1)
                .copied()
        });
    let (t, col) = match probs {
        Some(p) => (p, p.shape[1] - 1),
        None => (
            *floats
                .first()
                .ok_or_else(|| Error::Eval("the model has no float output".into()))?,
            0,
        ),
    };
    let width = if t.shape.len() >= 2 { t.shape[1] } else { 1 };
    let v = t.as_f32()?;
    (0..rows)
        .map(|r| {
            v.get(r * width + col)
                .copied()
                .ok_or_else(|| Error::Eval("the model gave fewer rows than it was given".into()))
        })
        .collect()
}

/// The label a model gives each row: its first integer output.
pub fn label(outputs: &Outputs, rows: usize) -> Result<Vec<i64>> {
    let t = outputs
        .iter()
        .map(|(_, t)| t)
        .find(|t| matches!(t.data, Data::I64(_)))
        .ok_or_else(|| Error::Eval("the model has no label output; use predict()".into()))?;
    let v = t.as_i64()?;
    if v.len() < rows {
        return Err(Error::Eval("the model gave fewer labels than rows".into()));
    }
    Ok(v[..rows].to_vec())
}
