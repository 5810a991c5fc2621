//! Kafka tombstones for tables: records with a null payload delete their key. Decoded values
//! and tombstone rows are merged back into offset order (a later record of a key wins), with a
//! marker column saying `delete` on tombstone rows.
use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, Array, ArrayRef, Int64Array, StringArray};
use datafusion::arrow::compute::{cast, interleave};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;

use super::record::{Record, Tombstones};
use crate::Result;

/// The schema a payload decodes with: the table's, without the marker column.
pub fn without_marker(schema: &Schema, marker: usize) -> Schema {
    Schema::new(
        schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != marker)
            .map(|(_, f)| f.as_ref().clone())
            .collect::<Vec<_>>(),
    )
}

/// Decoded values (rows of `good`, in order) and `tombs` as one batch of `schema`, in offset
/// order.
pub fn merge(
    schema: &SchemaRef,
    t: &Tombstones,
    values: Option<RecordBatch>,
    good: &[&Record],
    tombs: &[&Record],
) -> Result<Option<RecordBatch>> {
    let values = match values {
        Some(v) => {
            let mut cols: Vec<ArrayRef> = v.columns().to_vec();
            cols.insert(t.marker, new_null_array(&DataType::Utf8, v.num_rows()));
            Some(RecordBatch::try_new(schema.clone(), cols)?)
        }
        None => None,
    };
    if tombs.is_empty() {
        return Ok(values);
    }
    let n = tombs.len();
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (i, f) in schema.fields().iter().enumerate() {
        let col: ArrayRef = if i == t.key {
            let keys = StringArray::from(
                tombs
                    .iter()
                    .map(|r| {
                        r.key
                            .as_ref()
                            .map(|k| String::from_utf8_lossy(k).to_string())
                    })
                    .collect::<Vec<_>>(),
            );
            cast(&keys, f.data_type())?
        } else if i == t.marker {
            Arc::new(StringArray::from(vec!["delete"; n]))
        } else if Some(i) == t.time {
            let ms: ArrayRef = Arc::new(Int64Array::from(
                tombs.iter().map(|r| r.timestamp).collect::<Vec<_>>(),
            ));
            match f.data_type() {
                DataType::Timestamp(_, _) => cast(
                    &cast(&ms, &DataType::Timestamp(TimeUnit::Millisecond, None))?,
                    f.data_type(),
                )?,
                other => cast(&ms, other)?,
            }
        } else {
            new_null_array(f.data_type(), n)
        };
        cols.push(col);
    }
    let deletes = RecordBatch::try_new(schema.clone(), cols)?;
    let Some(values) = values else {
        return Ok(Some(deletes));
    };
    // Merge by offset.
    let (mut a, mut b) = (0, 0);
    let mut order = Vec::with_capacity(good.len() + n);
    while a < good.len() || b < n {
        if b == n || (a < good.len() && good[a].offset < tombs[b].offset) {
            order.push((0, a));
            a += 1;
        } else {
            order.push((1, b));
            b += 1;
        }
    }
    let mut cols = Vec::with_capacity(schema.fields().len());
    for c in 0..schema.fields().len() {
        let arrays: Vec<&dyn Array> = vec![values.column(c).as_ref(), deletes.column(c).as_ref()];
        cols.push(interleave(&arrays, &order)?);
    }
    Ok(Some(RecordBatch::try_new(schema.clone(), cols)?))
}
