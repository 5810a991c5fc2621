//! weir operators: pure computation on Arrow `RecordBatch`es.
//!
//! Entry point: trait [`BatchOperator`]. Every operator takes batches in, gives batches out, and
//! is told when the event-time watermark advances (`on_watermark`) so stateful operators can emit
//! what is complete. No timely and no I/O here: the `engine` crate adapts these operators to
//! timely, and the `queries` crate builds them from a plan.
//!
//! Families:
//! - `expr/`: filter and projection over DataFusion `PhysicalExpr`s.
//! - `window/`: window assignment (tumble, hop, session) and windowed aggregation with
//!   DataFusion accumulators.
//! - `drift/`: drift statistics against named baselines, as aggregate functions.
//! - `exchange/`: splitting batches by key hash for exchange between workers.
//! - `features/`: per-key feature functions over event time (OVER … PARTITION BY … ORDER BY).
//! - `join/`: join keys, lookup joins against tables, interval joins of two streams.
//! - `time`: event-time extraction and window column construction.
//!
//! How to add an operator:
//! 1. Put it in its own file in the family folder, implementing [`BatchOperator`].
//! 2. Keep its state behind [`state::OperatorState`] so checkpoints can snapshot it later.
//! 3. Unit-test it on small batches against an obviously-correct reference in the same file.

pub mod drift;
pub mod error;
pub mod exchange;
pub mod expr;
pub mod features;
pub mod join;
pub mod provenance;
pub mod state;
pub mod time;
pub mod updating;
pub mod window;

pub use error::{Error, Result};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

/// Event time in milliseconds since the epoch; also the timely timestamp.
pub type EventTime = i64;

/// A synchronous operator over record batches. The engine owns capabilities and frontiers; the
/// operator sees batches and watermarks only.
pub trait BatchOperator: Send {
    /// Short name for `explain` and errors.
    fn name(&self) -> &'static str;
    /// Schema of every batch this operator emits.
    fn output_schema(&self) -> SchemaRef;
    /// Takes one input batch; pushes zero or more output batches.
    fn on_batch(&mut self, batch: &RecordBatch, out: &mut Vec<RecordBatch>) -> Result<()>;
    /// The watermark passed `wm`: no later input row has event time below it.
    fn on_watermark(&mut self, _wm: EventTime, _out: &mut Vec<RecordBatch>) -> Result<()> {
        Ok(())
    }
    /// The operator's state, for checkpoints (`None`: it keeps none).
    fn state(&mut self) -> Option<&mut dyn state::OperatorState> {
        None
    }
    /// End of input: emit everything still held.
    fn on_end(&mut self, out: &mut Vec<RecordBatch>) -> Result<()> {
        self.on_watermark(EventTime::MAX, out)
    }
}

/// Runs a chain of stateless operators over one batch.
pub fn run_chain(
    chain: &mut [Box<dyn BatchOperator>],
    batch: RecordBatch,
    out: &mut Vec<RecordBatch>,
) -> Result<()> {
    // A model switched while the pipeline runs takes effect between batches.
    weir_models::begin_batch();
    let mut current = vec![batch];
    for op in chain.iter_mut() {
        let mut next = Vec::new();
        for b in &current {
            // A panic in one operator (a bug in weir or in a model evaluator) becomes that
            // operator's error, so the job fails naming it and the worker goes on.
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                op.on_batch(b, &mut next)
            }));
            match run {
                Ok(r) => r?,
                Err(p) => {
                    return Err(Error::Panicked {
                        operator: op.name(),
                        message: panic_message(p.as_ref()),
                    })
                }
            }
        }
        current = next;
    }
    out.extend(current.into_iter().filter(|b| b.num_rows() > 0));
    Ok(())
}

/// The text of a panic's payload.
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

#[cfg(test)]
mod tests {
    //! A panic inside a chain becomes the panicking operator's error.
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    struct Boom(SchemaRef);

    impl BatchOperator for Boom {
        fn name(&self) -> &'static str {
            "boom"
        }
        fn output_schema(&self) -> SchemaRef {
            self.0.clone()
        }
        fn on_batch(&mut self, _: &RecordBatch, _: &mut Vec<RecordBatch>) -> Result<()> {
            let v: Vec<i64> = Vec::new();
            let i = v.len() + 3;
            let _ = v[i];
            Ok(())
        }
    }

    #[test]
    fn a_panicking_operator_is_named() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1]))])
            .unwrap();
        let mut chain: Vec<Box<dyn BatchOperator>> = vec![Box::new(Boom(schema))];
        let err = run_chain(&mut chain, batch, &mut Vec::new()).unwrap_err();
        match err {
            Error::Panicked { operator, message } => {
                assert_eq!(operator, "boom");
                assert!(message.contains("index out of bounds"), "{message}");
            }
            other => panic!("{other}"),
        }
    }
}
