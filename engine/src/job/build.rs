//! Building one worker's part of a job: the operators of every table and pipeline, and one
//! source instance per source the job reads (fallible: options, expressions, connectors —
//! [`prepare`]). `wire.rs` then wires them into a dataflow once every worker of the cluster has
//! prepared its part. Building a node's operator from its spec happens here, in [`step`], and
//! nowhere else in the engine.
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::execution::context::SessionState;
use weir_connectors::describe::Tables;
use weir_connectors::{registry, Internal, Positions, SourceContext, TombstoneColumns};
use weir_operators::join::KeyEncoder;
use weir_operators::BatchOperator;
use weir_queries::physical::{build_stage, build_updating, partitioner};
use weir_queries::physical_join::{build_interval, build_lookup, interval_keys, lookup_keys};
use weir_queries::plan::{OperatorSpec, Stage};

use super::error::JobError;
use super::resources::JobResources;
use crate::dataflow::counted::Counted;
use crate::dataflow::route::Router;
use crate::dataflow::{source, table, Shared};

/// The stateful operator of a pipeline step.
pub(super) enum Stateful {
    /// A windowed aggregate (or per-key features) driven by the frontier.
    Window(Box<dyn BatchOperator>),
    /// An updating view on differential dataflow, and this worker's part of a restored
    /// snapshot of it (its state lives in the adapter).
    Updating(
        weir_operators::updating::UpdatingAggregate,
        Vec<datafusion::arrow::record_batch::RecordBatch>,
    ),
    /// A lookup join against the named table.
    Lookup(
        weir_operators::join::LookupJoin,
        String,
        Vec<datafusion::arrow::record_batch::RecordBatch>,
    ),
    /// An interval join with a second source.
    Interval(Box<IntervalStep>),
}

/// An interval join, its second source and that source's shared state.
pub(super) struct IntervalStep {
    pub(super) join: weir_operators::join::IntervalJoin,
    pub(super) right: source::SourceParts,
    pub(super) shared: Shared,
}

/// A stateful operator, how rows reach it, and the stateless operators after it.
pub(super) struct Step {
    /// The stateful operator's node id (its state's key in a snapshot).
    pub(super) node: String,
    pub(super) op: Stateful,
    pub(super) router: Option<Router>,
    pub(super) post: Vec<Box<dyn BatchOperator>>,
    /// For a join or an updating aggregate (counted around its adapter): its stage index,
    /// and whether its rows out are counted after the adapter (nothing follows it).
    pub(super) counted: Option<(usize, bool)>,
}

/// A pipeline reading a source another pipeline reads too: its stateless chain and router run
/// in an operator of its own after the source.
pub(super) struct Fanned {
    pub(super) chain: Vec<Box<dyn BatchOperator>>,
    pub(super) router: Option<Router>,
}

/// One pipeline's operators after its source.
pub(super) struct Reader {
    pub(super) shared: Shared,
    /// `None`: the source runs the chain (it has no other reader).
    pub(super) fanned: Option<Fanned>,
    pub(super) steps: Vec<Step>,
}

/// One source instance and the pipelines it feeds.
pub(super) struct Read {
    pub(super) shared: Shared,
    pub(super) parts: source::SourceParts,
    pub(super) readers: Vec<Reader>,
}

/// One worker's operators for a job, ready to be wired.
pub struct WorkerParts {
    pub(super) tables: Vec<(Shared, source::SourceParts, KeyEncoder)>,
    pub(super) reads: Vec<Read>,
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
    let state = weir_queries::session::session_with(res.models.clone(), res.baselines.clone());
    let mut tables = Vec::new();
    for t in &res.tables {
        let err = |e: String| JobError::build(res.job, &t.plan.name, e);
        let parts = source_parts(t, Vec::new(), None, None, (index, peers)).map_err(err)?;
        let keys =
            weir_queries::physical_join::table_keys(&t.source).map_err(|e| err(e.to_string()))?;
        tables.push((t.clone(), parts, keys));
    }
    let mut reads = Vec::new();
    for group in &res.reads {
        let mut readers = Vec::new();
        let mut inline = None;
        for &i in group {
            let sh = &res.pipelines[i];
            let (chain, router, steps) = pipeline(res, i, &state, (index, peers))
                .map_err(|e| JobError::build(res.job, &sh.plan.name, e))?;
            let fanned = if group.len() == 1 {
                inline = Some((chain, router));
                None
            } else {
                Some(Fanned { chain, router })
            };
            readers.push(Reader {
                shared: sh.clone(),
                fanned,
                steps,
            });
        }
        let (chain, router) = inline.unwrap_or_default();
        let shared = res.source_of(group);
        let err = |e: String| JobError::build(res.job, &shared.plan.name, e);
        let position = shared.plan.provenance.then_some(0);
        let parts = source_parts(&shared, chain, router, position, (index, peers)).map_err(err)?;
        reads.push(Read {
            shared,
            parts,
            readers,
        });
    }
    Ok(WorkerParts { tables, reads })
}

