//! The fan-out adapter: a source that several pipelines of a job read is read once; each
//! pipeline then runs its own stateless operators (its `WHERE`, its projections before the
//! first stateful operator) on every batch, on the same worker, and splits the rows by its own
//! key for the exchange to its first stateful operator.
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::Stream;
use weir_operators::{run_chain, BatchOperator};

use super::batch::BatchMsg;
use super::route::Router;
use super::Shared;

/// The operator's name in errors.
const OP: &str = "FanOut";

/// Builds one pipeline's fan-out from a shared source's stream.
pub fn build<'s>(
    input: Stream<'s, u64, Vec<(u64, BatchMsg)>>,
    shared: Shared,
    mut chain: Vec<Box<dyn BatchOperator>>,
    router: Option<Router>,
    peers: usize,
) -> Stream<'s, u64, Vec<(u64, BatchMsg)>> {
    input.unary::<CapacityContainerBuilder<Vec<(u64, BatchMsg)>>, _, _, _>(
        Pipeline,
        OP,
        move |_cap, _info| {
            let mut out = Vec::new();
            move |input, output| {
                shared.guard(OP, || {
                    input.for_each(|cap, data| {
                        let mut session = output.session(&cap);
                        for (_, b) in data.drain(..) {
                            if let Err(e) = run_chain(&mut chain, b.0, &mut out) {
                                shared.fail_chain(OP, e);
                            }
                            for b in out.drain(..) {
                                match &router {
                                    None => session.give((0u64, BatchMsg(b))),
                                    Some(r) => match r.split(&b, peers) {
                                        Ok(parts) => {
                                            for (w, p) in parts {
                                                session.give((w as u64, BatchMsg(p)));
                                            }
                                        }
                                        Err(e) => shared.fail(OP, e),
                                    },
                                }
                            }
                        }
                    });
                })
            }
        },
    )
}
