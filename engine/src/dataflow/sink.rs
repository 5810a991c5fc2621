//! The sink adapter: every worker sends its rows to worker 0, which writes them to the sink (or
//! collects them) and closes the sink when the input frontier is empty — unless the job is
//! suspending at a cut: then the job's close makes the output durable (`pre_commit`) and the
//! sink goes on in the job that continues from the snapshot. A pipeline with a
//! `limit` tells its sources to stop once that many rows arrived.
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::Stream;

use super::batch::BatchMsg;
use super::{Output, Shared};
use crate::metrics::Metrics;

/// The operator's name in errors.
const OP: &str = "Sink";

/// Builds the sink operator.
pub fn build(input: Stream<'_, u64, Vec<(u64, BatchMsg)>>, shared: Shared) {
    let pact = Exchange::new(|_: &(u64, BatchMsg)| 0u64);
    let mut finished = false;
    input.sink(pact, "Sink", move |(input, frontier)| {
        shared.guard(OP, || {
            input.for_each(|_cap, data| {
                for (_, b) in data.drain(..) {
                    if b.0.num_rows() == 0 {
                        continue;
                    }
                    Metrics::add(&shared.metrics.rows_out, b.0.num_rows());
                    if let Some(limit) = shared.plan.limit {
                        if Metrics::get(&shared.metrics.rows_out) >= limit {
                            shared
                                .stop
                                .store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    match &shared.output {
                        Output::Sink(s) => {
                            let started = std::time::Instant::now();
                            let r = s
                                .lock()
                                .map_err(|e| e.to_string())
                                .and_then(|mut s| s.write(&b.0).map_err(|e| e.to_string()));
                            if let Some(m) = &shared.sink_metrics {
                                let us = started.elapsed().as_micros() as u64;
                                weir_connectors::ConnectorMetrics::add(&m.blocked_us, us);
                            }
                            if let Err(e) = r {
                                shared.fail(OP, e);
                            }
                        }
                        Output::Collect(v) => {
                            if let Ok(mut v) = v.lock() {
                                v.push(b.0);
                            }
                        }
                    }
                }
            });
            if frontier.frontier().is_empty() && !finished {
                finished = true;
                let suspending = shared.cut.asked().is_some();
                if let (Output::Sink(s), false) = (&shared.output, suspending) {
                    let r = s
                        .lock()
                        .map_err(|e| e.to_string())
                        .and_then(|mut s| s.finish().map_err(|e| e.to_string()));
                    if let Err(e) = r {
                        shared.fail(OP, e);
                    }
                }
            }
        })
    });
}
