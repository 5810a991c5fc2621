//! `provenance_row(position, 'source', 'file' | 'kafka', 'topic' [, 'name', value]…)`: the provenance of a row
//! that is its own input (a pipeline without an aggregate), in the same JSON as
//! `provenance_of`.
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::{json_values, Origin};

#[derive(Debug, PartialEq, Eq, Hash)]
struct ProvenanceRow {
    signature: Signature,
}

/// The `provenance_row` function.
pub fn function() -> ScalarUDF {
    ScalarUDF::new_from_impl(ProvenanceRow {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

impl ScalarUDFImpl for ProvenanceRow {
    fn name(&self) -> &str {
        "provenance_row"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let origin = Origin::from_literals(args.args.len(), |i| match args.args.get(i) {
            Some(ColumnarValue::Scalar(v)) => Some(v.clone()),
            _ => None,
        });
        let positions = args.args[0].to_array(args.number_rows)?;
        let positions = cast(&positions, &DataType::Int64)?;
        let positions = positions.as_primitive::<Int64Type>();
        let extras = args
            .args
            .iter()
            .skip(5)
            .step_by(2)
            .map(|a| json_values(&a.to_array(args.number_rows)?))
            .collect::<Result<Vec<_>>>()?;
        let mut out = StringBuilder::new();
        for i in 0..positions.len() {
            if positions.is_valid(i) {
                let values: Vec<Vec<String>> = extras
                    .iter()
                    .map(|e| {
                        e.is_valid(i)
                            .then(|| e.value(i).to_string())
                            .into_iter()
                            .collect()
                    })
                    .collect();
                out.append_value(origin.render(vec![positions.value(i)], &values));
            } else {
                out.append_null();
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
