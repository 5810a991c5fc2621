//! `provenance_extend(provenance, 'name', value [, 'name', value]…)`: the provenance value with
//! more fields, `"name":value` each — how a window's bounds join its provenance after the
//! aggregate (they are the group's keys, the same for all its rows). A name `json:<name>` takes
//! a value that is JSON already (the provenance of the other stream of an interval join).
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::{json_values, quoted};

#[derive(Debug, PartialEq, Eq, Hash)]
struct ProvenanceExtend {
    signature: Signature,
}

/// The `provenance_extend` function.
pub fn function() -> ScalarUDF {
    ScalarUDF::new_from_impl(ProvenanceExtend {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

impl ScalarUDFImpl for ProvenanceExtend {
    fn name(&self) -> &str {
        "provenance_extend"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let base = cast(&args.args[0].to_array(n)?, &DataType::Utf8)?;
        let base = base.as_string::<i32>();
        let mut fields: Vec<(String, StringArray)> = Vec::new();
        for pair in args.args[1..].chunks(2) {
            let [ColumnarValue::Scalar(name), value] = pair else {
                continue;
            };
            let name = name.to_string();
            let value = value.to_array(n)?;
            let (name, values) = match name.strip_prefix("json:") {
                Some(raw) => (
                    raw.to_string(),
                    cast(&value, &DataType::Utf8)?.as_string::<i32>().clone(),
                ),
                None => (name, json_values(&value)?),
            };
            fields.push((quoted(&name), values));
        }
        let mut out = StringBuilder::with_capacity(n, base.value_data().len() + n * 64);
        let mut s = String::new();
        for i in 0..n {
            if !base.is_valid(i) {
                out.append_null();
                continue;
            }
            let v = base.value(i);
            s.clear();
            s.push_str(v.strip_suffix('}').unwrap_or(v));
            for (name, values) in &fields {
                if values.is_valid(i) {
                    s.push(',');
                    s.push_str(name);
                    s.push(':');
                    s.push_str(values.value(i));
                }
            }
            s.push('}');
            out.append_value(&s);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
