//! weir's plan: a serde-serializable description of every source, sink and pipeline in a
//! script. Expressions are kept as SQL text (unparsed from DataFusion's optimized logical plan)
//! together with the schema they were planned against, so a plan can be written to JSON, sent
//! to another process and turned into the same operators there.
use std::collections::BTreeMap;
use std::fmt::Write;

use datafusion::arrow::datatypes::Schema;
use serde::{Deserialize, Serialize};
use weir_operators::features::{FeatureFn, Frame};
use weir_operators::join::JoinKind;
use weir_operators::window::WindowSpec;

/// A whole script, compiled.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScriptPlan {
    /// Declared sources.
    pub sources: Vec<SourceDef>,
    /// Declared sinks.
    pub sinks: Vec<SinkDef>,
    /// Pipelines, in script order.
    pub pipelines: Vec<PipelinePlan>,
    /// Model versions (`CREATE MODEL`), loaded by every process before the pipelines start.
    #[serde(default)]
    pub models: Vec<ModelDef>,
    /// Drift baselines (`CREATE BASELINE`), loaded by every process before the pipelines start.
    #[serde(default)]
    pub baselines: Vec<BaselineDef>,
}

/// `CREATE BASELINE name FROM 'path' COLUMN x`, or `CREATE BASELINE name AS SELECT x FROM s
/// LIMIT n` (the first n values of a stream).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaselineDef {
    pub name: String,
    /// The file (empty for a query baseline).
    pub path: String,
    pub column: String,
    /// The query whose first rows make the baseline (its `limit` is set).
    #[serde(default)]
    pub query: Option<PipelinePlan>,
}

/// `CREATE MODEL name FROM 'path' WITH (version = …)`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelDef {
    /// Model name, as `predict('name', …)` calls it.
    pub name: String,
    /// Version name.
    pub version: String,
    /// ONNX file.
    pub path: String,
    /// Input width, when the file leaves it unset.
    pub features: Option<usize>,
    /// Whether this version is current when the pipelines start.
    pub current: bool,
    /// Which evaluator runs it (`tract` or `weir`).
    pub evaluator: String,
}

/// `max_future`'s default: one hour.
pub const DEFAULT_MAX_FUTURE_MS: i64 = 3_600_000;

fn default_max_future() -> Option<i64> {
    Some(DEFAULT_MAX_FUTURE_MS)
}

/// `CREATE SOURCE`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceDef {
    /// Name.
    pub name: String,
    /// Connector (`file`, `generator`, …).
    pub connector: String,
    /// `format` option.
    pub format: Option<String>,
    /// Declared columns.
    pub schema: Schema,
    /// Connector-specific options.
    pub options: BTreeMap<String, String>,
    /// Event-time column, if any.
    pub event_time: Option<String>,
    /// Allowed lateness before the watermark, ms.
    pub watermark_delay_ms: i64,
    /// After this long without data the source stops holding the watermark back, ms.
    pub idle_timeout_ms: Option<i64>,
    /// A row whose event time is more than this far ahead of the highest event time the
    /// source has accepted (and, for a live source, of the wall clock) is quarantined to the
    /// dead-letter output instead of moving the watermark, ms (`None`: `max_future = 'off'`).
    #[serde(default = "default_max_future")]
    pub max_future_ms: Option<i64>,
    /// File receiving undecodable records.
    pub dead_letter: Option<String>,
    /// Set for `CREATE TABLE`: a keyed collection read through joins.
    #[serde(default)]
    pub table: Option<TableDef>,
}

/// What makes a source a table (`CREATE TABLE … PRIMARY KEY (…)`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TableDef {
    /// Primary-key columns: a row replaces the row with the same key (upsert).
    pub primary_key: Vec<String>,
    /// Column whose value `delete` removes the key (for changelog files); Kafka tables also
    /// delete on a null payload (a tombstone).
    pub op_column: Option<String>,
}

/// The second input of a stream–stream join: a source and its stateless operators.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinInput {
    /// The source.
    pub source: String,
    /// Operators between the source and the join.
    pub stages: Vec<Stage>,
    /// Schema of the rows reaching the join.
    pub schema: Schema,
}

