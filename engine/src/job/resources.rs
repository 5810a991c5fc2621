//! A job's resources in one process, made once when the job arrives and shared by the
//! process's workers: the job's catalog (its models and baselines), the sinks (opened on
//! process 0, where worker 0 writes), dead-letter files, and each pipeline's [`Shared`] state.
//! Made before any worker builds operators, so a sink that cannot open fails the job whole.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use datafusion::arrow::datatypes::Schema;
use weir_connectors::deadletter::DeadLetterFile;
use weir_connectors::{registry, ConnectorMetrics, Sink, SinkContext};
use weir_operators::drift::baseline::Baselines;
use weir_queries::job_plan::JobPlan;
use weir_queries::plan::{OperatorSpec, PipelinePlan, ScriptPlan, SinkRef, SourceDef};

use super::error::JobError;
use super::snapshot::Cut;
use crate::dataflow::{DeadLetter, Output, Shared};
use crate::metrics::Metrics;

/// A sink shared by the pipelines that write to it, and its counters.
pub type SinkSlot = (Arc<Mutex<Box<dyn Sink>>>, Arc<ConnectorMetrics>);

/// One job's resources in this process.
pub struct JobResources {
    /// The job.
    pub job: u64,
    /// Its plan.
    pub plan: ScriptPlan,
    /// Its graph.
    pub graph: JobPlan,
    /// Its pipelines, in plan order.
    pub pipelines: Vec<Shared>,
    /// The sources it reads, each once: the pipelines (indices) each feeds.
    pub reads: Vec<Vec<usize>>,
    /// The tables its lookup joins read.
    pub tables: Vec<Shared>,
    /// Its sinks, by name.
    pub sinks: HashMap<String, SinkSlot>,
    /// The job's first failure.
    pub failure: Arc<Mutex<Option<JobError>>>,
    /// Set to stop the job (drain).
    pub stop: Arc<AtomicBool>,
    /// The job's models (its catalog).
    pub models: Arc<weir_models::Registry>,
    /// The job's baselines (its catalog).
    pub baselines: Arc<Baselines>,
    /// The job's cut (suspend and restore).
    pub cut: Arc<Cut>,
    /// When the job's resources were made.
    pub started: Instant,
}

/// In a cluster, process `p > 0` writes its file outputs (late rows, dead letters) beside
/// process 0's, with `.p<p>` appended, so processes never write one file.
fn per_process_path(path: &str, process: usize) -> String {
    if process == 0 {
        path.to_string()
    } else {
        format!("{path}.p{process}")
    }
}

/// What opening a job's resources needs besides the plan.
struct Opening<'a> {
    job: u64,
    plan: &'a ScriptPlan,
    process: usize,
    sinks: HashMap<String, SinkSlot>,
    failure: Arc<Mutex<Option<JobError>>>,
    stop: Arc<AtomicBool>,
    cut: Arc<Cut>,
}

