//! The state of a lookup join on one worker, for snapshots: the stream rows still waiting for
//! the table to reach their time. A job suspending at a cut keeps them waiting (the table's
//! input ends there, but its rows are not over) and snapshots them as one batch per waiting
//! group — route hash (differential's hash of the encoded key, as the key router places
//! rows), `__cap` (the time the rows' output travels at), then the stream row's columns. A
//! restored join takes them back as waiting rows.
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, UInt32Array, UInt64Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::arrow::record_batch::RecordBatch;
use weir_operators::state::{rows_of, with_route};
use weir_operators::{Error, Result};

use super::route::key_hash;

/// The time column of a snapshot batch.
const CAP: &str = "__cap";

/// One waiting group as a snapshot batch: `rows` of `batch`, whose encoded keys are `keys`,
/// to travel at `cap`.
pub fn snapshot(
    batch: &RecordBatch,
    rows: &[u32],
    keys: &datafusion::arrow::row::Rows,
    cap: u64,
) -> Result<RecordBatch> {
    let taken = take_record_batch(batch, &UInt32Array::from(rows.to_vec()))?;
    let route = rows
        .iter()
        .map(|r| key_hash(keys.row(*r as usize).as_ref()))
        .collect();
    let caps: ArrayRef = Arc::new(UInt64Array::from(vec![cap; rows.len()]));
    let meta = vec![(Field::new(CAP, DataType::UInt64, false), caps)];
    with_route(route, meta, &taken)
}

/// A snapshot batch as the stream rows it holds and the earliest time they travel at.
pub fn restore(b: &RecordBatch) -> Result<(RecordBatch, u64)> {
    if b.num_columns() < 2 || b.schema().field(1).name() != CAP {
        return Err(Error::Snapshot(
            "the batch does not fit a lookup join".into(),
        ));
    }
    let caps = b
        .column(1)
        .as_any()
        .downcast_ref::<UInt64Array>()
        .ok_or_else(|| Error::Snapshot("__cap is not UBIGINT".into()))?;
    let cap = caps.values().iter().copied().min().unwrap_or(0);
    Ok((rows_of(b, 2)?, cap))
}
