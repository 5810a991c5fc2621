//! Runs a compiled script: builds sinks, then starts timely workers (`--workers N` threads),
//! each building every pipeline's dataflow from the (serialized) plan, and steps them until
//! every source is exhausted or a failure stops them.
use std::collections::HashMap;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use timely::dataflow::operators::core::Probe;
use timely::dataflow::ProbeHandle;
use weir_connectors::deadletter::DeadLetterFile;
use weir_connectors::{registry, ConnectorMetrics, Sink, SinkContext, SourceContext};
use weir_queries::physical::{build_stage, build_updating, partitioner};
use weir_queries::physical_join::{build_interval, build_lookup, interval_keys, lookup_keys};
use weir_queries::plan::{OperatorSpec, PipelinePlan, ScriptPlan, SinkRef, SourceDef};
use weir_queries::session::session;

use crate::dataflow::route::Router;
use crate::dataflow::{
    aggregate, interval, lookup, route, sink, source, table, updating, DeadLetter, Output, Shared,
};
use crate::metrics::Metrics;
use crate::{Error, Result};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Worker threads.
    pub workers: usize,
    /// Print progress to stderr every this often (None: quiet).
    pub progress: Option<Duration>,
    /// Run as one process of a cluster (timely's cluster mode).
    pub cluster: Option<Cluster>,
    /// A control file whose appended lines are applied while the pipelines run
    /// (`ALTER MODEL name SET VERSION 'v'`).
    pub control: Option<std::path::PathBuf>,
    /// Send OpenLineage run events to this file or `http://` URL, RUNNING ones this often.
    pub lineage: Option<(String, Duration)>,
}

/// This process's place in a cluster of weir processes running the same script.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// This process's index.
    pub process: usize,
    /// `host:port` of every process, in process order.
    pub addresses: Vec<String>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            workers: 1,
            progress: None,
            cluster: None,
            control: None,
            lineage: None,
        }
    }
}

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
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Per pipeline.
    pub pipelines: Vec<PipelineReport>,
    /// Wall time.
    pub elapsed: Duration,
}

fn connector_err(context: String) -> impl FnOnce(weir_connectors::Error) -> Error {
    move |source| Error::Connector { context, source }
}

type SinkSlot = (Arc<Mutex<Box<dyn Sink>>>, Arc<ConnectorMetrics>);

/// In a cluster, process `p > 0` writes its file outputs (late rows, dead letters) beside
/// process 0's, with `.p<p>` appended, so processes never write one file.
fn per_process_path(path: &str, process: usize) -> String {
    if process == 0 {
        path.to_string()
    } else {
        format!("{path}.p{process}")
    }
}

fn open_sink(
    plan: &ScriptPlan,
    name: &str,
    schema: &Schema,
    sinks: &mut HashMap<String, SinkSlot>,
    process: usize,
) -> Result<SinkSlot> {
    if let Some(s) = sinks.get(name) {
        return Ok(s.clone());
    }
    let metrics = Arc::new(ConnectorMetrics::default());
    let mut def = plan
        .sink(name)
        .ok_or_else(|| Error::Runtime {
            pipeline: String::new(),
            message: format!("unknown sink '{name}'"),
        })?
        .clone();
    if let Some(path) = def.options.get("path").cloned() {
        def.options
            .insert("path".into(), per_process_path(&path, process));
    }
    let opened = registry()
        .sink(
            &def.connector,
            SinkContext {
                name: def.name.clone(),
                schema: Arc::new(schema.clone()),
                options: def.options.clone(),
                format: def.format.clone(),
                metrics: metrics.clone(),
            },
        )
        .map_err(connector_err(format!("sink '{name}'")))?;
    let slot = (Arc::new(Mutex::new(opened)), metrics);
    sinks.insert(name.to_string(), slot.clone());
    Ok(slot)
}

