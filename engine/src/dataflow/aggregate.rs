//! The stateful adapter: after the exchange by key, feeds batches to a windowed aggregate and
//! tells it the watermark (the input frontier); closed windows go through the operators after
//! the aggregate (HAVING, the SELECT list) and out at a capability held at the frontier. A job
//! suspending at a cut snapshots the operator's state at the end of input instead.
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::Stream;
use weir_operators::{run_chain, BatchOperator, EventTime};

use super::batch::BatchMsg;
use super::Shared;

/// The operator's name in errors.
const OP: &str = "WindowAggregate";

/// Builds the aggregate operator.
pub fn build<'s>(
    input: Stream<'s, u64, Vec<(u64, BatchMsg)>>,
    shared: Shared,
    mut op: Box<dyn BatchOperator>,
    mut post: Vec<Box<dyn BatchOperator>>,
    node: String,
) -> Stream<'s, u64, Vec<(u64, BatchMsg)>> {
    let pact = Exchange::new(|(t, _): &(u64, BatchMsg)| *t);
    input.unary_frontier::<CapacityContainerBuilder<Vec<(u64, BatchMsg)>>, _, _, _>(
        pact,
        "WindowAggregate",
        move |cap, _info| {
            // A restored operator's open state may be emitted before any row arrives: it
            // keeps the initial capability until then.
            let restored = op.state().is_some_and(|s| s.open_entries() > 0);
            let mut held: Option<Capability<u64>> = restored.then_some(cap);
            let mut out = Vec::new();
            let mut ready = Vec::new();
            let mut snapshotted = false;
            move |(input, frontier), output| {
                shared.guard(OP, || {
                    let port = output.output_index();
                    input.for_each(|cap, data| {
                        let earlier = match (held.as_ref(), cap.least()) {
                            (Some(h), Some(t)) => t < h.time(),
                            _ => true,
                        };
                        if earlier {
                            held = cap.retain_least(port);
                        }
                        for (_, b) in data.drain(..) {
                            if let Err(e) = op.on_batch(&b.0, &mut out) {
                                shared.fail(OP, e);
                            }
                        }
                    });
                    let least = frontier.frontier().iter().min().copied();
                    let wm: EventTime = match least {
                        Some(t) => t as EventTime,
                        None => EventTime::MAX,
                    };
                    if least.is_none() && shared.suspending() {
                        // Suspended at a cut: what is open is snapshotted, not closed.
                        if !snapshotted {
                            snapshotted = true;
                            if let Some(s) = op.state() {
                                match s.snapshot() {
                                    Ok(b) => shared.cut.add_state(&node, b),
                                    Err(e) => shared.fail(OP, e),
                                }
                            }
                        }
                    } else if let Err(e) = op.on_watermark(wm, &mut out) {
                        shared.fail(OP, e);
                    }
                    for b in out.drain(..) {
                        if let Err(e) = run_chain(&mut post, b, &mut ready) {
                            shared.fail(OP, e);
                        }
                    }
                    if !ready.is_empty() {
                        if let Some(h) = &held {
                            let mut session = output.session(h);
                            for b in ready.drain(..) {
                                session.give((0u64, BatchMsg(b)));
                            }
                        } else {
                            ready.clear();
                        }
                    }
                    match least {
                        Some(t) => {
                            if let Some(h) = held.as_mut() {
                                if *h.time() < t {
                                    h.downgrade(&t);
                                }
                            }
                        }
                        None => held = None,
                    }
                })
            }
        },
    )
}
