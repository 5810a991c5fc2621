//! Runs a compiled script: builds sinks, then starts timely workers (`--workers N` threads),
//! each building every pipeline's dataflow from the (serialized) plan, and steps them until
//! every source is exhausted or a failure stops them.
use std::collections::HashMap;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::record_batch::RecordBatch;
use timely::dataflow::operators::core::Probe;
use timely::dataflow::ProbeHandle;
use weir_connectors::deadletter::DeadLetterFile;
use weir_connectors::{registry, ConnectorMetrics, Sink, SinkContext, SourceContext};
use weir_queries::physical::{build_stage, build_updating, partitioner};
use weir_queries::plan::{OperatorSpec, ScriptPlan, SinkRef};
use weir_queries::session::session;

use crate::dataflow::{aggregate, sink, source, updating, DeadLetter, Output, Shared};
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
    let failure = Arc::new(Mutex::new(None));
    let mut sinks: HashMap<String, SinkSlot> = HashMap::new();
    let mut shared = Vec::new();
    for p in &plan.pipelines {
        let src = plan
            .source(&p.source)
            .cloned()
            .ok_or_else(|| Error::Runtime {
                pipeline: p.name.clone(),
                message: format!("unknown source '{}'", p.source),
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
        let dead = match &src.dead_letter {
            None => None,
            Some(name) if plan.sink(name).is_some() => Some(DeadLetter::Sink(
                open_sink(
                    &plan,
                    name,
                    &weir_connectors::deadletter::schema(),
                    &mut sinks,
                    process,
                )?
                .0,
            )),
            Some(path) => Some(DeadLetter::File(Arc::new(Mutex::new(
                DeadLetterFile::open(&per_process_path(path, process))
                    .map_err(connector_err(format!("source '{}'", src.name)))?,
            )))),
        };
        shared.push(Shared {
            plan: p.clone(),
            source: src,
            metrics: Arc::new(Metrics::default()),
            output,
            late,
            dead,
            max_watermark: Arc::new(AtomicI64::new(i64::MIN)),
            source_metrics: Arc::new(ConnectorMetrics::default()),
            sink_metrics,
            failure: failure.clone(),
        });
    }
    let started = Instant::now();
    let workers = opts.workers.max(1);
    let progress = opts
        .progress
        .map(|every| spawn_progress(every, shared.clone(), started));
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
    let guards = timely::execute(config, move |worker| {
        let index = worker.index();
        let peers = worker.peers();
        let state = session();
        let mut probes = Vec::new();
        for sh in &worker_shared {
            let built = build_pipeline(sh, &state, index, peers);
            let (src_parts, agg, post) = match built {
                Ok(b) => b,
                Err(e) => {
                    sh.fail(e);
                    return;
                }
            };
            let probe = ProbeHandle::new();
            let sh2 = sh.clone();
            worker.dataflow::<u64, _, _>(|scope| {
                let stream = source::build(scope, sh2.clone(), src_parts);
                let stream = match agg {
                    Some(Stateful::Window(op)) => aggregate::build(stream, sh2.clone(), op, post),
                    Some(Stateful::Updating(agg)) => {
                        updating::build(stream, sh2.clone(), agg, post)
                    }
                    None => stream,
                };
                let stream = stream.probe_with(&probe);
                sink::build(stream, sh2.clone());
            });
            probes.push(probe);
        }
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
    if let Some((stop, handle)) = progress {
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
    if let Some(msg) = failure.lock().ok().and_then(|f| f.clone()) {
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

/// The stateful operator of a pipeline.
enum Stateful {
    /// A windowed aggregate driven by the frontier.
    Window(Box<dyn weir_operators::BatchOperator>),
    /// An updating view on differential dataflow.
    Updating(weir_operators::updating::UpdatingAggregate),
}

type Built = (
    source::SourceParts,
    Option<Stateful>,
    Vec<Box<dyn weir_operators::BatchOperator>>,
);

fn build_pipeline(
    sh: &Shared,
    state: &datafusion::execution::context::SessionState,
    index: usize,
    peers: usize,
) -> Result<Built> {
    let src = &sh.source;
    let source = registry()
        .source(
            &src.connector,
            SourceContext {
                name: src.name.clone(),
                schema: Arc::new(src.schema.clone()),
                options: src.options.clone(),
                format: src.format.clone(),
                worker: index,
                workers: peers,
                metrics: sh.source_metrics.clone(),
            },
        )
        .map_err(connector_err(format!("source '{}'", src.name)))?;
    let stages = &sh.plan.stages;
    let agg_at = stages.iter().position(|s| {
        matches!(
            s.op,
            OperatorSpec::WindowAggregate { .. } | OperatorSpec::UpdatingAggregate { .. }
        )
    });
    let (pre, agg, post) = match agg_at {
        Some(i) => (&stages[..i], Some(&stages[i]), &stages[i + 1..]),
        None => (&stages[..], None, &stages[stages.len()..]),
    };
    let chain = pre
        .iter()
        .map(|s| build_stage(state, s))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let post = post
        .iter()
        .map(|s| build_stage(state, s))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let (partitioner, agg) = match agg {
        Some(s) => {
            let stateful = match s.op {
                OperatorSpec::UpdatingAggregate { .. } => {
                    Stateful::Updating(build_updating(state, s)?)
                }
                _ => Stateful::Window(build_stage(state, s)?),
            };
            (Some(partitioner(state, s)?), Some(stateful))
        }
        None => (None, None),
    };
    Ok((
        source::SourceParts {
            source,
            chain,
            partitioner,
            peers,
        },
        agg,
        post,
    ))
}

fn spawn_progress(
    every: Duration,
    shared: Vec<Shared>,
    started: Instant,
) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let h = std::thread::spawn(move || {
        while rx.recv_timeout(every).is_err() {
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
        }
    });
    (tx, h)
}
