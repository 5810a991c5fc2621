//! The updating-view adapter (non-windowed `GROUP BY`) on differential dataflow: every input row
//! becomes an update `(group key, row)` at its batch's time, arranged by key; `reduce` recomputes
//! a changed group's aggregate row; the output collection's changes become a changelog — rows
//! with `op` = `delete` (retractions, first) and `insert` — emitted once the frontier passes
//! their time, after the operators that follow the aggregate (HAVING, the SELECT list). The
//! view's rows are also kept for snapshots (`view_state.rs`).
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use differential_dataflow::AsCollection;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::Stream;
use weir_operators::updating::UpdatingAggregate;
use weir_operators::{run_chain, BatchOperator};

use super::batch::BatchMsg;
use super::view_state::View;
use super::Shared;

/// The operator's name in errors.
const OP: &str = "UpdatingAggregate";

type Update = ((Vec<u8>, Vec<u8>), u64, isize);

/// Output changes waiting for the frontier: the capability to emit them at, and (row, diff).
type Pending = (Capability<u64>, Vec<(Vec<u8>, isize)>);

/// Builds the updating aggregate; rows must already be partitioned by group key.
pub fn build<'s>(
    input: Stream<'s, u64, Vec<(u64, BatchMsg)>>,
    shared: Shared,
    agg: UpdatingAggregate,
    mut post: Vec<Box<dyn BatchOperator>>,
    view: View,
) -> Stream<'s, u64, Vec<(u64, BatchMsg)>> {
    let scope = input.scope();
    if let Some(e) = &view.error {
        shared.fail(OP, e.clone());
    }
    let view = Rc::new(RefCell::new(view));
    let agg = Rc::new(agg);
    let a1 = agg.clone();
    let sh1 = shared.clone();
    let v1 = view.clone();
    let updates = input.unary::<CapacityContainerBuilder<Vec<Update>>, _, _, _>(
        Pipeline,
        "ToUpdates",
        move |cap, _info| {
            let codecs = a1
                .key_codec()
                .and_then(|k| a1.input_codec().map(|i| (k, i)));
            // A restored view's input rows go back in at time 0.
            let mut first = Some(cap);
            move |input, output| {
                sh1.guard(OP, || {
                    if let Some(cap) = first.take() {
                        let feed = std::mem::take(&mut v1.borrow_mut().feed);
                        let mut session = output.session(&cap);
                        for (k, r, c) in feed {
                            session.give(((k, r), 0u64, c));
                        }
                    }
                    let mut view = v1.borrow_mut();
                    input.for_each(|cap, data| {
                        let Ok((kc, ic)) = codecs.as_ref() else {
                            sh1.fail(OP, "updating aggregate: building row codecs");
                            return;
                        };
                        let time = cap.least().copied().unwrap_or(0);
                        let mut session = output.session(&cap);
                        for (_, b) in data.drain(..) {
                            let batch = &b.0;
                            let keys = match a1.keys(batch) {
                                Ok(k) => k,
                                Err(e) => {
                                    sh1.fail(OP, e);
                                    continue;
                                }
                            };
                            let (Ok(krows), Ok(rows)) = (
                                kc.convert_columns(&keys),
                                ic.convert_columns(batch.columns()),
                            ) else {
                                sh1.fail(OP, "updating aggregate: encoding rows");
                                continue;
                            };
                            for i in 0..batch.num_rows() {
                                let row = rows.row(i).as_ref().to_vec();
                                *view.inputs.entry(row.clone()).or_default() += 1;
                                session.give(((krows.row(i).as_ref().to_vec(), row), time, 1isize));
                            }
                        }
                    });
                })
            }
        },
    );
    let a2 = agg.clone();
    let sh2 = shared.clone();
    let ic = agg.input_codec();
    let oc = agg.output_codec();
    let (Ok(ic), Ok(oc)) = (ic, oc) else {
        shared.fail(OP, "updating aggregate: building row codecs");
        return timely::dataflow::operators::generic::operator::empty(scope);
    };
    let in_parser = ic.parser();
    let reduced = updates.as_collection().reduce(
        move |_key, vals: &[(&Vec<u8>, isize)], out: &mut Vec<(Vec<u8>, isize)>| {
            sh2.guard(OP, || {
                let rows = vals.iter().flat_map(|(v, n)| {
                    std::iter::repeat_n(in_parser.parse(v), (*n).max(0) as usize)
                });
                let result = ic
                    .convert_rows(rows)
                    .map_err(weir_operators::Error::from)
                    .and_then(|cols| Ok(RecordBatch::try_new(a2.input_schema.clone(), cols)?))
                    .and_then(|batch| a2.group_row(&batch))
                    .and_then(|cols| Ok(oc.convert_columns(&cols)?));
                match result {
                    Ok(r) => out.push((r.row(0).as_ref().to_vec(), 1)),
                    Err(e) => sh2.fail(OP, e),
                }
            })
        },
    );
    let a3 = agg.clone();
    let out_schema = Arc::new(Schema::new(
        shared
            .plan
            .output_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect::<Vec<Field>>(),
    ));
    reduced
        .inner
        .unary_frontier::<CapacityContainerBuilder<Vec<(u64, BatchMsg)>>, _, _, _>(
            Pipeline,
            "Changelog",
            move |cap, _info| {
                let oc = a3.output_codec();
                let mut stash: BTreeMap<u64, Pending> = BTreeMap::new();
                // What a restored view had emitted is out already: the same rows derived
                // again from its restored input, at time 0, cancel against it.
                let out_before: Vec<(Vec<u8>, isize)> = view
                    .borrow()
                    .emitted
                    .iter()
                    .map(|(r, c)| (r.clone(), -c))
                    .collect();
                if !out_before.is_empty() {
                    stash.insert(0, (cap.delayed(&0), out_before));
                }
                drop(cap);
                let mut snapshotted = false;
                move |(input, frontier), output| {
                    shared.guard(OP, || {
                        let port = output.output_index();
                        input.for_each(|cap, data| {
                            for ((_, row), t, diff) in data.drain(..) {
                                let entry = stash
                                    .entry(t)
                                    .or_insert_with(|| (cap.delayed(&t, port), Vec::new()));
                                entry.1.push((row, diff));
                            }
                        });
                        let Ok(oc) = oc.as_ref() else { return };
                        let parser = oc.parser();
                        while let Some(entry) = stash.first_entry() {
                            if frontier.less_equal(entry.key()) {
                                break;
                            }
                            let (cap, changes) = entry.remove();
                            let changes = consolidate(changes);
                            {
                                let mut v = view.borrow_mut();
                                for (r, d) in &changes {
                                    *v.emitted.entry(r.clone()).or_default() += d;
                                }
                            }
                            // Deletes first, then inserts, in one batch: a sink sees an update of
                            // a key (delete + insert) together.
                            let mut parts = Vec::new();
                            for (op, sign) in [("delete", -1isize), ("insert", 1isize)] {
                                let rows: Vec<_> = changes
                                    .iter()
                                    .filter(|(_, d)| d.signum() == sign)
                                    .flat_map(|(r, d)| {
                                        std::iter::repeat_n(parser.parse(r), d.unsigned_abs())
                                    })
                                    .collect();
                                if rows.is_empty() {
                                    continue;
                                }
                                let batch = oc
                                    .convert_rows(rows)
                                    .map_err(weir_operators::Error::from)
                                    .and_then(|cols| {
                                        Ok(RecordBatch::try_new(a3.output_schema.clone(), cols)?)
                                    });
                                let mut ready = Vec::new();
                                let r = batch.and_then(|b| run_chain(&mut post, b, &mut ready));
                                if let Err(e) = r {
                                    shared.fail(OP, e);
                                    continue;
                                }
                                for b in ready {
                                    let mut cols: Vec<ArrayRef> = b.columns().to_vec();
                                    cols.push(Arc::new(StringArray::from(vec![op; b.num_rows()])));
                                    match RecordBatch::try_new(out_schema.clone(), cols) {
                                        Ok(b) => parts.push(b),
                                        Err(e) => shared.fail(OP, e),
                                    }
                                }
                            }
                            if parts.is_empty() {
                                continue;
                            }
                            match concat_batches(&out_schema, &parts) {
                                Ok(b) => output.session(&cap).give((0u64, BatchMsg(b))),
                                Err(e) => shared.fail(OP, e),
                            }
                        }
                        if frontier.frontier().is_empty() && shared.suspending() && !snapshotted {
                            // Suspended at a cut: the view's rows are snapshotted.
                            snapshotted = true;
                            let v = view.borrow();
                            match v.snapshot(&a3) {
                                Ok(b) => shared.cut.add_state(&v.node, b),
                                Err(e) => shared.fail(OP, e),
                            }
                        }
                    })
                }
            },
        )
}

/// Sums the changes of each row, leaving out rows whose changes cancel.
fn consolidate(changes: Vec<(Vec<u8>, isize)>) -> Vec<(Vec<u8>, isize)> {
    let mut sum: BTreeMap<Vec<u8>, isize> = BTreeMap::new();
    for (r, d) in changes {
        *sum.entry(r).or_default() += d;
    }
    sum.into_iter().filter(|(_, d)| *d != 0).collect()
}
