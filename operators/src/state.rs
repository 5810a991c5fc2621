//! The one small state interface every stateful operator sits behind.
//!
//! A checkpoint snapshots an operator's state as Arrow record batches without knowing its
//! logic, and a restored job puts it back. Every snapshot batch starts with [`ROUTE_COLUMN`]:
//! the hash the exchange routes that state's rows by (the same hash, over the same key values,
//! as [`crate::exchange::route_hashes`]), so a job restored on another number of workers gives
//! each worker the rows whose hash falls to it ([`for_worker`]) and state meets its rows again.
//!
//! Contract:
//! - `snapshot` holds the effect of every row the operator has taken and leaves the operator
//!   as it was (taking it again gives the same batches);
//! - `restore` adds the state of `batches` to the operator's (so the parts of several workers
//!   can be restored into one); restoring the snapshot of an operator into a fresh one and
//!   feeding both the same rows gives the same output.
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, UInt64Array};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;

use crate::{Error, Result};

/// The first column of every snapshot batch: each row's exchange-route hash.
pub const ROUTE_COLUMN: &str = "__route";

/// Introspection, snapshot and restore of an operator's state.
pub trait OperatorState {
    /// Number of open state entries (windows × groups, or sessions).
    fn open_entries(&self) -> usize;
    /// Approximate bytes held.
    fn size_bytes(&self) -> usize;
    /// The state as batches whose first column is [`ROUTE_COLUMN`]; the operator is unchanged.
    fn snapshot(&mut self) -> Result<Vec<RecordBatch>>;
    /// Adds the state in `batches` (as [`OperatorState::snapshot`] gave them).
    fn restore(&mut self, batches: &[RecordBatch]) -> Result<()>;
}

/// A snapshot batch: [`ROUTE_COLUMN`] holding `route`, then the `meta` columns (name, values),
/// then `rows`' own columns.
pub fn with_route(
    route: Vec<u64>,
    meta: Vec<(Field, ArrayRef)>,
    rows: &RecordBatch,
) -> Result<RecordBatch> {
    let mut fields = vec![Field::new(ROUTE_COLUMN, DataType::UInt64, false)];
    let mut cols: Vec<ArrayRef> = vec![Arc::new(UInt64Array::from(route))];
    for (f, c) in meta {
        fields.push(f);
        cols.push(c);
    }
    fields.extend(rows.schema().fields().iter().map(|f| f.as_ref().clone()));
    cols.extend(rows.columns().iter().cloned());
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}

/// The rows a snapshot batch holds: its columns after the first `skip` (the route and meta
/// columns [`with_route`] put before them).
pub fn rows_of(batch: &RecordBatch, skip: usize) -> Result<RecordBatch> {
    let fields = batch
        .schema()
        .fields()
        .get(skip..)
        .ok_or_else(|| Error::Snapshot(format!("a snapshot batch with fewer than {skip} columns")))?
        .to_vec();
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        batch.columns()[skip..].to_vec(),
    )?)
}

/// The rows of a snapshot batch that belong to worker `worker` of `peers`.
pub fn for_worker(batch: &RecordBatch, worker: usize, peers: usize) -> Result<RecordBatch> {
    let route = batch
        .column_by_name(ROUTE_COLUMN)
        .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
        .ok_or_else(|| Error::Snapshot(format!("a batch has no {ROUTE_COLUMN} column")))?;
    let keep: BooleanArray = (0..route.len())
        .map(|i| Some(route.value(i) % peers.max(1) as u64 == worker as u64))
        .collect();
    Ok(filter_record_batch(batch, &keep)?)
}
