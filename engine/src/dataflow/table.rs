//! Tables: a source's rows become upserts `(primary key, Some(row) | None, event time)` —
//! `None` for a row whose op column says `delete` or a Kafka tombstone — and differential's
//! `arrange_from_upsert` keeps them as one arrangement per worker, keyed by the encoded primary
//! key, holding every version by event time until the readers' compaction lets it go. Every
//! pipeline that joins the table reads this one arrangement.
use std::collections::HashSet;

use datafusion::arrow::array::{Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::row::{RowConverter, SortField};
use differential_dataflow::operators::arrange::upsert::arrange_from_upsert;
use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::trace::implementations::{ValBuilder, ValSpine};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::Stream;
use weir_operators::join::KeyEncoder;
use weir_operators::time::to_millis;

use super::batch::BatchMsg;
use super::Shared;

/// The operator's name in errors.
const OP: &str = "TableUpserts";

/// The column a Kafka table's tombstones are marked in when the table declares no op column.
pub const TOMBSTONE_COLUMN: &str = "__weir_op";

/// A table's trace: encoded key → encoded row, at event-time ms.
pub type TableTrace = TraceAgent<ValSpine<Vec<u8>, Vec<u8>, u64, isize>>;

/// A table's arrangement in a dataflow.
pub type Table<'s> = Arranged<'s, TableTrace>;

type Upsert = (Vec<u8>, Option<Vec<u8>>, u64);

/// Builds the arrangement of a table from its source's stream (not routed: the upsert operator
/// exchanges by key).
pub fn build<'s>(
    input: Stream<'s, u64, Vec<(u64, BatchMsg)>>,
    shared: Shared,
    keys: KeyEncoder,
) -> Table<'s> {
    let def = shared.source.clone();
    let op_column = def
        .table
        .as_ref()
        .and_then(|t| t.op_column.clone())
        .unwrap_or_else(|| TOMBSTONE_COLUMN.to_string());
    let width = def.schema.fields().len();
    let codec = RowConverter::new(
        def.schema
            .fields()
            .iter()
            .map(|f| SortField::new(f.data_type().clone()))
            .collect(),
    );
    let time_index = def
        .event_time
        .as_ref()
        .and_then(|e| def.schema.index_of(e).ok());
    let upserts = input.unary::<CapacityContainerBuilder<Vec<Upsert>>, _, _, _>(
        Pipeline,
        "TableUpserts",
        move |_cap, _info| {
            move |input, output| {
                shared.guard(OP, || {
                    input.for_each(|cap, data| {
                        let Ok(codec) = codec.as_ref() else {
                            shared.fail(OP, "table: building the row encoder");
                            return;
                        };
                        let base = cap.least().copied().unwrap_or(0);
                        let mut session = output.session(&cap);
                        for (_, b) in data.drain(..) {
                            let batch = &b.0;
                            let r = (|| -> weir_operators::Result<Vec<Upsert>> {
                                let (krows, valid) = keys.encode(batch)?;
                                let vrows = codec.convert_columns(&batch.columns()[..width])?;
                                let deletes = match batch.schema().index_of(&op_column) {
                                    Ok(i) => {
                                        let ops = cast(batch.column(i), &DataType::Utf8)?;
                                        let ops =
                                            ops.as_any().downcast_ref::<StringArray>().cloned();
                                        (0..batch.num_rows())
                                            .map(|r| {
                                                ops.as_ref()
                                                    .map(|o| {
                                                        o.is_valid(r)
                                                            && o.value(r)
                                                                .eq_ignore_ascii_case("delete")
                                                    })
                                                    .unwrap_or(false)
                                            })
                                            .collect()
                                    }
                                    Err(_) => vec![false; batch.num_rows()],
                                };
                                let times = match time_index {
                                    Some(ti) => {
                                        to_millis(def.schema.field(ti).name(), batch.column(ti))?
                                            .into_iter()
                                            .map(|t| (t.max(0) as u64).max(base))
                                            .collect()
                                    }
                                    None => vec![base; batch.num_rows()],
                                };
                                // The last row of a key at one time wins (upsert keeps one version
                                // per key and time).
                                let mut seen = HashSet::new();
                                let mut out = Vec::new();
                                for i in (0..batch.num_rows()).rev() {
                                    if !valid[i] {
                                        continue;
                                    }
                                    let k = krows.row(i).as_ref().to_vec();
                                    if !seen.insert((k.clone(), times[i])) {
                                        continue;
                                    }
                                    let v = (!deletes[i]).then(|| vrows.row(i).as_ref().to_vec());
                                    out.push((k, v, times[i]));
                                }
                                Ok(out)
                            })();
                            match r {
                                Ok(ups) => {
                                    for u in ups {
                                        session.give(u);
                                    }
                                }
                                Err(e) => shared.fail(OP, format!("table '{}': {e}", def.name)),
                            }
                        }
                    });
                })
            }
        },
    );
    arrange_from_upsert::<
        ValBuilder<Vec<u8>, Vec<u8>, u64, isize>,
        ValSpine<Vec<u8>, Vec<u8>, u64, isize>,
        Vec<u8>,
        Vec<u8>,
    >(upserts, "Table")
}
