//! An operator with its rows counted: rows in and rows out of one stage, added to the
//! pipeline's per-operator counters (shared by every worker) — what the status and `/metrics`
//! show per operator.
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use weir_operators::{BatchOperator, EventTime, Result};

use crate::metrics::{Metrics, OperatorCounter};

/// `inner`, counted into `counters[index]`.
pub struct Counted {
    inner: Box<dyn BatchOperator>,
    counters: Arc<Vec<OperatorCounter>>,
    index: usize,
    /// A stage whose rows out are this one's rows in (the join or updating aggregate before
    /// it, which runs in an adapter of its own).
    after: Option<usize>,
}

impl Counted {
    /// Wraps `inner` (stage `index` of a pipeline with `counters`).
    pub fn wrap(
        inner: Box<dyn BatchOperator>,
        counters: &Arc<Vec<OperatorCounter>>,
        index: usize,
    ) -> Box<dyn BatchOperator> {
        Counted::wrap_after(inner, counters, index, None)
    }

    /// Wraps `inner` (stage `index`), counting its rows in also as the rows out of stage
    /// `after`.
    pub fn wrap_after(
        inner: Box<dyn BatchOperator>,
        counters: &Arc<Vec<OperatorCounter>>,
        index: usize,
        after: Option<usize>,
    ) -> Box<dyn BatchOperator> {
        match counters.get(index) {
            Some(_) => Box::new(Counted {
                inner,
                counters: counters.clone(),
                index,
                after,
            }),
            None => inner,
        }
    }

    /// Counts what was pushed to `out` past `before`.
    fn out(&self, out: &[RecordBatch], before: usize) {
        let rows: usize = out[before..].iter().map(RecordBatch::num_rows).sum();
        if let Some(c) = self.counters.get(self.index) {
            Metrics::add(&c.rows_out, rows);
        }
    }
}

impl BatchOperator for Counted {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn output_schema(&self) -> SchemaRef {
        self.inner.output_schema()
    }

    fn on_batch(&mut self, batch: &RecordBatch, out: &mut Vec<RecordBatch>) -> Result<()> {
        if let Some(c) = self.counters.get(self.index) {
            Metrics::add(&c.rows_in, batch.num_rows());
        }
        if let Some(c) = self.after.and_then(|a| self.counters.get(a)) {
            Metrics::add(&c.rows_out, batch.num_rows());
        }
        let before = out.len();
        let r = self.inner.on_batch(batch, out);
        self.out(out, before);
        r
    }

    fn on_watermark(&mut self, wm: EventTime, out: &mut Vec<RecordBatch>) -> Result<()> {
        let before = out.len();
        let r = self.inner.on_watermark(wm, out);
        self.out(out, before);
        r
    }

    fn state(&mut self) -> Option<&mut dyn weir_operators::state::OperatorState> {
        self.inner.state()
    }

    fn on_end(&mut self, out: &mut Vec<RecordBatch>) -> Result<()> {
        let before = out.len();
        let r = self.inner.on_end(out);
        self.out(out, before);
        r
    }
}
