//! Wiring one worker's prepared operators into one timely dataflow: each table's source and
//! arrangement; each source instance once, feeding every pipeline that reads it (through a
//! route operator per pipeline, running its stateless operators, when there are several); each pipeline's steps — routed
//! between stateful operators — and its sink.
use std::collections::HashMap;

use timely::dataflow::{Scope, Stream};
use timely::worker::Worker;

use super::build::{IntervalStep, Reader, Stateful, WorkerParts};
use crate::dataflow::batch::BatchMsg;
use crate::dataflow::table::Table;
use crate::dataflow::{aggregate, interval, lookup, route, sink, source, table, updating};

type Rows<'s> = Stream<'s, u64, Vec<(u64, BatchMsg)>>;

/// Installs the dataflow; gives its index.
pub fn install(worker: &mut Worker, parts: WorkerParts) -> usize {
    let index = worker.next_dataflow_index();
    let peers = worker.peers();
    worker.dataflow::<u64, _, _>(|scope| {
        let mut arranged = HashMap::new();
        for (t, parts, keys) in parts.tables {
            let stream = source::build(scope, t.clone(), parts);
            arranged.insert(t.source.name.clone(), table::build(stream, t, keys));
        }
        for read in parts.reads {
            let stream = source::build(scope, read.shared, read.parts);
            for r in read.readers {
                pipeline(scope, stream.clone(), r, &arranged, peers);
            }
        }
    });
    index
}

/// One pipeline after its source: its fan-out (if the source has other readers), its steps and
/// its sink.
fn pipeline<'s>(
    scope: Scope<'s, u64>,
    mut stream: Rows<'s>,
    r: Reader,
    arranged: &HashMap<String, Table<'s>>,
    peers: usize,
) {
    let sh = r.shared;
    if let Some(f) = r.fanned {
        stream = route::build(stream, sh.clone(), f.chain, f.router, peers);
    }
    for (i, step) in r.steps.into_iter().enumerate() {
        if i > 0 {
            if let Some(router) = step.router {
                stream = route::build(stream, sh.clone(), Vec::new(), Some(router), peers);
            }
        }
        let node = step.node;
        let counted = step.counted;
        if let Some((at, _)) = counted {
            stream = count(stream, &sh, at, true);
        }
        stream = match step.op {
            Stateful::Window(op) => aggregate::build(stream, sh.clone(), op, step.post, node),
            Stateful::Updating(agg, restored) => {
                let state = crate::dataflow::view_state::View::restored(&agg, &restored, node);
                updating::build(stream, sh.clone(), agg, step.post, state)
            }
            Stateful::Lookup(join, name, restored) => match arranged.get(&name) {
                Some(t) => {
                    let state = (node, restored);
                    lookup::build(stream, t, sh.clone(), join, step.post, state)
                }
                None => {
                    sh.fail("LookupJoin", format!("table '{name}' was not built"));
                    stream
                }
            },
            Stateful::Interval(step_parts) => {
                let IntervalStep {
                    join,
                    right,
                    shared,
                } = *step_parts;
                let right = source::build(scope, shared, right);
                // The join's rows in are both of its inputs.
                let right = match counted {
                    Some((at, _)) => count(right, &sh, at, true),
                    None => right,
                };
                interval::build(stream, right, sh.clone(), join, step.post, node)
            }
        };
        if let Some((at, true)) = counted {
            stream = count(stream, &sh, at, false);
        }
    }
    sink::build(stream, sh);
}

/// `stream`, its rows counted as stage `at`'s rows in (or out).
fn count<'s>(stream: Rows<'s>, sh: &crate::dataflow::Shared, at: usize, rows_in: bool) -> Rows<'s> {
    use timely::dataflow::operators::Inspect;
    let Some(_) = sh.operators.get(at) else {
        return stream;
    };
    let counters = sh.operators.clone();
    stream.inspect(move |(_, b): &(u64, BatchMsg)| {
        let c = &counters[at];
        let n = b.0.num_rows();
        crate::metrics::Metrics::add(if rows_in { &c.rows_in } else { &c.rows_out }, n);
    })
}