/// Runs every pipeline of `plan` to completion (bounded sources) or until failure.
pub fn run(plan: &ScriptPlan, opts: &RunOptions) -> Result<RunReport> {
    // The plan crosses to the workers as JSON, exactly as it would to another process.
    let text = serde_json::to_string(plan).map_err(|e| Error::Runtime {
        pipeline: String::new(),
        message: format!("serializing the plan: {e}"),
    })?;
    let plan: ScriptPlan = serde_json::from_str(&text).map_err(|e| Error::Runtime {
        pipeline: String::new(),
        message: format!("reading the plan: {e}"),
    })?;
    let process = opts.cluster.as_ref().map(|c| c.process).unwrap_or(0);
    // Every process loads the script's models; the versions marked current start current.
    for m in &plan.models {
        weir_models::registry()
            .declare(&m.name, &m.version, &m.path, m.features)
            .map_err(|e| Error::Runtime {
                pipeline: String::new(),
                message: e.to_string(),
            })?;
    }
    for m in plan.models.iter().filter(|m| m.current) {
        weir_models::registry()
            .set_current(&m.name, &m.version)
            .map_err(|e| Error::Runtime {
                pipeline: String::new(),
                message: e.to_string(),
            })?;
    }
    for b in &plan.baselines {
        match &b.query {
            None => weir_queries::baselines::load(b).map_err(|message| Error::Runtime {
                pipeline: String::new(),
                message,
            })?,
            Some(q) => stream_baseline(&plan, &b.name, q, opts)?,
        }
    }
    let failure = Arc::new(Mutex::new(None));
    // One watermark high-water mark for the whole script: an idle input (after idle_timeout)
    // catches up with the furthest input of any pipeline or table.
    let global_wm = Arc::new(AtomicI64::new(i64::MIN));
    let mut sinks: HashMap<String, SinkSlot> = HashMap::new();
    let mut shared = Vec::new();
    let mut tables: Vec<Shared> = Vec::new();
    for p in &plan.pipelines {
        let src = known_source(&plan, &p.source, &p.name)?;
        // Pipeline output is exchanged to worker 0, which lives in process 0: only there is the
        // sink opened.
        let (output, sink_metrics) = match &p.sink {
            SinkRef::Named(n) if process == 0 => {
                let (s, m) = open_sink(&plan, n, &p.output_schema, &mut sinks, process)?;
                (Output::Sink(s), Some(m))
            }
            _ => (Output::Collect(Arc::new(Mutex::new(Vec::new()))), None),
        };
        let late = match &p.late_sink {
            None => None,
            Some(n) => Some(open_sink(&plan, n, &src.schema, &mut sinks, process)?.0),
        };
        let dead = open_dead(&plan, &src, &mut sinks, process)?;
        let main = Shared {
            plan: p.clone(),
            source: src,
            metrics: Arc::new(Metrics::default()),
            output,
            late,
            dead,
            max_watermark: global_wm.clone(),
            source_metrics: Arc::new(ConnectorMetrics::default()),
            sink_metrics,
            failure: failure.clone(),
            right_inputs: Vec::new(),
            stop: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        };
        let mut right_inputs = Vec::new();
        for st in &p.stages {
            match &st.op {
                OperatorSpec::IntervalJoin { right, .. } => {
                    let def = known_source(&plan, &right.source, &p.name)?;
                    let dead = open_dead(&plan, &def, &mut sinks, process)?;
                    right_inputs.push(Shared {
                        source: def,
                        late: None,
                        dead,
                        source_metrics: Arc::new(ConnectorMetrics::default()),
                        sink_metrics: None,
                        ..main.clone()
                    });
                }
                OperatorSpec::LookupJoin { table, .. } => {
                    if tables.iter().any(|t: &Shared| &t.source.name == table) {
                        continue;
                    }
                    let def = known_source(&plan, table, &p.name)?;
                    let dead = open_dead(&plan, &def, &mut sinks, process)?;
                    tables.push(Shared {
                        plan: PipelinePlan {
                            name: format!("table {table}"),
                            source: table.clone(),
                            sink: SinkRef::Collect,
                            late_sink: None,
                            stages: Vec::new(),
                            output_schema: def.schema.clone(),
                            limit: None,
                            provenance: false,
                        },
                        source: def,
                        metrics: Arc::new(Metrics::default()),
                        output: Output::Collect(Arc::new(Mutex::new(Vec::new()))),
                        late: None,
                        dead,
                        max_watermark: global_wm.clone(),
                        source_metrics: Arc::new(ConnectorMetrics::default()),
                        sink_metrics: None,
                        failure: failure.clone(),
                        right_inputs: Vec::new(),
                        stop: Arc::new(std::sync::atomic::AtomicBool::new(false)),
                    });
                }
                _ => {}
            }
        }
        shared.push(Shared {
            right_inputs,
            ..main
        });
    }
    let started = Instant::now();
    let workers = opts.workers.max(1);
    let progress = opts
        .progress
        .map(|every| spawn_progress(every, shared.clone(), started));
    let control = opts.control.clone().map(crate::control::spawn);
    let lineage = match &opts.lineage {
        Some((target, every)) if process == 0 => {
            let e = Arc::new(crate::openlineage::Emitter::new(target, &plan).map_err(
                |message| Error::Runtime {
                    pipeline: String::new(),
                    message,
                },
            )?);
            e.emit("START", None, &counts(&shared));
            Some((e.clone(), spawn_running(e, *every, shared.clone())))
        }
        _ => None,
    };
    let worker_shared = shared.clone();
    let fail = failure.clone();
    let config = match &opts.cluster {
        None => timely::Config::process(workers),
        Some(c) => timely::Config {
            communication: timely::CommunicationConfig::Cluster {
                threads: workers,
                process: c.process,
                addresses: c.addresses.clone(),
                report: false,
                zerocopy: false,
            },
            worker: timely::WorkerConfig::default(),
        },
    };
    let worker_tables = tables.clone();
    let guards = timely::execute(config, move |worker| {
        let index = worker.index();
        let peers = worker.peers();
        let state = session();
        let mut built_tables = Vec::new();
        for t in &worker_tables {
            let parts = source_parts(t, &t.source, Vec::new(), None, index, peers)
                .and_then(|p| Ok((p, weir_queries::physical_join::table_keys(&t.source)?)));
            match parts {
                Ok((p, k)) => built_tables.push((t.clone(), p, k)),
                Err(e) => {
                    t.fail(e);
                    return;
                }
            }
        }
        let mut built = Vec::new();
        for sh in &worker_shared {
            match build_pipeline(sh, &state, index, peers, &worker_tables) {
                Ok(b) => built.push((sh.clone(), b)),
                Err(e) => {
                    sh.fail(e);
                    return;
                }
            }
        }
        let mut probes = Vec::new();
        worker.dataflow::<u64, _, _>(|scope| {
            let mut arranged = HashMap::new();
            for (t, parts, keys) in built_tables {
                let stream = source::build(scope, t.clone(), parts);
                arranged.insert(t.source.name.clone(), table::build(stream, t, keys));
            }
            for (sh, (parts, steps)) in built {
                let mut stream = source::build(scope, sh.clone(), parts);
                for (i, step) in steps.into_iter().enumerate() {
                    if i > 0 {
                        if let Some(r) = step.router {
                            stream = route::build(stream, sh.clone(), r, peers);
                        }
                    }
                    stream = match step.op {
                        Stateful::Window(op) => aggregate::build(stream, sh.clone(), op, step.post),
                        Stateful::Updating(agg) => {
                            updating::build(stream, sh.clone(), agg, step.post)
                        }
                        Stateful::Lookup(join, name) => match arranged.get(&name) {
                            Some(t) => lookup::build(stream, t, sh.clone(), join, step.post),
                            None => {
                                sh.fail(format!("table '{name}' was not built"));
                                stream
                            }
                        },
                        Stateful::Interval(step_parts) => {
                            let IntervalStep {
                                join,
                                right,
                                shared,
                            } = *step_parts;
                            let r = source::build(scope, shared, right);
                            interval::build(stream, r, sh.clone(), join, step.post)
                        }
                    };
                }
                let probe = ProbeHandle::new();
                let stream = stream.probe_with(&probe);
                sink::build(stream, sh.clone());
                probes.push(probe);
            }
        });
        loop {
            if fail.lock().map(|f| f.is_some()).unwrap_or(true) {
                break;
            }
            if !worker.step_or_park(Some(Duration::from_millis(2))) {
                break;
            }
        }
    })
    .map_err(Error::Workers)?;
    for r in guards.join() {
        if let Err(e) = r {
            return Err(Error::Workers(e));
        }
    }
    let mut emitter = None;
    if let Some((e, running)) = lineage {
        emitter = Some(e);
        let (stop, handle) = running;
        let _ = stop.send(());
        let _ = handle.join();
    }
    for (stop, handle) in progress.into_iter().chain(control) {
        let _ = stop.send(());
        let _ = handle.join();
    }
    for (name, (s, _)) in &sinks {
        if let Ok(mut s) = s.lock() {
            s.finish()
                .map_err(connector_err(format!("sink '{name}'")))?;
        }
    }
    for sh in &shared {
        if let Some(DeadLetter::File(d)) = &sh.dead {
            if let Ok(mut d) = d.lock() {
                d.flush().map_err(connector_err(format!(
                    "source '{}' dead letters",
                    sh.source.name
                )))?;
            }
        }
    }
    let failed = failure.lock().ok().and_then(|f| f.clone());
    if let Some(e) = &emitter {
        let kind = if failed.is_some() { "FAIL" } else { "COMPLETE" };
        e.emit(kind, failed.as_deref(), &counts(&shared));
    }
    if let Some(msg) = failed {
        return Err(Error::Runtime {
            pipeline: String::new(),
            message: msg,
        });
    }
    let elapsed = started.elapsed();
    let pipelines = shared
        .iter()
        .map(|sh| PipelineReport {
            name: sh.plan.name.clone(),
            rows_in: Metrics::get(&sh.metrics.rows_in),
            rows_out: Metrics::get(&sh.metrics.rows_out),
            late: Metrics::get(&sh.metrics.late),
            dead_letter: Metrics::get(&sh.metrics.dead_letter),
            results: match &sh.output {
                Output::Collect(v) => v.lock().map(|v| v.clone()).unwrap_or_default(),
                Output::Sink(_) => Vec::new(),
            },
            schema: sh.plan.output_schema.clone(),
            source_metrics: sh.source_metrics.snapshot(),
            sink_metrics: sh
                .sink_metrics
                .as_ref()
                .map(|m| m.snapshot())
                .unwrap_or_default(),
        })
        .collect();
    Ok(RunReport { pipelines, elapsed })
}

