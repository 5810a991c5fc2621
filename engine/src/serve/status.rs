//! A pipeline's status as the API gives it: its state and failure, its checkpoints, and each
//! of its queries' (`CREATE PIPELINE`s') counters over the whole run — the jobs that ended at
//! a checkpoint and the one running now.
use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::pipeline::{now_ms, Failure, Served, State};

/// A pipeline's checkpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointInfo {
    /// Whether it keeps them.
    pub enabled: bool,
    /// Why it does not (a source that cannot continue from a position).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub off_because: Option<String>,
    /// Checkpoints written by this run.
    pub taken: u64,
    /// The checkpoint this run continued from, if any.
    pub restored_from: Option<u64>,
    /// Time to read it (ms).
    pub restore_ms: u64,
    /// The last checkpoint's time from asking for it until it was on disk (ms).
    pub last_duration_ms: u64,
    /// How long the job paused for the last cut (ms).
    pub last_pause_ms: u64,
    /// The last checkpoint's size on disk.
    pub last_bytes: u64,
    /// The last checkpoint's state rows.
    pub last_rows: u64,
}

/// One query's counters.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryStatus {
    /// The `CREATE PIPELINE` name.
    pub name: String,
    /// Rows read.
    pub rows_in: u64,
    /// Rows written.
    pub rows_out: u64,
    /// Late rows.
    pub late: u64,
    /// Dead-letter records.
    pub dead_letter: u64,
    /// The source's lag (Kafka: records behind the end).
    pub lag: u64,
    /// The source connector's counters.
    pub source: BTreeMap<String, u64>,
    /// The sink connector's counters.
    pub sink: BTreeMap<String, u64>,
    /// The source's watermark: event time (ms since the Unix epoch) below which it expects no
    /// more rows; absent before its first row.
    pub watermark_ms: Option<i64>,
    /// How far the watermark is behind the wall clock (ms): for live sources, the pipeline's
    /// delay (its lateness allowance plus any backlog).
    pub watermark_lag_ms: Option<i64>,
    /// Each operator of the query, in plan order.
    pub operators: Vec<OperatorStatus>,
}

/// One operator's rows (summed over workers and over the jobs of the run).
#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorStatus {
    /// Its node id in the job graph (`<job>/<query>/<stage>/<kind>`, as `…/graph` shows).
    pub node: String,
    /// Its kind: `assign_window`, `filter`, `project`, `window_aggregate`, `features`, …
    pub kind: String,
    /// Rows it took in (0 for joins and updating aggregates, counted by their query).
    pub rows_in: u64,
    /// Rows it gave out.
    pub rows_out: u64,
}

/// A pipeline's status.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// Its name.
    pub name: String,
    /// Where it stands.
    pub state: State,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
    /// Its run started at (ms since the Unix epoch; 0: never started).
    pub started_ms: u64,
    /// Seconds since then.
    pub uptime_s: f64,
    /// Its checkpoints.
    pub checkpoints: CheckpointInfo,
    /// Each query's counters.
    pub queries: Vec<QueryStatus>,
}

fn counters(c: &[(&'static str, u64)]) -> BTreeMap<String, u64> {
    c.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// The status of `s` now.
pub fn status_of(s: &Served) -> Status {
    let (state, error, control, started_ms) = s.state();
    let c = control.checkpoints();
    let metrics = control.metrics();
    let graph = weir_queries::job_plan::JobPlan::new(&s.name(), s.plan.clone());
    let queries = s
        .plan
        .pipelines
        .iter()
        .enumerate()
        .map(|(pi, p)| {
            let m = metrics.iter().find(|m| m.name == p.name);
            let operators = m
                .map(|m| m.operators.as_slice())
                .unwrap_or_default()
                .iter()
                .enumerate()
                .map(|(i, o)| OperatorStatus {
                    node: graph
                        .stage_id(pi, i)
                        .map(|n| n.0.clone())
                        .unwrap_or_default(),
                    kind: o.kind.to_string(),
                    rows_in: o.rows_in,
                    rows_out: o.rows_out,
                })
                .collect();
            QueryStatus {
                name: p.name.clone(),
                rows_in: m.map_or(0, |m| m.rows_in),
                rows_out: m.map_or(0, |m| m.rows_out),
                late: m.map_or(0, |m| m.late),
                dead_letter: m.map_or(0, |m| m.dead_letter),
                lag: m.map_or(0, |m| m.lag),
                source: m.map(|m| counters(&m.source)).unwrap_or_default(),
                sink: m.map(|m| counters(&m.sink)).unwrap_or_default(),
                watermark_ms: m.and_then(|m| m.watermark),
                watermark_lag_ms: m.and_then(|m| m.watermark).map(|w| now_ms() as i64 - w),
                operators,
            }
        })
        .collect();
    let running =
        started_ms > 0 && !matches!(state, State::Stopped | State::Finished | State::Failed);
    Status {
        name: s.name(),
        state,
        error,
        started_ms,
        uptime_s: match running {
            true => now_ms().saturating_sub(started_ms) as f64 / 1000.0,
            false => 0.0,
        },
        checkpoints: CheckpointInfo {
            enabled: s.checkpoints.is_ok(),
            off_because: s.checkpoints.clone().err(),
            taken: c.taken,
            restored_from: c.restored,
            restore_ms: c.restore.as_millis() as u64,
            last_duration_ms: c.last_duration.as_millis() as u64,
            last_pause_ms: c.last_pause.as_millis() as u64,
            last_bytes: c.last_bytes,
            last_rows: c.last_rows as u64,
        },
        queries,
    }
}
