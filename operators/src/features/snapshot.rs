//! Snapshot and restore of the feature operator (see `crate::state`).
//!
//! Two kinds of batch. Rows the watermark has not passed yet: the route hash of their partition
//! keys, then the input columns as they arrived (restored by taking them again). Each key's
//! state (history, running sums, `ewma`, detectors): the route hash, a `__state` column with
//! the state encoded by bincode, then the key columns.
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BinaryArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::operator::Features;
use super::state::KeyState;
use crate::exchange::partition::route_hashes;
use crate::state::{rows_of, with_route, OperatorState, ROUTE_COLUMN};
use crate::{BatchOperator, Error, Result};

/// The column holding each key's encoded state.
const STATE: &str = "__state";

impl Features {
    /// The held rows, each with the route hash of its keys.
    fn pending_batches(&self) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        for p in &self.pending {
            let n = p.batch.num_rows();
            let keys = self
                .partition
                .iter()
                .map(|e| e.evaluate(&p.batch).and_then(|v| v.into_array(n)))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            out.push(with_route(route_hashes(&keys, n)?, Vec::new(), &p.batch)?);
        }
        Ok(out)
    }

    /// Every key's state, as one batch.
    fn key_batch(&self) -> Result<Option<RecordBatch>> {
        if self.states.is_empty() {
            return Ok(None);
        }
        let parser = self.codec.parser();
        let entries: Vec<(&Vec<u8>, &KeyState)> = self.states.iter().collect();
        let keys = self
            .codec
            .convert_rows(entries.iter().map(|(k, _)| parser.parse(k)))?;
        let n = entries.len();
        let blobs = entries
            .iter()
            .map(|(_, s)| bincode::serialize(s).map_err(|e| Error::Snapshot(e.to_string())))
            .collect::<Result<Vec<_>>>()?;
        let route = route_hashes(&keys, n)?;
        let fields: Vec<Field> = keys
            .iter()
            .enumerate()
            .map(|(i, c)| Field::new(format!("__key{i}"), c.data_type().clone(), true))
            .collect();
        // Without PARTITION BY there are no key columns: the row count says how many keys.
        let options = RecordBatchOptions::new().with_row_count(Some(n));
        let keys =
            RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), keys, &options)?;
        let blobs: ArrayRef = Arc::new(BinaryArray::from_iter_values(blobs.iter()));
        let state = Field::new(STATE, DataType::Binary, false);
        Ok(Some(with_route(route, vec![(state, blobs)], &keys)?))
    }

    /// Puts back one batch of key states.
    fn restore_keys(&mut self, b: &RecordBatch) -> Result<()> {
        let blobs = b
            .column(1)
            .as_any()
            .downcast_ref::<BinaryArray>()
            .ok_or_else(|| Error::Snapshot("__state is not binary".into()))?;
        let rows = self.codec.convert_columns(&b.columns()[2..])?;
        for i in 0..b.num_rows() {
            let state: KeyState = bincode::deserialize(blobs.value(i))
                .map_err(|e| Error::Snapshot(format!("a feature state: {e}")))?;
            self.states.insert(rows.row(i).as_ref().to_vec(), state);
        }
        Ok(())
    }
}

impl OperatorState for Features {
    fn open_entries(&self) -> usize {
        self.states.len()
            + self
                .pending
                .iter()
                .map(|p| p.batch.num_rows())
                .sum::<usize>()
    }

    fn size_bytes(&self) -> usize {
        self.pending
            .iter()
            .map(|p| p.batch.get_array_memory_size())
            .sum::<usize>()
            + self.states.len() * std::mem::size_of::<KeyState>()
    }

    fn snapshot(&mut self) -> Result<Vec<RecordBatch>> {
        let mut out = self.pending_batches()?;
        out.extend(self.key_batch()?);
        Ok(out)
    }

    fn restore(&mut self, batches: &[RecordBatch]) -> Result<()> {
        for b in batches {
            if b.num_columns() < 2 || b.schema().field(0).name() != ROUTE_COLUMN {
                return Err(Error::Snapshot(
                    "the batch does not fit the feature operator".into(),
                ));
            }
            if b.num_rows() == 0 {
                continue;
            }
            if b.schema().field(1).name() == STATE {
                self.restore_keys(b)?;
            } else {
                self.on_batch(&rows_of(b, 1)?, &mut Vec::new())?;
            }
        }
        Ok(())
    }
}