/// Runs a baseline's query until its `LIMIT` of rows arrived; registers their values.
fn stream_baseline(
    plan: &ScriptPlan,
    name: &str,
    query: &PipelinePlan,
    opts: &RunOptions,
) -> Result<()> {
    let sub = ScriptPlan {
        sources: plan.sources.clone(),
        sinks: Vec::new(),
        pipelines: vec![query.clone()],
        models: plan.models.clone(),
        baselines: Vec::new(),
    };
    let sub_opts = RunOptions {
        progress: None,
        control: None,
        lineage: None,
        ..opts.clone()
    };
    let report = run(&sub, &sub_opts)?;
    let limit = query.limit.unwrap_or(u64::MAX) as usize;
    let mut values = Vec::new();
    for b in report
        .pipelines
        .first()
        .map(|p| p.results.as_slice())
        .unwrap_or(&[])
    {
        let col =
            datafusion::arrow::compute::cast(b.column(0), &DataType::Float64).map_err(|e| {
                Error::Runtime {
                    pipeline: query.name.clone(),
                    message: e.to_string(),
                }
            })?;
        let col = col
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Float64Array>()
            .ok_or_else(|| Error::Runtime {
                pipeline: query.name.clone(),
                message: "a baseline query gives one numeric column".into(),
            })?;
        values.extend(col.iter().flatten());
    }
    values.truncate(limit);
    if values.len() < 10 {
        return Err(Error::Runtime {
            pipeline: query.name.clone(),
            message: format!(
                "baseline '{name}' got {} values; at least 10 are needed",
                values.len()
            ),
        });
    }
    weir_operators::drift::baseline::register(
        name,
        weir_operators::drift::baseline::Baseline::new(values),
    );
    Ok(())
}

