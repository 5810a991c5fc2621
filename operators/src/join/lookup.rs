//! Lookup join, the pure part: given stream rows and, for each, the table row valid at its event
//! time (found by the engine in the table's differential arrangement), applies the pipeline's
//! filters on the table side and the residual join condition, and builds the joined batch
//! (left columns, then the kept table columns; NULLs for unmatched rows of a LEFT JOIN).
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, UInt32Array};
use datafusion::arrow::compute::{filter_record_batch, take};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::physical_expr::PhysicalExpr;

use super::{mask_of, JoinKind, KeyEncoder};
use crate::Result;

/// A lookup join of a stream with a table.
pub struct LookupJoin {
    /// Encodes the stream rows' keys as the table's primary key.
    pub keys: KeyEncoder,
    /// Index of the stream column giving the as-of event time.
    pub as_of: usize,
    /// Added to that time (-1 for `window_end`, which is exclusive).
    pub as_of_offset: i64,
    /// The table's schema (rows in the arrangement are encoded with it).
    pub table_schema: SchemaRef,
    /// Conditions on the table row alone (from the query's `WHERE`/`ON`).
    pub table_filters: Vec<Arc<dyn PhysicalExpr>>,
    /// Table columns kept, in output order.
    pub table_columns: Vec<usize>,
    /// Condition on the joined row.
    pub residual: Option<Arc<dyn PhysicalExpr>>,
    /// Inner or left.
    pub kind: JoinKind,
    /// Left columns then kept table columns.
    pub output_schema: SchemaRef,
}

impl LookupJoin {
    /// Encoder of table rows (the arrangement's values).
    pub fn table_codec(&self) -> Result<RowConverter> {
        Ok(RowConverter::new(
            self.table_schema
                .fields()
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect(),
        )?)
    }

    /// Joins rows `rows` of `left` with `found[i]`, the encoded table row found for `rows[i]`.
    pub fn join(
        &self,
        codec: &RowConverter,
        left: &RecordBatch,
        rows: &[u32],
        found: &[Option<Vec<u8>>],
    ) -> Result<Option<RecordBatch>> {
        if rows.is_empty() {
            return Ok(None);
        }
        let parser = codec.parser();
        let hits: Vec<_> = found.iter().flatten().map(|r| parser.parse(r)).collect();
        let table = RecordBatch::try_new(self.table_schema.clone(), codec.convert_rows(hits)?)?;
        let mut keep = vec![true; table.num_rows()];
        for f in &self.table_filters {
            for (k, m) in keep.iter_mut().zip(mask_of(f, &table)?) {
                *k &= m;
            }
        }
        let mut next = 0u32;
        let mut right: Vec<Option<u32>> = found
            .iter()
            .map(|f| {
                f.as_ref().and_then(|_| {
                    let j = next;
                    next += 1;
                    keep[j as usize].then_some(j)
                })
            })
            .collect();
        let left_rows = take_batch(left, &UInt32Array::from(rows.to_vec()))?;
        let mut joined = self.assemble(&left_rows, &table, &right)?;
        if let Some(r) = &self.residual {
            let pass = mask_of(r, &joined)?;
            if pass.iter().zip(&right).any(|(p, r)| r.is_some() && !p) {
                for (r, p) in right.iter_mut().zip(pass) {
                    if !p {
                        *r = None;
                    }
                }
                joined = self.assemble(&left_rows, &table, &right)?;
            }
        }
        if self.kind == JoinKind::Inner {
            let mask = right.iter().map(|r| Some(r.is_some())).collect();
            joined = filter_record_batch(&joined, &mask)?;
        }
        Ok((joined.num_rows() > 0).then_some(joined))
    }

    fn assemble(
        &self,
        left: &RecordBatch,
        table: &RecordBatch,
        right: &[Option<u32>],
    ) -> Result<RecordBatch> {
        let idx = UInt32Array::from(right.to_vec());
        let mut cols: Vec<ArrayRef> = left.columns().to_vec();
        for c in &self.table_columns {
            cols.push(take(table.column(*c).as_ref(), &idx, None)?);
        }
        Ok(RecordBatch::try_new(self.output_schema.clone(), cols)?)
    }
}

fn take_batch(b: &RecordBatch, idx: &UInt32Array) -> Result<RecordBatch> {
    Ok(datafusion::arrow::compute::take_record_batch(b, idx)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_expr::expressions::Column;

    fn table() -> (SchemaRef, RecordBatch) {
        let s = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("limit", DataType::Float64, true),
        ]));
        let b = RecordBatch::try_new(
            s.clone(),
            vec![
                Arc::new(StringArray::from(vec!["a", "b"])),
                Arc::new(Float64Array::from(vec![1.0, 2.0])),
            ],
        )
        .unwrap();
        (s, b)
    }

    #[test]
    fn left_join_pads_unmatched() {
        let (ts, tb) = table();
        let ls = Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true)]));
        let left = RecordBatch::try_new(
            ls.clone(),
            vec![Arc::new(StringArray::from(vec!["b", "x", "a"]))],
        )
        .unwrap();
        let out = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("limit", DataType::Float64, true),
        ]));
        let key: Arc<dyn PhysicalExpr> = Arc::new(Column::new("k", 0));
        let mut j = LookupJoin {
            keys: KeyEncoder::new(vec![key], vec![DataType::Utf8]).unwrap(),
            as_of: 0,
            as_of_offset: 0,
            table_schema: ts,
            table_filters: vec![],
            table_columns: vec![1],
            residual: None,
            kind: JoinKind::Left,
            output_schema: out,
        };
        let codec = j.table_codec().unwrap();
        let enc = codec.convert_columns(tb.columns()).unwrap();
        let found = vec![
            Some(enc.row(1).as_ref().to_vec()),
            None,
            Some(enc.row(0).as_ref().to_vec()),
        ];
        let b = j.join(&codec, &left, &[0, 1, 2], &found).unwrap().unwrap();
        let lim = b.column(1).as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!(
            lim.iter().collect::<Vec<_>>(),
            vec![Some(2.0), None, Some(1.0)]
        );
        j.kind = JoinKind::Inner;
        let b = j.join(&codec, &left, &[0, 1, 2], &found).unwrap().unwrap();
        assert_eq!(b.num_rows(), 2);
    }
}
