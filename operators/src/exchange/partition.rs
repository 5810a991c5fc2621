//! Hash partitioning: splits a batch into one sub-batch per worker by the hash of key
//! expressions, so every row of a group reaches the same worker.
use std::sync::Arc;

use datafusion::arrow::array::UInt32Array;
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::hash_utils::create_hashes;
use datafusion::physical_expr::PhysicalExpr;

use crate::Result;

/// Fixed seed so every worker and process hashes alike.
const SEED: datafusion::common::hash_utils::RandomState =
    datafusion::common::hash_utils::RandomState::with_seed(0x7765_6972);

/// The exchange-route hash of each of `rows` rows with key columns `cols` (0 without keys):
/// what [`Partitioner::split`] places rows by, and what state snapshots carry so state is
/// restored on the worker its rows go to.
pub fn route_hashes(cols: &[datafusion::arrow::array::ArrayRef], rows: usize) -> Result<Vec<u64>> {
    let mut hashes = vec![0u64; rows];
    if !cols.is_empty() {
        create_hashes(cols, &SEED, &mut hashes)?;
    }
    Ok(hashes)
}

/// Splits batches by key hash.
pub struct Partitioner {
    keys: Vec<Arc<dyn PhysicalExpr>>,
}

impl Partitioner {
    /// Partitions by `keys`; with no keys every row goes to partition 0.
    pub fn new(keys: Vec<Arc<dyn PhysicalExpr>>) -> Self {
        Partitioner { keys }
    }

    /// Returns `(partition, rows)` for every non-empty partition among `n`.
    pub fn split(&self, batch: &RecordBatch, n: usize) -> Result<Vec<(usize, RecordBatch)>> {
        if n <= 1 || self.keys.is_empty() || batch.num_rows() == 0 {
            return Ok(vec![(0, batch.clone())]);
        }
        let rows = batch.num_rows();
        let cols = self
            .keys
            .iter()
            .map(|e| e.evaluate(batch).and_then(|v| v.into_array(rows)))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let hashes = route_hashes(&cols, rows)?;
        let mut parts: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (i, h) in hashes.iter().enumerate() {
            parts[(*h % n as u64) as usize].push(i as u32);
        }
        let mut out = Vec::new();
        for (p, idx) in parts.into_iter().enumerate() {
            if !idx.is_empty() {
                out.push((p, take_record_batch(batch, &UInt32Array::from(idx))?));
            }
        }
        Ok(out)
    }
}