/// The stateful operator of a pipeline step.
enum Stateful {
    /// A windowed aggregate driven by the frontier.
    Window(Box<dyn weir_operators::BatchOperator>),
    /// An updating view on differential dataflow.
    Updating(weir_operators::updating::UpdatingAggregate),
    /// A lookup join against the named table.
    Lookup(weir_operators::join::LookupJoin, String),
    /// An interval join with a second source.
    Interval(Box<IntervalStep>),
}

/// An interval join, its second source and that source's shared state.
struct IntervalStep {
    join: weir_operators::join::IntervalJoin,
    right: source::SourceParts,
    shared: Shared,
}

/// A stateful operator, how rows reach it, and the stateless operators after it.
struct Step {
    op: Stateful,
    router: Option<Router>,
    post: Vec<Box<dyn weir_operators::BatchOperator>>,
}

type Built = (source::SourceParts, Vec<Step>);

fn is_stateful(op: &OperatorSpec) -> bool {
    matches!(
        op,
        OperatorSpec::WindowAggregate { .. }
            | OperatorSpec::Features { .. }
            | OperatorSpec::UpdatingAggregate { .. }
            | OperatorSpec::LookupJoin { .. }
            | OperatorSpec::IntervalJoin { .. }
    )
}

/// Opens a source on this worker, with its stateless chain and router.
fn source_parts(
    sh: &Shared,
    src: &SourceDef,
    chain: Vec<Box<dyn weir_operators::BatchOperator>>,
    router: Option<Router>,
    index: usize,
    peers: usize,
) -> Result<source::SourceParts> {
    let mut schema = src.schema.clone();
    let mut options = src.options.clone();
    // A Kafka table without an op column marks tombstones (null payloads) in a hidden column.
    if let Some(t) = &src.table {
        if src.connector == "kafka" && t.op_column.is_none() && t.primary_key.len() == 1 {
            let mut fields: Vec<Field> =
                schema.fields().iter().map(|f| f.as_ref().clone()).collect();
            fields.push(Field::new(table::TOMBSTONE_COLUMN, DataType::Utf8, true));
            schema = Schema::new(fields);
            options.insert("tombstone_key".into(), t.primary_key.join(","));
            options.insert("tombstone_column".into(), table::TOMBSTONE_COLUMN.into());
            if let Some(et) = &src.event_time {
                options.insert("tombstone_time".into(), et.clone());
            }
        }
    }
    let source = registry()
        .source(
            &src.connector,
            SourceContext {
                name: src.name.clone(),
                schema: Arc::new(schema),
                options,
                format: src.format.clone(),
                worker: index,
                workers: peers,
                metrics: sh.source_metrics.clone(),
            },
        )
        .map_err(connector_err(format!("source '{}'", src.name)))?;
    Ok(source::SourceParts {
        source,
        chain,
        router,
        peers,
    })
}