impl Opening<'_> {
    fn err(&self, pipeline: &str) -> impl Fn(String) -> JobError + '_ {
        let (job, pipeline) = (self.job, pipeline.to_string());
        move |m| JobError::build(job, &pipeline, m)
    }

    fn sink(&mut self, name: &str, schema: &Schema, pipeline: &str) -> Result<SinkSlot, JobError> {
        if let Some(s) = self.sinks.get(name) {
            return Ok(s.clone());
        }
        let metrics = Arc::new(ConnectorMetrics::default());
        let mut def = self
            .plan
            .sink(name)
            .ok_or_else(|| JobError::build(self.job, pipeline, format!("unknown sink '{name}'")))?
            .clone();
        if let Some(path) = def.options.get("path").cloned() {
            def.options
                .insert("path".into(), per_process_path(&path, self.process));
        }
        let context = SinkContext {
            name: def.name.clone(),
            schema: Arc::new(schema.clone()),
            options: def.options.clone(),
            format: def.format.clone(),
            metrics: metrics.clone(),
            // A restored job's sink continues after what the snapshot's job durably wrote.
            resume: self.cut.restore().and_then(|r| r.sinks.get(name)).cloned(),
            state_dir: self.cut.state_dir.as_ref().map(|d| {
                d.join("sinks")
                    .join(per_process_path(&def.name, self.process))
            }),
            durable: self.cut.durable.clone(),
        };
        let opened = registry()
            .sink(&def.connector, context)
            .map_err(|e| self.err(pipeline)(format!("sink '{name}': {e}")))?;
        let slot = (Arc::new(Mutex::new(opened)), metrics);
        self.sinks.insert(name.to_string(), slot.clone());
        Ok(slot)
    }

    /// The dead-letter output of a source: a declared sink, or a file.
    fn dead(&mut self, src: &SourceDef, pipeline: &str) -> Result<Option<DeadLetter>, JobError> {
        Ok(match &src.dead_letter {
            None => None,
            Some(name) if self.plan.sink(name).is_some() => {
                let schema = weir_connectors::deadletter::schema();
                Some(DeadLetter::Sink(self.sink(name, &schema, pipeline)?.0))
            }
            Some(path) => Some(DeadLetter::File(Arc::new(Mutex::new(
                DeadLetterFile::open(&per_process_path(path, self.process))
                    .map_err(|e| self.err(pipeline)(format!("source '{}': {e}", src.name)))?,
            )))),
        })
    }

    /// The declared source `name` (its connector is checked when the source is built).
    fn source(&self, name: &str, pipeline: &str) -> Result<SourceDef, JobError> {
        self.plan
            .source(name)
            .cloned()
            .ok_or_else(|| self.err(pipeline)(format!("unknown source '{name}'")))
    }

    /// A pipeline's (or a table's) shared state, with no outputs yet.
    fn shared(&self, plan: PipelinePlan, source: SourceDef, dead: Option<DeadLetter>) -> Shared {
        let plan_stages = plan.stages.len();
        Shared {
            plan,
            source,
            metrics: Arc::new(Metrics::default()),
            input: Arc::new(Metrics::default()),
            readers: Vec::new(),
            output: Output::Collect(Arc::new(Mutex::new(Vec::new()))),
            late: None,
            dead,
            // Per pipeline: an idle source catches up with its own pipeline's other inputs,
            // never with an unrelated source of the script.
            max_watermark: Arc::new(AtomicI64::new(i64::MIN)),
            source_metrics: Arc::new(ConnectorMetrics::default()),
            sink_metrics: None,
            failure: self.failure.clone(),
            job: self.job,
            job_stop: self.stop.clone(),
            right_inputs: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            cut: self.cut.clone(),
            operators: Arc::new(
                (0..plan_stages)
                    .map(|_| crate::metrics::OperatorCounter::default())
                    .collect(),
            ),
        }
    }

    /// One pipeline: its sink (on process 0), late sink, dead letters, and the second inputs
    /// of its interval joins; tables it reads are added to `tables`.
    fn pipeline(&mut self, p: &PipelinePlan, tables: &mut Vec<Shared>) -> Result<Shared, JobError> {
        let src = self.source(&p.source, &p.name)?;
        let dead = self.dead(&src, &p.name)?;
        let mut main = self.shared(p.clone(), src.clone(), dead);
        // Pipeline output is exchanged to worker 0, which lives in process 0: only there is the
        // sink opened.
        if let SinkRef::Named(n) = &p.sink {
            if self.process == 0 {
                let (s, m) = self.sink(n, &p.output_schema, &p.name)?;
                main.output = Output::Sink(s);
                main.sink_metrics = Some(m);
            }
        }
        if let Some(n) = &p.late_sink {
            main.late = Some(self.sink(n, &src.schema, &p.name)?.0);
        }
        for st in &p.stages {
            match &st.op {
                OperatorSpec::IntervalJoin { right, .. } => {
                    let def = self.source(&right.source, &p.name)?;
                    let dead = self.dead(&def, &p.name)?;
                    // Its own input counters (its source is read for this join alone); the
                    // query's rows in are both inputs' (`PipelineMetrics::of`).
                    let mut r = self.shared(p.clone(), def, dead);
                    r.metrics = main.metrics.clone();
                    r.output = main.output.clone();
                    r.stop = main.stop.clone();
                    r.max_watermark = main.max_watermark.clone();
                    main.right_inputs.push(r);
                }
                OperatorSpec::LookupJoin { table, .. } => {
                    if tables.iter().any(|t| &t.source.name == table) {
                        continue;
                    }
                    let def = self.source(table, &p.name)?;
                    let dead = self.dead(&def, &p.name)?;
                    tables.push(self.shared(table_plan(table, &def), def, dead));
                }
                _ => {}
            }
        }
        Ok(main)
    }
}

