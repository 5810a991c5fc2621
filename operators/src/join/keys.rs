//! Join keys as bytes: key expressions are evaluated, cast to the key types (a table's primary
//! key types, or the left side's key types for stream–stream joins) and encoded with Arrow's
//! row format, so equal keys give equal bytes on every worker and process.
use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::physical_expr::PhysicalExpr;

use crate::Result;

/// Encodes join keys of a batch.
pub struct KeyEncoder {
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    types: Vec<DataType>,
    codec: RowConverter,
}

impl KeyEncoder {
    /// Keys computed by `exprs`, cast to `types`.
    pub fn new(exprs: Vec<Arc<dyn PhysicalExpr>>, types: Vec<DataType>) -> Result<Self> {
        let codec = RowConverter::new(types.iter().map(|t| SortField::new(t.clone())).collect())?;
        Ok(KeyEncoder {
            exprs,
            types,
            codec,
        })
    }

    /// The key columns of `batch`, cast to the key types.
    pub fn columns(&self, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        let n = batch.num_rows();
        let mut out = Vec::with_capacity(self.exprs.len());
        for (e, t) in self.exprs.iter().zip(&self.types) {
            let a = e.evaluate(batch)?.into_array(n)?;
            out.push(if a.data_type() == t { a } else { cast(&a, t)? });
        }
        Ok(out)
    }

    /// The encoded keys of `batch`, and per row whether the key has no NULL (a NULL key
    /// matches nothing).
    pub fn encode(&self, batch: &RecordBatch) -> Result<(Rows, Vec<bool>)> {
        let cols = self.columns(batch)?;
        let valid = (0..batch.num_rows())
            .map(|i| cols.iter().all(|c| c.is_valid(i)))
            .collect();
        Ok((self.codec.convert_columns(&cols)?, valid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int32Array, Int64Array};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::physical_expr::expressions::Column;

    #[test]
    fn cast_keys_encode_equal() {
        let s32 = Arc::new(Schema::new(vec![Field::new("k", DataType::Int32, true)]));
        let s64 = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, true)]));
        let b32 = RecordBatch::try_new(s32, vec![Arc::new(Int32Array::from(vec![Some(7), None]))])
            .unwrap();
        let b64 = RecordBatch::try_new(s64, vec![Arc::new(Int64Array::from(vec![7]))]).unwrap();
        let col: Arc<dyn PhysicalExpr> = Arc::new(Column::new("k", 0));
        let e = KeyEncoder::new(vec![col], vec![DataType::Int64]).unwrap();
        let (a, va) = e.encode(&b32).unwrap();
        let (b, vb) = e.encode(&b64).unwrap();
        assert_eq!(a.row(0).as_ref(), b.row(0).as_ref());
        assert_eq!(va, vec![true, false]);
        assert_eq!(vb, vec![true]);
    }
}
