//! Building one worker's part of a job: first the operators of every pipeline and table
//! (fallible: options, expressions, connectors — [`prepare`]), then, once every worker of the
//! cluster has prepared its part, the timely dataflow that wires them ([`install`]). Building
//! a node's operator from its spec happens here, in [`step`], and nowhere else in the engine.
use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::execution::context::SessionState;
use timely::worker::Worker;
use weir_connectors::{registry, Internal, Positions, SourceContext, TombstoneColumns};
use weir_operators::join::KeyEncoder;
use weir_operators::BatchOperator;
use weir_queries::physical::{build_stage, build_updating, partitioner};
use weir_queries::physical_join::{build_interval, build_lookup, interval_keys, lookup_keys};
use weir_queries::plan::{OperatorSpec, SourceDef, Stage};

use super::error::JobError;
use super::resources::JobResources;
use crate::dataflow::route::Router;
use crate::dataflow::{aggregate, interval, lookup, route, sink, source, table, updating, Shared};

/// The stateful operator of a pipeline step.
enum Stateful {
    /// A windowed aggregate (or per-key features) driven by the frontier.
    Window(Box<dyn BatchOperator>),
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
    post: Vec<Box<dyn BatchOperator>>,
}

/// One worker's operators for a job, ready to be wired.
pub struct WorkerParts {
    tables: Vec<(Shared, source::SourceParts, KeyEncoder)>,
    pipelines: Vec<(Shared, source::SourceParts, Vec<Step>)>,
}

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

/// Builds worker `index`'s operators for every table and pipeline of the job.
pub fn prepare(res: &JobResources, index: usize, peers: usize) -> Result<WorkerParts, JobError> {
    let state = weir_queries::session::session_with(res.models.clone());
    let mut tables = Vec::new();
    for t in &res.tables {
        let err = |e: String| JobError::build(res.job, &t.plan.name, e);
        let parts =
            source_parts(t, &t.source, Vec::new(), None, false, (index, peers)).map_err(err)?;
        let keys =
            weir_queries::physical_join::table_keys(&t.source).map_err(|e| err(e.to_string()))?;
        tables.push((t.clone(), parts, keys));
    }
    let mut pipelines = Vec::new();
    for sh in &res.pipelines {
        let (parts, steps) = pipeline(sh, &state, index, peers, &res.tables)
            .map_err(|e| JobError::build(res.job, &sh.plan.name, e))?;
        pipelines.push((sh.clone(), parts, steps));
    }
    Ok(WorkerParts { tables, pipelines })
}

fn chain_of(state: &SessionState, stages: &[Stage]) -> Result<Vec<Box<dyn BatchOperator>>, String> {
    stages
        .iter()
        .map(|s| build_stage(state, s).map_err(|e| e.to_string()))
        .collect()
}

/// A pipeline's source instance and its steps: the stateless chain before the first stateful
/// operator runs in the source; each stateful operator is a step with the chain after it.
fn pipeline(
    sh: &Shared,
    state: &SessionState,
    index: usize,
    peers: usize,
    tables: &[Shared],
) -> Result<(source::SourceParts, Vec<Step>), String> {
    let stages = &sh.plan.stages;
    let cuts: Vec<usize> = (0..stages.len())
        .filter(|i| is_stateful(&stages[*i].op))
        .collect();
    let first = cuts.first().copied().unwrap_or(stages.len());
    let chain = chain_of(state, &stages[..first])?;
    let mut steps = Vec::new();
    let mut rights = sh.right_inputs.iter();
    for (n, &i) in cuts.iter().enumerate() {
        let end = cuts.get(n + 1).copied().unwrap_or(stages.len());
        let post = chain_of(state, &stages[i + 1..end])?;
        let (op, router) = step(sh, state, &stages[i], tables, &mut rights, index, peers)?;
        steps.push(Step {
            op,
            router: Some(router),
            post,
        });
    }
    let first_router = steps.first_mut().and_then(|s| s.router.take());
    let src = positioned(sh.source.clone(), sh.plan.provenance, 0);
    let parts = source_parts(
        sh,
        &src,
        chain,
        first_router,
        sh.plan.provenance,
        (index, peers),
    )?;
    Ok((parts, steps))
}

