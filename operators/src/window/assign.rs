//! Window assignment: appends `window_start` and `window_end` columns computed from the
//! event-time column. A hop window repeats a row once per window containing it; a session
//! assigns `[ts, ts + gap)`, which the session aggregate later merges per key.
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;

use super::{WindowSpec, WINDOW_END, WINDOW_START};
use crate::time::{from_millis, to_millis};
use crate::{BatchOperator, Result};

/// Adds window bounds to every row.
pub struct AssignWindow {
    spec: WindowSpec,
    time_index: usize,
    time_name: String,
    schema: SchemaRef,
}

impl AssignWindow {
    /// `time_index` is the event-time column of `input`.
    pub fn new(input: &Schema, time_index: usize, spec: WindowSpec) -> Self {
        let tf = input.field(time_index);
        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(WINDOW_START, tf.data_type().clone(), false));
        fields.push(Field::new(WINDOW_END, tf.data_type().clone(), false));
        AssignWindow {
            spec,
            time_index,
            time_name: tf.name().clone(),
            schema: Arc::new(Schema::new(fields)),
        }
    }
}

impl BatchOperator for AssignWindow {
    fn name(&self) -> &'static str {
        "assign_window"
    }

    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn on_batch(&mut self, batch: &RecordBatch, out: &mut Vec<RecordBatch>) -> Result<()> {
        let ts_col = batch.column(self.time_index);
        let ts = to_millis(&self.time_name, ts_col)?;
        let len = self.spec.length();
        let mut starts = Vec::with_capacity(ts.len());
        let mut rows: Vec<u32> = Vec::new();
        let duplicates = matches!(self.spec, WindowSpec::Hop { .. });
        let mut scratch = Vec::with_capacity(4);
        for (i, t) in ts.iter().enumerate() {
            scratch.clear();
            self.spec.starts(*t, &mut scratch);
            for s in &scratch {
                starts.push(*s);
                if duplicates {
                    rows.push(i as u32);
                }
            }
        }
        let ends: Vec<i64> = starts.iter().map(|s| s + len).collect();
        let mut columns: Vec<ArrayRef> = if duplicates {
            let idx = UInt32Array::from(rows);
            batch
                .columns()
                .iter()
                .map(|c| take(c.as_ref(), &idx, None))
                .collect::<std::result::Result<_, _>>()?
        } else {
            batch.columns().to_vec()
        };
        columns.push(from_millis(ts_col.data_type(), starts)?);
        columns.push(from_millis(ts_col.data_type(), ends)?);
        out.push(RecordBatch::try_new(self.schema.clone(), columns)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, Int64Array};
    use datafusion::arrow::datatypes::DataType;

    #[test]
    fn hop_duplicates_rows() {
        let schema = Schema::new(vec![Field::new("ts", DataType::Int64, false)]);
        let batch = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![Arc::new(Int64Array::from(vec![12i64, 3]))],
        )
        .unwrap();
        let mut op = AssignWindow::new(&schema, 0, WindowSpec::Hop { slide: 5, size: 10 });
        let mut out = Vec::new();
        op.on_batch(&batch, &mut out).unwrap();
        let b = &out[0];
        assert_eq!(b.num_rows(), 4);
        let starts = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(starts.values().to_vec(), vec![10, 5, 0, -5]);
        assert_eq!(b.column(2).len(), 4);
    }
}
