//! Routing rows to the worker that holds their key: by DataFusion's hash of the group keys
//! (aggregates), or by differential's hash of the encoded join key (joins — the same hash
//! differential uses to place a table's keys, so a stream row meets its table rows). `build`
//! re-routes a stream between two stateful operators, or after a source several pipelines
//! read (running the pipeline's stateless operators first).
use datafusion::arrow::array::UInt32Array;
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::record_batch::RecordBatch;
use differential_dataflow::Hashable;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::Stream;
use weir_operators::exchange::Partitioner;
use weir_operators::join::KeyEncoder;
use weir_operators::{run_chain, BatchOperator};

use super::batch::BatchMsg;
use super::Shared;

/// The operator's name in errors.
const OP: &str = "Route";

/// How rows find their worker.
pub enum Router {
    /// Hash of the group keys.
    Hash(Partitioner),
    /// Differential's hash of the encoded join key.
    Key(KeyEncoder),
}

/// The worker of an encoded key among `peers` (as differential's exchange places it).
pub fn worker_of(key: &[u8], peers: usize) -> usize {
    (key_hash(key) % peers as u64) as usize
}

/// Differential's hash of an encoded key (what [`worker_of`] places it by).
pub fn key_hash(key: &[u8]) -> u64 {
    key.hashed()
}

impl Router {
    /// Splits `batch` into one part per worker.
    pub fn split(
        &self,
        batch: &RecordBatch,
        peers: usize,
    ) -> weir_operators::Result<Vec<(usize, RecordBatch)>> {
        match self {
            Router::Hash(p) => p.split(batch, peers),
            Router::Key(k) => {
                if peers <= 1 || batch.num_rows() == 0 {
                    return Ok(vec![(0, batch.clone())]);
                }
                let (rows, _) = k.encode(batch)?;
                let mut parts: Vec<Vec<u32>> = vec![Vec::new(); peers];
                for i in 0..batch.num_rows() {
                    parts[worker_of(rows.row(i).as_ref(), peers)].push(i as u32);
                }
                let mut out = Vec::new();
                for (w, idx) in parts.into_iter().enumerate() {
                    if !idx.is_empty() {
                        out.push((w, take_record_batch(batch, &UInt32Array::from(idx))?));
                    }
                }
                Ok(out)
            }
        }
    }
}

/// `batch` split for the workers `router` sends its rows to (all of it to worker 0 without a
/// router: the sink's exchange takes it from there).
pub fn parts(
    router: Option<&Router>,
    batch: RecordBatch,
    peers: usize,
) -> weir_operators::Result<Vec<(usize, RecordBatch)>> {
    match router {
        None => Ok(vec![(0, batch)]),
        Some(r) => r.split(&batch, peers),
    }
}

/// Re-routes a stream on the worker that produced it (the next operator exchanges): runs
/// `chain` (the stateless operators of a pipeline reading a shared source, or none between two
/// stateful operators) on every batch and splits the rows by `router`.
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
                            if chain.is_empty() {
                                out.push(b.0);
                            } else if let Err(e) = run_chain(&mut chain, b.0, &mut out) {
                                shared.fail_chain(OP, e);
                            }
                            for b in out.drain(..) {
                                match parts(router.as_ref(), b, peers) {
                                    Ok(parts) => {
                                        for (w, p) in parts {
                                            session.give((w as u64, BatchMsg(p)));
                                        }
                                    }
                                    Err(e) => shared.fail(OP, e),
                                }
                            }
                        }
                    });
                })
            }
        },
    )
}