/// The one place a stateful spec becomes its operator, with the router that brings it rows.
fn step<'a>(
    sh: &Shared,
    state: &SessionState,
    s: &Stage,
    tables: &[Shared],
    rights: &mut impl Iterator<Item = &'a Shared>,
    index: usize,
    peers: usize,
) -> Result<(Stateful, Router), String> {
    let e = |e: weir_queries::Error| e.to_string();
    Ok(match &s.op {
        OperatorSpec::UpdatingAggregate { .. } => (
            Stateful::Updating(build_updating(state, s).map_err(e)?),
            Router::Hash(partitioner(state, s).map_err(e)?),
        ),
        OperatorSpec::LookupJoin { table, .. } => {
            let t = tables
                .iter()
                .find(|t| &t.source.name == table)
                .ok_or_else(|| format!("unknown table '{table}'"))?;
            (
                Stateful::Lookup(build_lookup(state, s, &t.source).map_err(e)?, table.clone()),
                Router::Key(lookup_keys(state, s, &t.source).map_err(e)?),
            )
        }
        OperatorSpec::IntervalJoin { right, .. } => {
            let rs = rights
                .next()
                .ok_or("interval join without its second input")?;
            let (lk, rk) = interval_keys(state, s).map_err(e)?;
            let rchain = chain_of(state, &right.stages)?;
            let rsrc = positioned(rs.source.clone(), sh.plan.provenance, 1);
            let parts = source_parts(
                rs,
                &rsrc,
                rchain,
                Some(Router::Key(rk)),
                sh.plan.provenance,
                (index, peers),
            )?;
            let join = build_interval(state, s).map_err(e)?;
            let step = IntervalStep {
                join,
                right: parts,
                shared: rs.clone(),
            };
            (Stateful::Interval(Box::new(step)), Router::Key(lk))
        }
        _ => (
            Stateful::Window(build_stage(state, s).map_err(e)?),
            Router::Hash(partitioner(state, s).map_err(e)?),
        ),
    })
}

/// Opens a source on worker `index` of `peers`, with its stateless chain and router; with
/// `positions`, it fills the schema's last column with each row's position.
fn source_parts(
    sh: &Shared,
    src: &SourceDef,
    chain: Vec<Box<dyn BatchOperator>>,
    router: Option<Router>,
    positions: bool,
    (index, peers): (usize, usize),
) -> Result<source::SourceParts, String> {
    let mut schema = src.schema.clone();
    let mut internal = Internal::default();
    if positions {
        let column = schema.fields().last().map(|f| f.name().clone());
        internal.positions = column.map(|column| Positions {
            column,
            encode: weir_operators::provenance::partitioned_position,
        });
    }
    // A Kafka table without an op column marks tombstones (null payloads) in a hidden column.
    if let Some(t) = &src.table {
        if src.connector == "kafka" && t.op_column.is_none() && t.primary_key.len() == 1 {
            let mut fields: Vec<Field> =
                schema.fields().iter().map(|f| f.as_ref().clone()).collect();
            fields.push(Field::new(table::TOMBSTONE_COLUMN, DataType::Utf8, true));
            schema = Schema::new(fields);
            internal.tombstones = Some(TombstoneColumns {
                key: t.primary_key.join(","),
                column: table::TOMBSTONE_COLUMN.into(),
                time: src.event_time.clone(),
            });
        }
    }
    let context = SourceContext {
        name: src.name.clone(),
        schema: Arc::new(schema),
        options: src.options.clone(),
        format: src.format.clone(),
        worker: index,
        workers: peers,
        metrics: sh.source_metrics.clone(),
        internal,
    };
    let source = registry()
        .source(&src.connector, context)
        .map_err(|e| format!("source '{}': {e}", src.name))?;
    Ok(source::SourceParts {
        source,
        chain,
        router,
        peers,
    })
}

/// `src`, for a provenance pipeline, with a last, hidden column the source fills with each
/// row's position (file line, Kafka partition and offset, MQTT worker and archive sequence);
/// `i` is 0 for the pipeline's source, 1 for the stream an interval join reads.
fn positioned(mut src: SourceDef, provenance: bool, i: usize) -> SourceDef {
    if provenance {
        let column = weir_operators::provenance::position_column(i);
        src.schema = weir_operators::provenance::with_position_column(&src.schema, column);
    }
    src
}

/// Wires a worker's prepared operators into one timely dataflow; gives its index.
pub fn install(worker: &mut Worker, parts: WorkerParts) -> usize {
    let index = worker.next_dataflow_index();
    let peers = worker.peers();
    worker.dataflow::<u64, _, _>(|scope| {
        let mut arranged = HashMap::new();
        for (t, parts, keys) in parts.tables {
            let stream = source::build(scope, t.clone(), parts);
            arranged.insert(t.source.name.clone(), table::build(stream, t, keys));
        }
        for (sh, parts, steps) in parts.pipelines {
            let mut stream = source::build(scope, sh.clone(), parts);
            for (i, step) in steps.into_iter().enumerate() {
                if i > 0 {
                    if let Some(r) = step.router {
                        stream = route::build(stream, sh.clone(), r, peers);
                    }
                }
                stream = match step.op {
                    Stateful::Window(op) => aggregate::build(stream, sh.clone(), op, step.post),
                    Stateful::Updating(agg) => updating::build(stream, sh.clone(), agg, step.post),
                    Stateful::Lookup(join, name) => match arranged.get(&name) {
                        Some(t) => lookup::build(stream, t, sh.clone(), join, step.post),
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
                        let r = source::build(scope, shared, right);
                        interval::build(stream, r, sh.clone(), join, step.post)
                    }
                };
            }
            sink::build(stream, sh.clone());
        }
    });
    index
}