/// The operators of `stages` (which start at stage `from` of `sh`'s plan), each counted; the
/// first one's rows in are also the rows out of stage `after`.
fn chain_of(
    state: &SessionState,
    sh: &Shared,
    stages: &[Stage],
    (from, after): (usize, Option<usize>),
) -> Result<Vec<Box<dyn BatchOperator>>, String> {
    stages
        .iter()
        .enumerate()
        .map(|(j, s)| {
            let op = build_stage(state, s).map_err(|e| e.to_string())?;
            let after = after.filter(|_| j == 0);
            Ok(Counted::wrap_after(op, &sh.operators, from + j, after))
        })
        .collect()
}

/// A pipeline's operators: the stateless chain before its first stateful operator with the
/// router to it, and each stateful operator as a step with the chain after it.
type Pipeline = (Vec<Box<dyn BatchOperator>>, Option<Router>, Vec<Step>);

fn pipeline(
    res: &JobResources,
    pi: usize,
    state: &SessionState,
    (index, peers): (usize, usize),
) -> Result<Pipeline, String> {
    let sh = &res.pipelines[pi];
    let tables = &res.tables;
    let stages = &sh.plan.stages;
    let cuts: Vec<usize> = (0..stages.len())
        .filter(|i| is_stateful(&stages[*i].op))
        .collect();
    let first = cuts.first().copied().unwrap_or(stages.len());
    let chain = chain_of(state, sh, &stages[..first], (0, None))?;
    let mut steps = Vec::new();
    let mut rights = sh.right_inputs.iter();
    for (n, &i) in cuts.iter().enumerate() {
        let end = cuts.get(n + 1).copied().unwrap_or(stages.len());
        // A window counts its own rows out; a join's or an updating aggregate's are the
        // next stage's rows in, or counted after its adapter when nothing follows.
        let adapter = !matches!(
            stages[i].op,
            OperatorSpec::WindowAggregate { .. } | OperatorSpec::Features { .. }
        );
        let after = adapter.then_some(i);
        let post = chain_of(state, sh, &stages[i + 1..end], (i + 1, after))?;
        let (mut op, router) = step(sh, state, &stages[i], tables, &mut rights, index, peers)?;
        let node = res
            .graph
            .stage_id(pi, i)
            .map(|n| n.0.clone())
            .ok_or_else(|| format!("stage {i} of pipeline {pi} has no node"))?;
        restore(&mut op, sh.cut.restored_state(&node), (index, peers))
            .map_err(|e| format!("restoring {node}: {e}"))?;
        let counted = adapter.then_some((i, post.is_empty()));
        steps.push(Step {
            node,
            op,
            router: Some(router),
            post,
            counted,
        });
    }
    let first_router = steps.first_mut().and_then(|s| s.router.take());
    Ok((chain, first_router, steps))
}

/// Puts this worker's rows of a restored snapshot's state (`batches`) into `op`.
fn restore(
    op: &mut Stateful,
    batches: &[datafusion::arrow::record_batch::RecordBatch],
    (index, peers): (usize, usize),
) -> Result<(), weir_operators::Error> {
    if batches.is_empty() {
        return Ok(());
    }
    let mine = batches
        .iter()
        .map(|b| weir_operators::state::for_worker(b, index, peers))
        .collect::<Result<Vec<_>, _>>()?;
    let state: Option<&mut dyn weir_operators::state::OperatorState> = match op {
        Stateful::Window(op) => op.state(),
        // Their state lives in their adapters, which take it from here.
        Stateful::Updating(_, restored) | Stateful::Lookup(_, _, restored) => {
            restored.extend(mine);
            return Ok(());
        }
        Stateful::Interval(step) => Some(&mut step.join),
    };
    match state {
        Some(s) => s.restore(&mine),
        None => Err(weir_operators::Error::Snapshot(
            "the snapshot holds state for an operator that keeps none".into(),
        )),
    }
}

