//! The state of an updating view on one worker, for snapshots: the input rows it holds (as
//! encoded rows and their counts) and the output rows it has emitted (before the operators
//! after the aggregate). Differential keeps its own copy in its arrangements; this one is read
//! when a job suspends at a cut. A snapshot has two batches: input rows — route hash (of the
//! group keys), `__count`, the input columns — and emitted rows — route hash, `__emitted`, the
//! aggregate's output columns. A restored view feeds the input rows back at time 0 and counts
//! the emitted ones as already out, so nothing is emitted twice.
use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::arrow::record_batch::RecordBatch;
use weir_operators::exchange::partition::route_hashes;
use weir_operators::state::with_route;
use weir_operators::updating::UpdatingAggregate;
use weir_operators::{Error, Result};

const COUNT: &str = "__count";
const EMITTED: &str = "__emitted";

/// One worker's view state.
#[derive(Default)]
pub struct View {
    /// The view's node id.
    pub node: String,
    /// Input rows (encoded) and how many times each arrived.
    pub inputs: HashMap<Vec<u8>, isize>,
    /// Output rows (encoded) now out, and how many times.
    pub emitted: HashMap<Vec<u8>, isize>,
    /// Restored input rows to feed back: (key, row, count).
    pub feed: Vec<(Vec<u8>, Vec<u8>, isize)>,
    /// Why the restored state could not be read.
    pub error: Option<String>,
}

fn counts(b: &RecordBatch) -> Result<&Int64Array> {
    b.column(1)
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| Error::Snapshot("a view snapshot's count is not BIGINT".into()))
}

impl View {
    /// The view of node `node`, with this worker's part of a restored snapshot.
    pub fn restored(agg: &UpdatingAggregate, batches: &[RecordBatch], node: String) -> View {
        let mut v = View {
            node,
            ..View::default()
        };
        if let Err(e) = batches.iter().try_for_each(|b| v.restore(agg, b)) {
            v.error = Some(format!("restoring {}: {e}", v.node));
        }
        v
    }

    fn restore(&mut self, agg: &UpdatingAggregate, b: &RecordBatch) -> Result<()> {
        if b.num_rows() == 0 {
            return Ok(());
        }
        let n = counts(b)?;
        let cols = b.columns()[2..].to_vec();
        match b.schema().field(1).name().as_str() {
            COUNT => {
                let rows = RecordBatch::try_new(agg.input_schema.clone(), cols)?;
                let keys = agg.key_codec()?.convert_columns(&agg.keys(&rows)?)?;
                let enc = agg.input_codec()?.convert_columns(rows.columns())?;
                for i in 0..rows.num_rows() {
                    let row = enc.row(i).as_ref().to_vec();
                    let c = n.value(i) as isize;
                    *self.inputs.entry(row.clone()).or_default() += c;
                    self.feed.push((keys.row(i).as_ref().to_vec(), row, c));
                }
            }
            EMITTED => {
                let enc = agg.output_codec()?.convert_columns(&cols)?;
                for i in 0..b.num_rows() {
                    *self
                        .emitted
                        .entry(enc.row(i).as_ref().to_vec())
                        .or_default() += n.value(i) as isize;
                }
            }
            _ => {
                return Err(Error::Snapshot(
                    "the batch does not fit an updating view".into(),
                ))
            }
        }
        Ok(())
    }

    /// The state as two batches (input rows, emitted rows).
    pub fn snapshot(&self, agg: &UpdatingAggregate) -> Result<Vec<RecordBatch>> {
        let groups = agg.group_exprs.len();
        let mut out = Vec::new();
        let parts = [
            (
                COUNT,
                &self.inputs,
                agg.input_codec()?,
                agg.input_schema.clone(),
            ),
            (
                EMITTED,
                &self.emitted,
                agg.output_codec()?,
                agg.output_schema.clone(),
            ),
        ];
        for (name, map, codec, schema) in parts {
            let live: Vec<(&Vec<u8>, &isize)> = map.iter().filter(|(_, c)| **c != 0).collect();
            if live.is_empty() {
                continue;
            }
            let parser = codec.parser();
            let cols = codec.convert_rows(live.iter().map(|(r, _)| parser.parse(r)))?;
            let rows = RecordBatch::try_new(schema, cols)?;
            let keys: Vec<ArrayRef> = match name {
                COUNT => agg.keys(&rows)?,
                _ => rows.columns()[..groups].to_vec(),
            };
            let counts: ArrayRef = Arc::new(Int64Array::from_iter_values(
                live.iter().map(|(_, c)| **c as i64),
            ));
            let meta = vec![(Field::new(name, DataType::Int64, false), counts)];
            out.push(with_route(route_hashes(&keys, live.len())?, meta, &rows)?);
        }
        Ok(out)
    }
}