/// `CREATE SINK`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SinkDef {
    /// Name.
    pub name: String,
    /// Connector (`file`, `stdout`).
    pub connector: String,
    /// `format` option.
    pub format: Option<String>,
    /// Connector-specific options.
    pub options: BTreeMap<String, String>,
}

/// A SQL expression with its output name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NamedExpr {
    /// SQL text over the stage's input columns.
    pub sql: String,
    /// Output column name.
    pub name: String,
}

/// One operator of a pipeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum OperatorSpec {
    /// Adds `window_start`/`window_end` from `time_column`.
    AssignWindow {
        time_column: String,
        window: WindowSpec,
    },
    /// Keeps rows where `predicate` holds.
    Filter { predicate: String },
    /// Computes the output columns.
    Project { exprs: Vec<NamedExpr> },
    /// Windowed `GROUP BY`: rows are exchanged by the non-window group keys first.
    WindowAggregate {
        window: WindowSpec,
        group: Vec<NamedExpr>,
        aggregates: Vec<NamedExpr>,
        window_start: usize,
        window_end: usize,
    },
    /// `GROUP BY` without a window: an updating view kept in a differential arrangement,
    /// emitting a changelog (every output row gets an `op` column, `insert` or `delete`).
    UpdatingAggregate {
        group: Vec<NamedExpr>,
        aggregates: Vec<NamedExpr>,
    },
    /// Per-key features (`… OVER (PARTITION BY … ORDER BY ts …)`): rows are exchanged by
    /// `partition`, held until the watermark passes them, then emitted in event-time order per
    /// key with one column per feature.
    Features {
        partition: Vec<String>,
        time_column: String,
        /// Input values the features read (SQL over the input).
        slots: Vec<String>,
        features: Vec<FeatureSpec>,
    },
    /// Joins each row with the table row of its key valid at the row's event time (`as_of`).
    LookupJoin {
        table: String,
        kind: JoinKind,
        /// One per primary-key column, in key order, over the input.
        left_keys: Vec<String>,
        /// Input column holding the event time the table is read at.
        as_of: String,
        /// Conditions on the table row alone, over the table's columns.
        table_filters: Vec<String>,
        /// Table columns appended to the input's, in order.
        table_columns: Vec<usize>,
        /// Condition on the joined row.
        residual: Option<String>,
        output_schema: Schema,
    },
    /// Joins with a second stream: equal keys and `right_time - left_time` in
    /// `[lower_ms, upper_ms]`.
    IntervalJoin {
        right: Box<JoinInput>,
        kind: JoinKind,
        left_keys: Vec<String>,
        right_keys: Vec<String>,
        left_time: String,
        right_time: String,
        lower_ms: i64,
        upper_ms: i64,
        residual: Option<String>,
        output_schema: Schema,
    },
}

/// One feature column.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureSpec {
    pub name: String,
    pub function: FeatureFn,
    pub frame: Frame,
    /// Index into the operator's `slots`.
    pub slot: usize,
    pub data_type: datafusion::arrow::datatypes::DataType,
}

/// An operator and the schema of its input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stage {
    /// The operator.
    pub op: OperatorSpec,
    /// Columns it reads.
    pub input_schema: Schema,
}

/// Where a pipeline's rows go.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum SinkRef {
    /// A declared sink.
    Named(String),
    /// Collected in memory and returned to the caller (a bare `SELECT`).
    Collect,
}

/// `CREATE PIPELINE` (or a bare `SELECT`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelinePlan {
    /// Name.
    pub name: String,
    /// The source it reads.
    pub source: String,
    /// Where its rows go.
    pub sink: SinkRef,
    /// Sink receiving late rows (with the source's columns); `None` drops and counts them.
    pub late_sink: Option<String>,
    /// Operators, source to sink.
    pub stages: Vec<Stage>,
    /// Schema of the rows the sink receives.
    pub output_schema: Schema,
    /// Stop the sources once this many rows reached the sink (`LIMIT` of a baseline query).
    #[serde(default)]
    pub limit: Option<u64>,
    /// The source numbers its rows (`__weir_pos`) for the `provenance` column.
    #[serde(default)]
    pub provenance: bool,
}

impl ScriptPlan {
    /// Looks up a source.
    pub fn source(&self, name: &str) -> Option<&SourceDef> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// Looks up a sink.
    pub fn sink(&self, name: &str) -> Option<&SinkDef> {
        self.sinks.iter().find(|s| s.name == name)
    }

