//! The state of a lookup join on one worker, for snapshots: the stream rows still waiting for
//! the table to reach their time. A job suspending at a cut keeps them waiting (the table's
//! input ends there, but its rows are not over) and snapshots them as one batch per waiting
//! group — route hash (differential's hash of the encoded key, as the key router places
//! rows), `__cap` (the time the rows' output travels at), then the stream row's columns. A
//! restored join takes them back as waiting rows.
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, UInt32Array, UInt64Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use weir_operators::state::ROUTE_COLUMN;
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
    let route: UInt64Array = rows
        .iter()
        .map(|r| Some(key_hash(keys.row(*r as usize).as_ref())))
        .collect();
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(route),
        Arc::new(UInt64Array::from(vec![cap; rows.len()])),
    ];
    cols.extend(taken.columns().iter().cloned());
    let mut fields = vec![
        Field::new(ROUTE_COLUMN, DataType::UInt64, false),
        Field::new(CAP, DataType::UInt64, false),
    ];
    fields.extend(taken.schema().fields().iter().map(|f| f.as_ref().clone()));
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
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
    let schema = Arc::new(Schema::new(b.schema().fields()[2..].to_vec()));
    Ok((
        RecordBatch::try_new(schema, b.columns()[2..].to_vec())?,
        cap,
    ))
}
