//! What a job did: per pipeline, rows in and out, late and dead-letter rows, collected results
//! (a bare `SELECT`) and the connectors' counters; and closing a job's outputs when it ends.
use std::time::Duration;

use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::record_batch::RecordBatch;

use super::error::JobError;
use super::resources::JobResources;
use crate::dataflow::{DeadLetter, Output, Shared};
use crate::metrics::Metrics;

/// What one pipeline did.
#[derive(Debug, Clone)]
pub struct PipelineReport {
    /// Pipeline name.
    pub name: String,
    /// Rows read.
    pub rows_in: u64,
    /// Rows written.
    pub rows_out: u64,
    /// Late rows.
    pub late: u64,
    /// Dead-letter records.
    pub dead_letter: u64,
    /// Rows of a collected result (bare `SELECT`).
    pub results: Vec<RecordBatch>,
    /// Schema of the output.
    pub schema: Schema,
    /// The source connector's counters.
    pub source_metrics: Vec<(&'static str, u64)>,
    /// The sink connector's counters.
    pub sink_metrics: Vec<(&'static str, u64)>,
    /// The source's watermark at the end (event-time ms), once it had one.
    pub watermark: Option<i64>,
    /// Each stage's rows in and out.
    pub operators: Vec<OperatorRows>,
}

/// What a run (a job) did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Per pipeline.
    pub pipelines: Vec<PipelineReport>,
    /// Wall time.
    pub elapsed: Duration,
}

/// One pipeline's counters while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineMetrics {
    /// Pipeline name.
    pub name: String,
    /// Rows read.
    pub rows_in: u64,
    /// Rows written.
    pub rows_out: u64,
    /// Late rows.
    pub late: u64,
    /// Dead-letter records.
    pub dead_letter: u64,
    /// The source's lag (Kafka: records behind the end), when it reports one.
    pub lag: u64,
    /// The source connector's counters (messages, bytes, decode errors, reconnects, …).
    pub source: Vec<(&'static str, u64)>,
    /// The sink connector's counters.
    pub sink: Vec<(&'static str, u64)>,
    /// The source's watermark (event-time ms; the highest of its instances), once it has one.
    pub watermark: Option<i64>,
    /// Each stage's rows in and out, in plan order.
    pub operators: Vec<OperatorRows>,
}

/// One stage's rows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OperatorRows {
    /// Its kind (`filter`, `project`, `window_aggregate`, …).
    pub kind: &'static str,
    /// Rows it took in.
    pub rows_in: u64,
    /// Rows it gave out.
    pub rows_out: u64,
}

/// `sh`'s per-stage counters now.
fn operators_of(sh: &Shared) -> Vec<OperatorRows> {
    sh.plan
        .stages
        .iter()
        .zip(sh.operators.iter())
        .map(|(st, c)| OperatorRows {
            kind: weir_queries::job_plan::op_name(&st.op),
            rows_in: Metrics::get(&c.rows_in),
            rows_out: Metrics::get(&c.rows_out),
        })
        .collect()
}

/// Adds a later job's per-stage rows to a run's.
pub fn sum_operators(total: &mut Vec<OperatorRows>, more: Vec<OperatorRows>) {
    if total.is_empty() {
        *total = more;
        return;
    }
    for (t, m) in total.iter_mut().zip(more) {
        t.rows_in += m.rows_in;
        t.rows_out += m.rows_out;
    }
}

/// Adds a later job's connector counters to a run's (`lag` and `spooled` are readings, not
/// counts: the latest wins).
pub fn sum_counters(total: &mut Vec<(&'static str, u64)>, more: Vec<(&'static str, u64)>) {
    for (name, v) in more {
        match total.iter_mut().find(|(n, _)| *n == name) {
            Some((_, t)) if !matches!(name, "lag" | "spooled") => *t += v,
            Some((_, t)) => *t = v,
            None => total.push((name, v)),
        }
    }
}

impl PipelineMetrics {
    /// The counters of `sh` now.
    pub fn of(sh: &Shared) -> Self {
        // The query's inputs: its source, and the second input of each interval join.
        let inputs = || {
            std::iter::once(sh)
                .chain(&sh.right_inputs)
                .map(|s| &s.input)
        };
        PipelineMetrics {
            name: sh.plan.name.clone(),
            rows_in: inputs().map(|i| Metrics::get(&i.rows_in)).sum(),
            rows_out: Metrics::get(&sh.metrics.rows_out),
            late: inputs().map(|i| Metrics::get(&i.late)).sum(),
            dead_letter: inputs().map(|i| Metrics::get(&i.dead_letter)).sum(),
            lag: sh
                .source_metrics
                .lag
                .load(std::sync::atomic::Ordering::Relaxed),
            source: sh.source_metrics.snapshot(),
            sink: sh
                .sink_metrics
                .as_ref()
                .map(|m| m.snapshot())
                .unwrap_or_default(),
            watermark: watermark_of(&sh.max_watermark),
            operators: operators_of(sh),
        }
    }
}

/// A watermark as read, `None` before the source has one.
fn watermark_of(w: &std::sync::atomic::AtomicI64) -> Option<i64> {
    let v = w.load(std::sync::atomic::Ordering::Relaxed);
    (v != i64::MIN).then_some(v)
}

fn report(sh: &Shared) -> PipelineReport {
    let m = PipelineMetrics::of(sh);
    PipelineReport {
        name: m.name,
        rows_in: m.rows_in,
        rows_out: m.rows_out,
        late: m.late,
        dead_letter: m.dead_letter,
        results: match &sh.output {
            Output::Collect(v) => v.lock().map(|v| v.clone()).unwrap_or_default(),
            Output::Sink(_) => Vec::new(),
        },
        schema: sh.plan.output_schema.clone(),
        source_metrics: m.source,
        sink_metrics: m.sink,
        watermark: m.watermark,
        operators: m.operators,
    }
}

impl JobResources {
    /// Closes the job's sinks and flushes its dead letters (after every worker is done with
    /// it); gives the report, or the job's failure.
    pub fn close(&self) -> Result<RunReport, JobError> {
        let mut closing = Vec::new();
        // Decided once: a cut asked after this point finds a finished job (its sinks closed),
        // which is not suspended and has no snapshot to continue from.
        let suspending = self.cut.asked().is_some();
        if suspending {
            self.cut.set_suspended();
        }
        for (name, (s, _)) in &self.sinks {
            if let Ok(mut s) = s.lock() {
                // A job suspending at a cut makes its output durable and records how far.
                let r = match suspending {
                    true => s
                        .pre_commit(0)
                        .map(|p| p.into_iter().for_each(|p| self.cut.add_sink(name, p))),
                    false => s.finish(),
                };
                if let Err(e) = r {
                    closing.push(format!("sink '{name}': {e}"));
                }
            }
        }
        for sh in self.pipelines.iter().chain(&self.tables) {
            if let Some(DeadLetter::File(d)) = &sh.dead {
                if let Ok(mut d) = d.lock() {
                    if let Err(e) = d.flush() {
                        closing.push(format!("source '{}' dead letters: {e}", sh.source.name));
                    }
                }
            }
        }
        if let Some(e) = self.failure.lock().ok().and_then(|f| f.clone()) {
            return Err(e);
        }
        if let Some(m) = closing.into_iter().next() {
            let mut e = JobError::build(self.job, "", m);
            e.kind = super::error::JobErrorKind::Sink;
            e.retryable = true;
            return Err(e);
        }
        Ok(RunReport {
            pipelines: self.pipelines.iter().map(report).collect(),
            elapsed: self.started.elapsed(),
        })
    }

    /// Every pipeline's counters now.
    pub fn metrics(&self) -> Vec<PipelineMetrics> {
        self.pipelines.iter().map(PipelineMetrics::of).collect()
    }
}
