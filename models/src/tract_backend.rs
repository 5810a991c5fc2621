//! Models run by tract-onnx. skl2onnx leaves the batch dimension unset, so the input fact is
//! given explicitly: one optimized plan per power-of-two batch size (1, 2, 4, … 1024), built on
//! first use and cached. A batch is padded to its plan's size; batches over 1024 rows run in
//! chunks of 1024.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tract_onnx::prelude::*;

use crate::tensor::{Data, Tensor as Own};
use crate::{Error, Outputs, Predictor, Result};

const MAX_PLAN: usize = 1024;

type Plan = Arc<dyn Fn(Tensor) -> TractResult<TVec<TValue>> + Send + Sync>;

/// A model run by tract.
pub struct TractModel {
    model: InferenceModel,
    features: usize,
    names: Vec<String>,
    plans: Mutex<HashMap<usize, Plan>>,
}

fn tract_err(e: impl std::fmt::Display) -> Error {
    Error::Tract(e.to_string())
}

impl TractModel {
    /// Loads the model and builds the plan for batches of one (so errors show at load time).
    pub fn load(path: &str, bytes: &[u8], features: usize, names: Vec<String>) -> Result<Self> {
        let mut reader = std::io::Cursor::new(bytes);
        let model = tract_onnx::onnx()
            .model_for_read(&mut reader)
            .map_err(|e| Error::Unsupported {
                path: path.to_string(),
                message: format!("tract cannot load it: {e}"),
            })?;
        let m = TractModel {
            model,
            features,
            names,
            plans: Mutex::new(HashMap::new()),
        };
        m.plan(1).map_err(|e| Error::Unsupported {
            path: path.to_string(),
            message: format!("tract cannot plan it: {e}"),
        })?;
        Ok(m)
    }

    fn plan(&self, batch: usize) -> Result<Plan> {
        if let Some(p) = self.plans.lock().map_err(tract_err)?.get(&batch) {
            return Ok(p.clone());
        }
        let runnable = self
            .model
            .clone()
            .with_input_fact(0, f32::fact([batch, self.features]).into())
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(tract_err)?;
        let plan: Plan = Arc::new(move |t: Tensor| runnable.run(tvec!(t.into())));
        self.plans
            .lock()
            .map_err(tract_err)?
            .insert(batch, plan.clone());
        Ok(plan)
    }

    fn run_chunk(&self, x: &[f32], rows: usize, out: &mut Vec<(String, Own)>) -> Result<()> {
        let batch = rows.next_power_of_two().min(MAX_PLAN);
        let mut data = x.to_vec();
        data.resize(batch * self.features, 0.0);
        let input = tract_ndarray::Array2::from_shape_vec((batch, self.features), data)
            .map_err(tract_err)?;
        let result = (self.plan(batch)?)(input.into_tensor()).map_err(tract_err)?;
        for (i, v) in result.iter().enumerate() {
            let shape = v.shape().to_vec();
            let width: usize = shape.iter().skip(1).product();
            let take = rows * width.max(1);
            let data = match v.datum_type() {
                DatumType::F32 => Data::F32(
                    v.to_plain_array_view::<f32>()
                        .map_err(tract_err)?
                        .iter()
                        .take(take)
                        .copied()
                        .collect(),
                ),
                DatumType::F64 => Data::F32(
                    v.to_plain_array_view::<f64>()
                        .map_err(tract_err)?
                        .iter()
                        .take(take)
                        .map(|x| *x as f32)
                        .collect(),
                ),
                DatumType::I64 => Data::I64(
                    v.to_plain_array_view::<i64>()
                        .map_err(tract_err)?
                        .iter()
                        .take(take)
                        .copied()
                        .collect(),
                ),
                other => return Err(Error::Eval(format!("output of type {other:?}"))),
            };
            let mut shape = shape;
            if let Some(s) = shape.first_mut() {
                *s = rows;
            }
            let name = self
                .names
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("output_{i}"));
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some((_, t)) => {
                    t.shape[0] += rows;
                    match (&mut t.data, data) {
                        (Data::F32(a), Data::F32(b)) => a.extend(b),
                        (Data::I64(a), Data::I64(b)) => a.extend(b),
                        _ => return Err(Error::Eval("output types changed between chunks".into())),
                    }
                }
                None => out.push((name, Own { shape, data })),
            }
        }
        Ok(())
    }
}

impl Predictor for TractModel {
    fn features(&self) -> usize {
        self.features
    }

    fn predict(&self, x: &[f32], rows: usize) -> Result<Outputs> {
        let mut out = Vec::new();
        let mut start = 0;
        while start < rows {
            let n = (rows - start).min(MAX_PLAN);
            self.run_chunk(
                &x[start * self.features..(start + n) * self.features],
                n,
                &mut out,
            )?;
            start += n;
        }
        Ok(out)
    }

    fn evaluator(&self) -> &'static str {
        "tract"
    }
}
