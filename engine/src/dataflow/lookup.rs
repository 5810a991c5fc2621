//! The lookup-join adapter: stream rows (routed by key) wait until the table's frontier has
//! passed their event time, then each reads its key in the table's arrangement as of that time
//! (summing the key's updates at times ≤ the row's), so a row sees exactly the table version
//! valid when it happened. The reader's compaction follows the oldest waiting row, letting the
//! table forget versions no row can ask for. A job suspending at a cut snapshots the rows
//! still waiting (`lookup_state.rs`).
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::Rows;
use differential_dataflow::trace::cursor::{cursor_list, Cursor};
use differential_dataflow::trace::TraceReader;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::Stream;
use timely::progress::Antichain;
use weir_operators::join::LookupJoin;
use weir_operators::time::to_millis;
use weir_operators::{run_chain, BatchOperator};

use super::batch::BatchMsg;
use super::lookup_state;
use super::table::Table;
use super::Shared;

/// The operator's name in errors.
const OP: &str = "LookupJoin";

/// Rows of one batch waiting for the table.
struct Waiting {
    cap: Capability<u64>,
    batch: RecordBatch,
    keys: Rows,
    valid: Vec<bool>,
    times: Vec<u64>,
    rows: Vec<u32>,
}

/// Stream rows of `b` waiting, with their keys and as-of times (no earlier than `base`), to
/// travel at `cap`.
fn wait(
    join: &LookupJoin,
    b: RecordBatch,
    cap: Capability<u64>,
    base: u64,
) -> weir_operators::Result<Waiting> {
    let (keys, valid) = join.keys.encode(&b)?;
    let name = b.schema().field(join.as_of).name().clone();
    let times = to_millis(&name, b.column(join.as_of))?
        .into_iter()
        .map(|t| ((t + join.as_of_offset).max(0) as u64).max(base))
        .collect();
    Ok(Waiting {
        cap,
        rows: (0..b.num_rows() as u32).collect(),
        batch: b,
        keys,
        valid,
        times,
    })
}

/// Builds the lookup join of a routed stream with `table`.
pub fn build<'s>(
    input: Stream<'s, u64, Vec<(u64, BatchMsg)>>,
    table: &Table<'s>,
    shared: Shared,
    join: LookupJoin,
    mut post: Vec<Box<dyn BatchOperator>>,
    (node, restored): (String, Vec<RecordBatch>),
) -> Stream<'s, u64, Vec<(u64, BatchMsg)>> {
    let mut trace = table.trace.clone();
    let pact = Exchange::new(|(w, _): &(u64, BatchMsg)| *w);
    input.binary_frontier::<_, CapacityContainerBuilder<Vec<(u64, BatchMsg)>>, _, _, _, _>(
        table.stream.clone(),
        pact,
        Pipeline,
        "LookupJoin",
        move |cap, _info| {
            let codec = join.table_codec();
            // A restored join's waiting rows wait again, at the times they travelled at.
            let mut waiting: Vec<Waiting> = Vec::new();
            for b in &restored {
                match lookup_state::restore(b)
                    .and_then(|(rows, t)| wait(&join, rows, cap.delayed(&t), t))
                {
                    Ok(w) => waiting.push(w),
                    Err(e) => shared.fail(OP, e),
                }
            }
            drop(cap);
            let mut ready = Vec::new();
            // The table's last watermark: when the job suspends its input ends there, and
            // rows after it keep waiting (the table is cut, not complete).
            let mut last_table = 0u64;
            let mut snapshotted = false;
            move |(input, frontier), (table_in, table_frontier), output| {
                shared.guard(OP, || {
                    let port = output.output_index();
                    input.for_each(|cap, data| {
                        let Some(base) = cap.least().copied() else {
                            return;
                        };
                        for (_, b) in data.drain(..) {
                            match wait(&join, b.0, cap.delayed(&base, port), base) {
                                Ok(w) => waiting.push(w),
                                Err(e) => shared.fail(OP, e),
                            }
                        }
                    });
                    table_in.for_each(|_, data| data.clear());
                    let Ok(codec) = codec.as_ref() else {
                        shared.fail(OP, "lookup join: building the row decoder");
                        return;
                    };
                    let suspending = shared.suspending();
                    let table_at = table_frontier.frontier().iter().min().copied();
                    if let Some(t) = table_at {
                        last_table = t;
                    }
                    let passed = |t: u64| match table_at {
                        Some(_) => !table_frontier.less_equal(&t),
                        None if suspending => t < last_table,
                        None => true,
                    };
                    if waiting
                        .iter()
                        .any(|w| w.rows.iter().any(|r| passed(w.times[*r as usize])))
                    {
                        let Some(batches) = trace.batches_through(Antichain::new().borrow()) else {
                            shared.fail(OP, "lookup join: reading the table");
                            return;
                        };
                        let (mut cursor, storage) = cursor_list(batches);
                        for w in waiting.iter_mut() {
                            let (now, later): (Vec<u32>, Vec<u32>) =
                                w.rows.iter().partition(|r| passed(w.times[**r as usize]));
                            if now.is_empty() {
                                continue;
                            }
                            w.rows = later;
                            let mut found = Vec::with_capacity(now.len());
                            for r in &now {
                                let i = *r as usize;
                                if !w.valid[i] {
                                    found.push(None);
                                    continue;
                                }
                                let key = w.keys.row(i).as_ref().to_vec();
                                let at = w.times[i];
                                let mut hit = None;
                                cursor.rewind_keys(&storage);
                                cursor.seek_key(&storage, &key);
                                if cursor.get_key(&storage) == Some(&key) {
                                    while let Some(val) = cursor.get_val(&storage) {
                                        let mut count = 0isize;
                                        cursor.map_times(&storage, |t, d| {
                                            if *t <= at {
                                                count += *d;
                                            }
                                        });
                                        if count > 0 {
                                            hit = Some(val.clone());
                                        }
                                        cursor.step_val(&storage);
                                    }
                                }
                                found.push(hit);
                            }
                            match join.join(codec, &w.batch, &now, &found) {
                                Ok(Some(b)) => {
                                    if let Err(e) = run_chain(&mut post, b, &mut ready) {
                                        shared.fail(OP, e);
                                    }
                                    let mut session = output.session(&w.cap);
                                    for b in ready.drain(..) {
                                        session.give((0u64, BatchMsg(b)));
                                    }
                                }
                                Ok(None) => {}
                                Err(e) => shared.fail(OP, e),
                            }
                        }
                        waiting.retain(|w| !w.rows.is_empty());
                    }
                    let ended = frontier.frontier().is_empty() && table_at.is_none();
                    if ended && suspending && !snapshotted {
                        snapshotted = true;
                        for w in waiting.drain(..) {
                            let t = *w.cap.time();
                            match lookup_state::snapshot(&w.batch, &w.rows, &w.keys, t) {
                                Ok(b) => shared.cut.add_state(&node, vec![b]),
                                Err(e) => shared.fail(OP, e),
                            }
                        }
                    }
                    // Versions older than every waiting (and future) row can be merged.
                    let mut oldest: Option<u64> = frontier.frontier().iter().min().copied();
                    for w in &waiting {
                        oldest = Some(oldest.map_or(*w.cap.time(), |o| o.min(*w.cap.time())));
                    }
                    match oldest {
                        Some(t) => trace.set_logical_compaction(Antichain::from_elem(t).borrow()),
                        None => trace.set_logical_compaction(Antichain::new().borrow()),
                    }
                    trace.set_physical_compaction(table_frontier.frontier());
                })
            }
        },
    )
}