fn build_pipeline(
    sh: &Shared,
    state: &datafusion::execution::context::SessionState,
    index: usize,
    peers: usize,
    tables: &[Shared],
) -> Result<Built> {
    let stages = &sh.plan.stages;
    let cuts: Vec<usize> = (0..stages.len())
        .filter(|i| is_stateful(&stages[*i].op))
        .collect();
    let chain_of = |stages: &[weir_queries::plan::Stage]| {
        stages
            .iter()
            .map(|s| build_stage(state, s))
            .collect::<std::result::Result<Vec<_>, _>>()
    };
    let first = cuts.first().copied().unwrap_or(stages.len());
    let chain = chain_of(&stages[..first])?;
    let mut steps = Vec::new();
    let mut rights = sh.right_inputs.iter();
    for (n, &i) in cuts.iter().enumerate() {
        let s = &stages[i];
        let end = cuts.get(n + 1).copied().unwrap_or(stages.len());
        let post = chain_of(&stages[i + 1..end])?;
        let (op, router) = match &s.op {
            OperatorSpec::UpdatingAggregate { .. } => (
                Stateful::Updating(build_updating(state, s)?),
                Router::Hash(partitioner(state, s)?),
            ),
            OperatorSpec::LookupJoin { table, .. } => {
                let t = tables
                    .iter()
                    .find(|t| &t.source.name == table)
                    .ok_or_else(|| Error::Runtime {
                        pipeline: sh.plan.name.clone(),
                        message: format!("unknown table '{table}'"),
                    })?;
                (
                    Stateful::Lookup(build_lookup(state, s, &t.source)?, table.clone()),
                    Router::Key(lookup_keys(state, s, &t.source)?),
                )
            }
            OperatorSpec::IntervalJoin { right, .. } => {
                let rs = rights.next().ok_or_else(|| Error::Runtime {
                    pipeline: sh.plan.name.clone(),
                    message: "interval join without its second input".into(),
                })?;
                let (lk, rk) = interval_keys(state, s)?;
                let rchain = chain_of(&right.stages)?;
                let rsrc = positioned(rs.source.clone(), sh.plan.provenance, 1);
                let parts = source_parts(rs, &rsrc, rchain, Some(Router::Key(rk)), index, peers)?;
                (
                    Stateful::Interval(Box::new(IntervalStep {
                        join: build_interval(state, s)?,
                        right: parts,
                        shared: rs.clone(),
                    })),
                    Router::Key(lk),
                )
            }
            _ => (
                Stateful::Window(build_stage(state, s)?),
                Router::Hash(partitioner(state, s)?),
            ),
        };
        steps.push(Step {
            op,
            router: Some(router),
            post,
        });
    }
    let first_router = steps.first_mut().and_then(|s| s.router.take());
    let src = positioned(sh.source.clone(), sh.plan.provenance, 0);
    let parts = source_parts(sh, &src, chain, first_router, index, peers)?;
    Ok((parts, steps))
}

