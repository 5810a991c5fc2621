//! The interval-join adapter: both streams routed by key; each arriving batch is paired with
//! the other side's stored rows at once, and as the two input frontiers — the sides'
//! watermarks — advance, rows that can no longer pair are freed; a LEFT JOIN's unmatched left
//! rows are emitted then. Output always travels at the time its left row
//! arrived at (a capability is held for every time that still has stored left rows), so a
//! window downstream over the left row's event time never sees a row behind its frontier.
//! A job suspending at a cut snapshots the stored rows at the end of input instead of freeing
//! them; a restored join holds a capability for every restored left time.
use std::collections::BTreeMap;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::Stream;
use weir_operators::join::IntervalJoin;
use weir_operators::state::OperatorState;
use weir_operators::{run_chain, BatchOperator, EventTime};

use super::batch::BatchMsg;
use super::Shared;

/// The operator's name in errors.
const OP: &str = "IntervalJoin";

/// Builds the interval join of two routed streams.
pub fn build<'s>(
    left: Stream<'s, u64, Vec<(u64, BatchMsg)>>,
    right: Stream<'s, u64, Vec<(u64, BatchMsg)>>,
    shared: Shared,
    mut join: IntervalJoin,
    mut post: Vec<Box<dyn BatchOperator>>,
    node: String,
) -> Stream<'s, u64, Vec<(u64, BatchMsg)>> {
    let by_worker = |(w, _): &(u64, BatchMsg)| *w;
    left.binary_frontier::<_, CapacityContainerBuilder<Vec<(u64, BatchMsg)>>, _, _, _, _>(
        right,
        Exchange::new(by_worker),
        Exchange::new(by_worker),
        "IntervalJoin",
        move |cap, _info| {
            // Restored left rows travel at the times they arrived at in the job snapshotted.
            let mut caps: BTreeMap<u64, Capability<u64>> = join
                .live_caps()
                .into_iter()
                .map(|t| (t, cap.delayed(&t)))
                .collect();
            drop(cap);
            let mut ready = Vec::new();
            let mut snapshotted = false;
            // The last watermark of each side: a side whose input ends because the job is
            // suspending stays at it (its rows are not over, only cut).
            let mut last: (EventTime, EventTime) = (0, 0);
            move |(lin, lfront), (rin, rfront), output| {
                shared.guard(OP, || {
                    let port = output.output_index();
                    lin.for_each(|cap, data| {
                        let Some(t) = cap.least().copied() else {
                            return;
                        };
                        caps.entry(t).or_insert_with(|| cap.delayed(&t, port));
                        for (_, b) in data.drain(..) {
                            match join.on_left(&b.0, t) {
                                Ok(out) => {
                                    for o in out {
                                        if let Err(e) = run_chain(&mut post, o, &mut ready) {
                                            shared.fail(OP, e);
                                        }
                                    }
                                }
                                Err(e) => shared.fail(OP, e),
                            }
                        }
                        let mut session = output.session(&cap);
                        for b in ready.drain(..) {
                            session.give((0u64, BatchMsg(b)));
                        }
                    });
                    rin.for_each(|cap, data| {
                        let Some(t) = cap.least().copied() else {
                            return;
                        };
                        for (_, b) in data.drain(..) {
                            let pairs = match join.on_right(&b.0, t) {
                                Ok(p) => p,
                                Err(e) => {
                                    shared.fail(OP, e);
                                    continue;
                                }
                            };
                            // Pairs travel at their left row's time.
                            for (left, o) in pairs {
                                if let Err(e) = run_chain(&mut post, o, &mut ready) {
                                    shared.fail(OP, e);
                                }
                                match caps.get(&left) {
                                    Some(c) => {
                                        let mut session = output.session(c);
                                        for b in ready.drain(..) {
                                            session.give((0u64, BatchMsg(b)));
                                        }
                                    }
                                    None => {
                                        shared.fail(
                                            OP,
                                            "interval join: no capability for a left row",
                                        );
                                        ready.clear();
                                    }
                                }
                            }
                        }
                    });
                    let suspending = shared.suspending();
                    let wm = |f: &[u64], last: &mut EventTime| match f.iter().min() {
                        Some(t) => {
                            *last = *t as EventTime;
                            *last
                        }
                        None if suspending => *last,
                        None => EventTime::MAX,
                    };
                    let ended = lfront.frontier().is_empty() && rfront.frontier().is_empty();
                    if ended && suspending {
                        // Suspended at a cut: stored rows are snapshotted, not freed.
                        if !snapshotted {
                            snapshotted = true;
                            match join.snapshot() {
                                Ok(b) => shared.cut.add_state(&node, b),
                                Err(e) => shared.fail(OP, e),
                            }
                        }
                        caps.clear();
                        return;
                    }
                    let lw = wm(&lfront.frontier(), &mut last.0);
                    let rw = wm(&rfront.frontier(), &mut last.1);
                    match join.expire(lw, rw) {
                        Ok(freed) => {
                            for (t, b) in freed {
                                if let Err(e) = run_chain(&mut post, b, &mut ready) {
                                    shared.fail(OP, e);
                                }
                                if let Some(cap) = caps.get(&t) {
                                    let mut session = output.session(cap);
                                    for b in ready.drain(..) {
                                        session.give((0u64, BatchMsg(b)));
                                    }
                                } else {
                                    shared.fail(
                                        OP,
                                        "interval join: no capability for unmatched rows",
                                    );
                                    ready.clear();
                                }
                            }
                        }
                        Err(e) => shared.fail(OP, e),
                    }
                    let live = join.live_caps();
                    caps.retain(|t, _| live.binary_search(t).is_ok());
                })
            }
        },
    )
}
