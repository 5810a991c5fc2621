//! Snapshot and restore of the interval join (see `crate::state`): one batch per side, a row
//! per stored row — its route hash (the exchange's hash of its encoded key), the side (0 left,
//! 1 right), its event time, whether it has matched, the engine time it arrived at (restored
//! output travels at it: the engine holds a capability for every restored left time), the
//! encoded key, then the row's columns.
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Int64Array, UInt64Array, UInt8Array,
};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::arrow::record_batch::RecordBatch;

use super::{gather, Entry, IntervalJoin, Side};
use crate::state::{rows_of, with_route, OperatorState};
use crate::{Error, Result};

/// Columns before the row's own.
const META: usize = 6;

fn side_batch(side: &Side, which: u8, route: fn(&[u8]) -> u64) -> Result<Option<RecordBatch>> {
    let entries: Vec<(&Vec<u8>, &Entry)> = side
        .index
        .iter()
        .flat_map(|(k, l)| l.iter().map(move |e| (k, e)))
        .collect();
    if entries.is_empty() {
        return Ok(None);
    }
    let at: Vec<(u64, usize)> = entries.iter().map(|(_, e)| (e.batch, e.row)).collect();
    let schema = side
        .batches
        .values()
        .next()
        .map(|(b, _)| b.schema())
        .ok_or_else(|| Error::Snapshot("a stored row without its batch".into()))?;
    let rows = RecordBatch::try_new(schema, gather(&side.batches, &at)?)?;
    let n = entries.len();
    let meta: Vec<(Field, ArrayRef)> = vec![
        (
            Field::new("__side", DataType::UInt8, false),
            Arc::new(UInt8Array::from(vec![which; n])),
        ),
        (
            Field::new("__ts", DataType::Int64, false),
            Arc::new(Int64Array::from_iter_values(
                entries.iter().map(|(_, e)| e.ts),
            )),
        ),
        (
            Field::new("__matched", DataType::Boolean, false),
            Arc::new(BooleanArray::from(
                entries.iter().map(|(_, e)| e.matched).collect::<Vec<_>>(),
            )),
        ),
        (
            Field::new("__cap", DataType::UInt64, false),
            Arc::new(UInt64Array::from_iter_values(
                entries.iter().map(|(_, e)| e.cap),
            )),
        ),
        (
            Field::new("__key", DataType::Binary, false),
            Arc::new(BinaryArray::from_iter_values(
                entries.iter().map(|(k, _)| k.as_slice()),
            )),
        ),
    ];
    let route = entries.iter().map(|(k, _)| route(k)).collect();
    Ok(Some(with_route(route, meta, &rows)?))
}

fn column<T: 'static>(b: &RecordBatch, i: usize) -> Result<&T> {
    b.column(i)
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| Error::Snapshot(format!("column {i} of an interval-join snapshot")))
}

fn restore_side(side: &mut Side, b: &RecordBatch) -> Result<()> {
    let ts = column::<Int64Array>(b, 2)?;
    let matched = column::<BooleanArray>(b, 3)?;
    let caps = column::<UInt64Array>(b, 4)?;
    let keys = column::<BinaryArray>(b, 5)?;
    let id = side.add_batch(&rows_of(b, META)?);
    for i in 0..b.num_rows() {
        let e = Entry {
            ts: ts.value(i),
            batch: id,
            row: i,
            matched: matched.value(i),
            cap: caps.value(i),
        };
        side.insert(keys.value(i).to_vec(), e);
    }
    side.drop_if_unused(id);
    Ok(())
}

impl OperatorState for IntervalJoin {
    fn open_entries(&self) -> usize {
        self.left.rows + self.right.rows
    }

    fn size_bytes(&self) -> usize {
        [&self.left, &self.right]
            .iter()
            .flat_map(|s| s.batches.values())
            .map(|(b, _)| b.get_array_memory_size())
            .sum()
    }

    fn snapshot(&mut self) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        out.extend(side_batch(&self.left, 0, self.route)?);
        out.extend(side_batch(&self.right, 1, self.route)?);
        Ok(out)
    }

    fn restore(&mut self, batches: &[RecordBatch]) -> Result<()> {
        for b in batches {
            if b.num_rows() == 0 {
                continue;
            }
            if b.num_columns() < META || b.schema().field(1).name() != "__side" {
                return Err(Error::Snapshot(
                    "the batch does not fit the interval join".into(),
                ));
            }
            match column::<UInt8Array>(b, 1)?.value(0) {
                0 => restore_side(&mut self.left, b)?,
                _ => restore_side(&mut self.right, b)?,
            }
        }
        Ok(())
    }
}