/// `src`, for a provenance pipeline, filling a last, hidden column with each row's position
/// (file line, Kafka partition and offset, MQTT worker and archive sequence); `i` is 0 for the
/// pipeline's source, 1 for the stream an interval join reads.
fn positioned(mut src: SourceDef, provenance: bool, i: usize) -> SourceDef {
    if provenance {
        let column = weir_operators::provenance::position_column(i);
        src.schema = weir_operators::provenance::with_position_column(&src.schema, column);
        src.options.insert("position_column".into(), column.into());
    }
    src
}

/// The declared source `name`, with a connector weir knows.
fn known_source(plan: &ScriptPlan, name: &str, pipeline: &str) -> Result<SourceDef> {
    let src = plan.source(name).cloned().ok_or_else(|| Error::Runtime {
        pipeline: pipeline.to_string(),
        message: format!("unknown source '{name}'"),
    })?;
    if !registry().has_source(&src.connector) {
        return Err(connector_err(format!("source '{}'", src.name))(
            weir_connectors::Error::UnknownConnector {
                name: src.connector.clone(),
                known: registry()
                    .sources
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
            },
        ));
    }
    Ok(src)
}

/// The dead-letter output of a source: a declared sink, or a file.
fn open_dead(
    plan: &ScriptPlan,
    src: &SourceDef,
    sinks: &mut HashMap<String, SinkSlot>,
    process: usize,
) -> Result<Option<DeadLetter>> {
    Ok(match &src.dead_letter {
        None => None,
        Some(name) if plan.sink(name).is_some() => Some(DeadLetter::Sink(
            open_sink(
                plan,
                name,
                &weir_connectors::deadletter::schema(),
                sinks,
                process,
            )?
            .0,
        )),
        Some(path) => Some(DeadLetter::File(Arc::new(Mutex::new(
            DeadLetterFile::open(&per_process_path(path, process))
                .map_err(connector_err(format!("source '{}'", src.name)))?,
        )))),
    })
}

/// Rows in and out so far, per pipeline.
fn counts(shared: &[Shared]) -> crate::openlineage::Counts {
    shared
        .iter()
        .map(|sh| {
            (
                sh.plan.name.clone(),
                (
                    Metrics::get(&sh.metrics.rows_in),
                    Metrics::get(&sh.metrics.rows_out),
                ),
            )
        })
        .collect()
}

/// A thread calling `tick` every `every` until told to stop.
fn every(
    every: Duration,
    mut tick: impl FnMut() + Send + 'static,
) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let h = std::thread::spawn(move || {
        while rx.recv_timeout(every).is_err() {
            tick();
        }
    });
    (tx, h)
}

/// Sends RUNNING events every `period` until told to stop.
fn spawn_running(
    e: Arc<crate::openlineage::Emitter>,
    period: Duration,
    shared: Vec<Shared>,
) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    every(period, move || e.emit("RUNNING", None, &counts(&shared)))
}

/// Prints each pipeline's counters every `period` until told to stop.
fn spawn_progress(
    period: Duration,
    shared: Vec<Shared>,
    started: Instant,
) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    every(period, move || {
        for sh in &shared {
            eprintln!(
                "[{:>6.1}s] {}: in {} out {} late {} dead-letter {} lag {}",
                started.elapsed().as_secs_f64(),
                sh.plan.name,
                Metrics::get(&sh.metrics.rows_in),
                Metrics::get(&sh.metrics.rows_out),
                Metrics::get(&sh.metrics.late),
                Metrics::get(&sh.metrics.dead_letter),
                sh.source_metrics
                    .lag
                    .load(std::sync::atomic::Ordering::Relaxed)
            );
        }
    })
}
