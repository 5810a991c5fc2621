//! `auc(score, label)`: the area under the ROC curve of scores against 0/1 labels over a window
//! or group — the Mann–Whitney statistic, with tied scores given their average rank (as
//! scikit-learn's `roc_auc_score`). Rows with a NULL score or label are skipped; a group
//! without both classes gives NULL.
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
struct Auc {
    signature: Signature,
}

/// The `auc` aggregate.
pub fn function() -> AggregateUDF {
    AggregateUDF::new_from_impl(Auc {
        signature: Signature::any(2, Volatility::Immutable),
    })
}

/// AUC of (score, positive) pairs; None without both classes.
pub fn auc(mut pairs: Vec<(f64, bool)>) -> Option<f64> {
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut pos) = (0.0, 0usize);
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        while j + 1 < pairs.len() && pairs[j + 1].0 == pairs[i].0 {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for p in &pairs[i..=j] {
            if p.1 {
                rank_sum += avg;
                pos += 1;
            }
        }
        i = j + 1;
    }
    let neg = pairs.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    Some((rank_sum - (pos * (pos + 1)) as f64 / 2.0) / (pos * neg) as f64)
}

impl AggregateUDFImpl for Auc {
    fn name(&self) -> &str {
        "auc"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Pairs(Vec::new())))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let item = Arc::new(Field::new("item", DataType::Float64, true));
        Ok(vec![
            Arc::new(Field::new(
                format!("{}_scores", args.name),
                DataType::List(item.clone()),
                true,
            )),
            Arc::new(Field::new(
                format!("{}_labels", args.name),
                DataType::List(item),
                true,
            )),
        ])
    }
}

#[derive(Debug)]
struct Pairs(Vec<(f64, bool)>);

fn floats(a: &ArrayRef) -> Result<ArrayRef> {
    Ok(cast(a, &DataType::Float64)?)
}

impl Accumulator for Pairs {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (s, l) = (floats(&values[0])?, floats(&values[1])?);
        let (s, l) = (
            s.as_primitive::<Float64Type>(),
            l.as_primitive::<Float64Type>(),
        );
        for i in 0..s.len() {
            if s.is_valid(i) && l.is_valid(i) {
                self.0.push((s.value(i), l.value(i) != 0.0));
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (s, l) = (states[0].as_list::<i32>(), states[1].as_list::<i32>());
        for i in 0..s.len() {
            if s.is_valid(i) && l.is_valid(i) {
                let (sv, lv) = (s.value(i), l.value(i));
                let (sv, lv) = (
                    sv.as_primitive::<Float64Type>(),
                    lv.as_primitive::<Float64Type>(),
                );
                for k in 0..sv.len() {
                    self.0.push((sv.value(k), lv.value(k) != 0.0));
                }
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let list = |f: &dyn Fn(&(f64, bool)) -> f64| {
            let v: Vec<ScalarValue> = self
                .0
                .iter()
                .map(|p| ScalarValue::Float64(Some(f(p))))
                .collect();
            ScalarValue::List(ScalarValue::new_list_nullable(&v, &DataType::Float64))
        };
        Ok(vec![list(&|p| p.0), list(&|p| p.1 as i32 as f64)])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(auc(self.0.clone())))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.0.capacity() * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_get_average_ranks() {
        // sklearn: roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
        assert_eq!(
            auc(vec![(0.1, false), (0.4, false), (0.35, true), (0.8, true)]),
            Some(0.75)
        );
        // roc_auc_score([0, 1, 1], [0.5, 0.5, 0.9]) == 0.75
        assert_eq!(
            auc(vec![(0.5, false), (0.5, true), (0.9, true)]),
            Some(0.75)
        );
        assert_eq!(auc(vec![(0.5, true)]), None);
    }
}