/// The pipelines that read one source node of the graph (`groups`) read it once: they share
/// its counters and dead-letter output.
fn read_once(pipelines: &mut [Shared], groups: &[Vec<usize>]) {
    for g in groups {
        let first = &pipelines[g[0]];
        let (input, dead) = (first.input.clone(), first.dead.clone());
        let watermark = first.max_watermark.clone();
        for &i in &g[1..] {
            let p = &mut pipelines[i];
            p.input = input.clone();
            p.dead = dead.clone();
            p.max_watermark = watermark.clone();
        }
    }
}

impl JobResources {
    /// The source instance a group of pipelines reads: the first one's, stopping when every
    /// pipeline of the group has what it wants.
    pub fn source_of(&self, group: &[usize]) -> Shared {
        let mut s = self.pipelines[group[0]].clone();
        s.readers = group
            .iter()
            .map(|&i| self.pipelines[i].stop.clone())
            .collect();
        s
    }
}

/// The plan of a table's input: its source, collected.
fn table_plan(table: &str, def: &SourceDef) -> PipelinePlan {
    PipelinePlan {
        name: format!("table {table}"),
        source: table.to_string(),
        sink: SinkRef::Collect,
        late_sink: None,
        stages: Vec::new(),
        output_schema: def.schema.clone(),
        limit: None,
        provenance: false,
    }
}

impl JobResources {
    /// Opens job `job`'s resources in process `process`: loads its models into the job's own
    /// registry, registers its baselines (`values` holds those computed from a query), opens
    /// sinks and dead-letter outputs.
    pub fn open(
        job: u64,
        graph: JobPlan,
        process: usize,
        values: &[(String, Vec<f64>)],
        cut: Arc<Cut>,
    ) -> Result<JobResources, JobError> {
        let plan = graph.script.clone();
        let (models, baselines) = catalog(job, &plan, values)?;
        let mut o = Opening {
            job,
            plan: &plan,
            process,
            sinks: HashMap::new(),
            failure: Arc::new(Mutex::new(None)),
            stop: Arc::new(AtomicBool::new(false)),
            cut: cut.clone(),
        };
        let mut pipelines = Vec::new();
        let mut tables = Vec::new();
        for p in &plan.pipelines {
            pipelines.push(o.pipeline(p, &mut tables)?);
        }
        let reads: Vec<Vec<usize>> = graph.reads().into_iter().map(|(_, r)| r).collect();
        read_once(&mut pipelines, &reads);
        let Opening {
            sinks,
            failure,
            stop,
            ..
        } = o;
        Ok(JobResources {
            job,
            plan,
            pipelines,
            reads,
            graph,
            tables,
            sinks,
            failure,
            stop,
            models,
            baselines,
            cut,
            started: Instant::now(),
        })
    }
}

/// The job's catalog: its model versions in a registry of its own (the versions marked
/// current start current), and its baselines in one of its own (from files, or the values a
/// query gave).
fn catalog(
    job: u64,
    plan: &ScriptPlan,
    values: &[(String, Vec<f64>)],
) -> Result<(Arc<weir_models::Registry>, Arc<Baselines>), JobError> {
    let models = weir_models::Registry::new();
    for m in &plan.models {
        models
            .declare(&m.name, &m.version, &m.path, m.features)
            .map_err(|e| JobError::build(job, "", e))?;
    }
    for m in plan.models.iter().filter(|m| m.current) {
        models
            .set_current(&m.name, &m.version)
            .map_err(|e| JobError::build(job, "", e))?;
    }
    let baselines = Baselines::new();
    for b in &plan.baselines {
        match values.iter().find(|(n, _)| n == &b.name) {
            Some((_, v)) => baselines.register(
                &b.name,
                weir_operators::drift::baseline::Baseline::new(v.clone()),
            ),
            None if b.query.is_none() => weir_queries::baselines::load_into(b, &baselines)
                .map_err(|message| JobError::build(job, "", message))?,
            None => {
                return Err(JobError::build(
                    job,
                    "",
                    format!("baseline '{}' has no values", b.name),
                ))
            }
        }
    }
    Ok((models, baselines))
}