    /// The operator graph, as `weir explain` prints it.
    pub fn explain(&self) -> String {
        let mut s = String::new();
        for m in &self.models {
            let _ = writeln!(
                s,
                "model {} version {} from {} [{} features, evaluator {}]{}",
                m.name,
                m.version,
                m.path,
                m.features
                    .map(|f| f.to_string())
                    .unwrap_or_else(|| "?".into()),
                m.evaluator,
                if m.current { " (current)" } else { "" }
            );
        }
        for p in &self.pipelines {
            let _ = writeln!(s, "pipeline {}", p.name);
            if let Some(src) = self.source(&p.source) {
                let _ = writeln!(
                    s,
                    "  source {} [connector={}, event_time={}, watermark_delay={}ms]",
                    src.name,
                    src.connector,
                    src.event_time.as_deref().unwrap_or("-"),
                    src.watermark_delay_ms
                );
            }
            for st in &p.stages {
                let line =
                    match &st.op {
                        OperatorSpec::AssignWindow {
                            time_column,
                            window,
                        } => {
                            format!("assign_window {} on {}", window.describe(), time_column)
                        }
                        OperatorSpec::Filter { predicate } => format!("filter {predicate}"),
                        OperatorSpec::Project { exprs } => format!(
                            "project {}",
                            exprs
                                .iter()
                                .map(|e| format!("{} AS {}", e.sql, e.name))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        OperatorSpec::UpdatingAggregate { group, aggregates } => format!(
                            "exchange by hash({})\n  updating_aggregate (changelog) group by [{}] aggregates [{}]",
                            group.iter().map(|g| g.sql.clone()).collect::<Vec<_>>().join(", "),
                            group.iter().map(|g| g.sql.clone()).collect::<Vec<_>>().join(", "),
                            aggregates.iter().map(|a| a.sql.clone()).collect::<Vec<_>>().join(", ")
                        ),
                        OperatorSpec::Features {
                            partition,
                            time_column,
                            slots,
                            features,
                        } => format!(
                            "exchange by hash({})\n  features by [{}] order by {time_column}: {}",
                            partition.join(", "),
                            partition.join(", "),
                            features
                                .iter()
                                .map(|f| format!("{} = {:?}({}) over {:?}", f.name, f.function, slots[f.slot], f.frame))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        OperatorSpec::LookupJoin {
                            table,
                            kind,
                            left_keys,
                            as_of,
                            ..
                        } => format!(
                            "exchange by key({})\n  lookup_join ({kind:?}) table {table} as of {as_of}",
                            left_keys.join(", ")
                        ),
                        OperatorSpec::IntervalJoin {
                            right,
                            kind,
                            left_keys,
                            left_time,
                            right_time,
                            lower_ms,
                            upper_ms,
                            ..
                        } => format!(
                            "exchange by key({})\n  interval_join ({kind:?}) source {} on {right_time} - {left_time} in [{lower_ms}ms, {upper_ms}ms]",
                            left_keys.join(", "),
                            right.source
                        ),
                        OperatorSpec::WindowAggregate {
                            window,
                            group,
                            aggregates,
                            ..
                        } => format!(
                        "exchange by hash({})\n  window_aggregate {} group by [{}] aggregates [{}]",
                        group
                            .iter()
                            .filter(|g| g.name != "window_start" && g.name != "window_end")
                            .map(|g| g.sql.clone())
                            .collect::<Vec<_>>()
                            .join(", "),
                        window.describe(),
                        group.iter().map(|g| g.sql.clone()).collect::<Vec<_>>().join(", "),
                        aggregates.iter().map(|a| a.sql.clone()).collect::<Vec<_>>().join(", ")
                    ),
                    };
                let _ = writeln!(s, "  {line}");
            }
            match &p.sink {
                SinkRef::Named(n) => {
                    let _ = writeln!(s, "  sink {n}");
                }
                SinkRef::Collect => {
                    let _ = writeln!(s, "  sink <result>");
                }
            }
            if let Some(l) = &p.late_sink {
                let _ = writeln!(s, "  late rows -> sink {l}");
            }
        }
        s
    }
}
