//! A table's changes as a subscriber sees them (Materialize's `SUBSCRIBE` form): rows with a
//! diff, `+1` for a row that came in and `-1` for one that went (replaced under its key,
//! pushed out by `max_rows`, or older than `retain`). A replaced row's `-1` comes before its
//! successor's `+1`, in the same change.
use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::UInt32Array;
use datafusion::arrow::compute::{concat_batches, take_record_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

use crate::Result;

/// Rows that went and came in one write, in order.
#[derive(Debug, Clone)]
pub struct Change {
    /// The rows, in the table's schema.
    pub rows: RecordBatch,
    /// Each row's diff: `-1` (went) or `+1` (came).
    pub diffs: Vec<i64>,
}

impl Change {
    /// `went` then `came`, or nothing when both are empty.
    pub fn of(
        schema: &SchemaRef,
        went: &[RecordBatch],
        came: Option<&RecordBatch>,
    ) -> Result<Option<Change>> {
        let gone: usize = went.iter().map(RecordBatch::num_rows).sum();
        let new = came.map_or(0, RecordBatch::num_rows);
        if gone + new == 0 {
            return Ok(None);
        }
        let mut all: Vec<&RecordBatch> = went.iter().collect();
        all.extend(came);
        let rows = concat_batches(schema, all)?;
        let mut diffs = vec![-1; gone];
        diffs.extend(std::iter::repeat_n(1, new));
        Ok(Some(Change { rows, diffs }))
    }

    /// Only the rows that came in.
    pub fn came(&self) -> Result<RecordBatch> {
        let idx: Vec<u32> = (0..self.diffs.len() as u32)
            .filter(|&i| self.diffs[i as usize] > 0)
            .collect();
        Ok(take_record_batch(&self.rows, &UInt32Array::from(idx))?)
    }
}

/// Rows given as (batch, index) pairs, taken out of their batches together.
pub fn gather<'a>(
    rows: impl Iterator<Item = (&'a Arc<RecordBatch>, usize)>,
) -> Result<Vec<RecordBatch>> {
    let mut by_batch: HashMap<*const RecordBatch, (&Arc<RecordBatch>, Vec<u32>)> = HashMap::new();
    for (b, i) in rows {
        let e = by_batch
            .entry(Arc::as_ptr(b))
            .or_insert_with(|| (b, Vec::new()));
        e.1.push(i as u32);
    }
    let mut out = Vec::new();
    for (b, idx) in by_batch.into_values() {
        out.push(take_record_batch(b, &UInt32Array::from(idx))?);
    }
    Ok(out)
}
