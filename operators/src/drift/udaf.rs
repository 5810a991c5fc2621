//! `psi(x, 'baseline')`, `ks_stat`, `ks_pvalue`, `wasserstein`, `js_distance`: aggregates that
//! collect a window's (or group's) values and compare them with a named baseline when the
//! window closes. NULLs are skipped; an empty group gives NULL.
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, plan_err, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};

use super::{baseline, stats};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Stat {
    Psi,
    Ks,
    KsPvalue,
    Wasserstein,
    Js,
}

#[derive(Debug)]
struct Drift {
    stat: Stat,
    name: &'static str,
    signature: Signature,
    baselines: Arc<baseline::Baselines>,
}

impl PartialEq for Drift {
    fn eq(&self, o: &Self) -> bool {
        self.stat == o.stat && Arc::ptr_eq(&self.baselines, &o.baselines)
    }
}

impl Eq for Drift {}

impl std::hash::Hash for Drift {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.stat.hash(state);
        (Arc::as_ptr(&self.baselines) as usize).hash(state);
    }
}

/// The drift aggregates over the process's baselines.
pub fn functions() -> Vec<AggregateUDF> {
    functions_with(baseline::global().clone())
}

/// The drift aggregates over `baselines` (a job's own catalog).
pub fn functions_with(baselines: Arc<baseline::Baselines>) -> Vec<AggregateUDF> {
    [
        (Stat::Psi, "psi"),
        (Stat::Ks, "ks_stat"),
        (Stat::KsPvalue, "ks_pvalue"),
        (Stat::Wasserstein, "wasserstein"),
        (Stat::Js, "js_distance"),
    ]
    .into_iter()
    .map(|(stat, name)| {
        AggregateUDF::new_from_impl(Drift {
            stat,
            name,
            signature: Signature::any(2, Volatility::Immutable),
            baselines: baselines.clone(),
        })
    })
    .collect()
}

impl AggregateUDFImpl for Drift {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let name = crate::expr::literal(args.exprs, 1).and_then(|v| match v {
            ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => Some(s.clone()),
            _ => None,
        });
        let Some(name) = name else {
            return plan_err!(
                "{}(x, 'baseline'): the baseline is a quoted name",
                self.name
            );
        };
        let Some(b) = self.baselines.get(&name) else {
            return plan_err!("no baseline '{name}': declare it with CREATE BASELINE {name} FROM 'file.csv' COLUMN x");
        };
        Ok(Box::new(Collect {
            stat: self.stat,
            baseline: b,
            values: Vec::new(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let item = Arc::new(Field::new("item", DataType::Float64, true));
        Ok(vec![Arc::new(Field::new(
            format!("{}_values", args.name),
            DataType::List(item),
            true,
        ))])
    }
}

#[derive(Debug)]
struct Collect {
    stat: Stat,
    baseline: Arc<baseline::Baseline>,
    values: Vec<f64>,
}

impl Accumulator for Collect {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(v) = values.first() else {
            return exec_err!("drift aggregate without a value");
        };
        let v = cast(v, &DataType::Float64)?;
        let v = v.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
        self.values
            .extend(v.iter().flatten().filter(|x| !x.is_nan()));
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        if let Some(list) = states.first() {
            let list = list.as_list::<i32>();
            for i in 0..list.len() {
                if list.is_valid(i) {
                    let inner = list.value(i);
                    if let Some(f) = inner.as_any().downcast_ref::<Float64Array>() {
                        self.values.extend(f.iter().flatten());
                    }
                }
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let items: Vec<ScalarValue> = self
            .values
            .iter()
            .map(|v| ScalarValue::Float64(Some(*v)))
            .collect();
        Ok(vec![ScalarValue::List(ScalarValue::new_list_nullable(
            &items,
            &DataType::Float64,
        ))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.values.is_empty() {
            return Ok(ScalarValue::Float64(None));
        }
        let b = &self.baseline;
        let mut sorted = self.values.clone();
        sorted.sort_by(f64::total_cmp);
        let v = match self.stat {
            Stat::Psi => stats::psi(&b.fractions, &stats::fractions(&b.edges, &sorted)),
            Stat::Js => stats::js_distance(&b.fractions, &stats::fractions(&b.edges, &sorted)),
            Stat::Ks => stats::ks_stat(&sorted, &b.sorted),
            Stat::KsPvalue => stats::ks_pvalue(
                stats::ks_stat(&sorted, &b.sorted),
                sorted.len(),
                b.sorted.len(),
            ),
            Stat::Wasserstein => stats::wasserstein(&sorted, &b.sorted),
        };
        Ok(ScalarValue::Float64(Some(v)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.capacity() * 8
    }
}