/// Where `s` stands in `sh`'s plan (past the end when it is not one of its stages).
fn index_of(sh: &Shared, s: &Stage) -> usize {
    sh.plan
        .stages
        .iter()
        .position(|x| std::ptr::eq(x, s))
        .unwrap_or(usize::MAX)
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
            Stateful::Updating(build_updating(state, s).map_err(e)?, Vec::new()),
            Router::Hash(partitioner(state, s).map_err(e)?),
        ),
        OperatorSpec::LookupJoin { table, .. } => {
            let t = tables
                .iter()
                .find(|t| &t.source.name == table)
                .ok_or_else(|| format!("unknown table '{table}'"))?;
            (
                Stateful::Lookup(
                    build_lookup(state, s, &t.source).map_err(e)?,
                    table.clone(),
                    Vec::new(),
                ),
                Router::Key(lookup_keys(state, s, &t.source).map_err(e)?),
            )
        }
        OperatorSpec::IntervalJoin { right, .. } => {
            let rs = rights
                .next()
                .ok_or("interval join without its second input")?;
            let (lk, rk) = interval_keys(state, s).map_err(e)?;
            let rchain = chain_of(state, rs, &right.stages, (0, None))?;
            let position = sh.plan.provenance.then_some(1);
            let router = Some(Router::Key(rk));
            let parts = source_parts(rs, rchain, router, position, (index, peers))?;
            let mut join = build_interval(state, s).map_err(e)?;
            // Snapshot rows carry the hash the key router places them by.
            join.set_route(crate::dataflow::route::key_hash);
            let step = IntervalStep {
                join,
                right: parts,
                shared: rs.clone(),
            };
            (Stateful::Interval(Box::new(step)), Router::Key(lk))
        }
        _ => (
            Stateful::Window(Counted::wrap(
                build_stage(state, s).map_err(e)?,
                &sh.operators,
                index_of(sh, s),
            )),
            Router::Hash(partitioner(state, s).map_err(e)?),
        ),
    })
}

/// Opens `sh`'s source on worker `index` of `peers`, with its stateless chain and router.
/// With `position` (0 for a pipeline's source, 1 for the stream an interval join reads), the
/// source fills a last, hidden column with each row's position, for provenance: file line,
/// Kafka partition and offset, MQTT worker and archive sequence.
fn source_parts(
    sh: &Shared,
    chain: Vec<Box<dyn BatchOperator>>,
    router: Option<Router>,
    position: Option<usize>,
    (index, peers): (usize, usize),
) -> Result<source::SourceParts, String> {
    let src = &sh.source;
    let mut schema = src.schema.clone();
    let mut internal = Internal {
        checkpointed: sh.cut.checkpointed,
        durable: sh.cut.durable.clone(),
        event_time: src.event_time.clone(),
        ..Internal::default()
    };
    if let Some(i) = position {
        let column = weir_operators::provenance::position_column(i);
        schema = weir_operators::provenance::with_position_column(&schema, column);
        internal.positions = Some(Positions {
            column: column.to_string(),
            encode: weir_operators::provenance::partitioned_position,
        });
    }
    // A table whose connector has tombstones (Kafka), without an op column, marks tombstones
    // (null payloads) in a hidden column.
    if let Some(t) = &src.table {
        let tombstones = registry()
            .source_spec(&src.connector)
            .is_some_and(|s| s.tables == Tables::TableWithTombstones);
        if tombstones && t.op_column.is_none() && t.primary_key.len() == 1 {
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
    let mut source = registry()
        .source(&src.connector, context)
        .map_err(|e| format!("source '{}': {e}", src.name))?;
    // A restored job's source continues where the snapshot's stopped (a table is read again
    // from its start: its contents are its state).
    let key = super::snapshot::source_key(&sh.plan.name, &src.name);
    if let (None, Some(cut)) = (&src.table, sh.cut.restored_source(&key)) {
        let position = cut.position.as_ref().ok_or_else(|| {
            format!(
                "source '{}' cannot continue from the snapshot: its connector keeps no position",
                src.name
            )
        })?;
        source
            .seek(position)
            .map_err(|e| format!("source '{}': {e}", src.name))?;
    }
    Ok(source::SourceParts {
        source,
        chain,
        router,
        peers,
    })
}
