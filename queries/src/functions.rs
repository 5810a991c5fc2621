//! Function names the SQL planner must know that only weir evaluates: the feature functions
//! `delta(x)`, `ewma(x, alpha)`, `zscore(x)` and the change detectors `page_hinkley(x)` and
//! `ddm(error)`, which are meaningful only in
//! `OVER (PARTITION BY … ORDER BY …)` (the feature operator computes them). Used as plain
//! aggregates they fail with an error saying so.
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::error::Result;
use datafusion::logical_expr::function::AccumulatorArgs;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
struct OverOnly {
    name: &'static str,
    signature: Signature,
}

impl AggregateUDFImpl for OverOnly {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        datafusion::common::plan_err!(
            "{}() is a per-key feature: use it with OVER (PARTITION BY key ORDER BY ts …)",
            self.name
        )
    }

    fn state_fields(
        &self,
        _args: datafusion::logical_expr::function::StateFieldsArgs,
    ) -> Result<Vec<FieldRef>> {
        Ok(Vec::new())
    }
}

/// `delta`, `ewma`, `zscore`, `page_hinkley`, `ddm`.
pub fn feature_functions() -> Vec<AggregateUDF> {
    [
        ("delta", 1),
        ("ewma", 2),
        ("zscore", 1),
        ("page_hinkley", 1),
        ("adwin", 1),
        ("ddm", 1),
    ]
    .into_iter()
    .map(|(name, n)| {
        AggregateUDF::new_from_impl(OverOnly {
            name,
            signature: Signature::uniform(n, vec![DataType::Float64], Volatility::Immutable),
        })
    })
    .collect()
}
