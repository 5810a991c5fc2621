//! Stopping a job at a cut and starting another from it: a job asked to suspend at event time
//! `T` has each source instance stop before its first row at or after `T` plus its watermark
//! delay (so no watermark reaches `T`), and once every row before the cut has gone through,
//! every stateful operator snapshots its state instead of closing what is open, and every sink
//! makes what it wrote durable. The [`JobSnapshot`] holds what the sources had read (their
//! merged positions and watermarks), each stateful operator's state (Arrow batches whose
//! route column says which worker each row belongs to) and each sink's position. A job of
//! the same plan submitted with that snapshot restores it — on any number of workers — and
//! continues: its output after the cut, appended to the first job's, is an uninterrupted run's.
//!
//! State is keyed by the plan's stable node ids; sources by pipeline and source name. Tables
//! are read again from their start (their contents, not their position, are the state).
//! In a cluster each process holds its own workers' parts (durable checkpoints gather them).
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Mutex;

use datafusion::arrow::record_batch::RecordBatch;
use weir_connectors::Position;
use weir_operators::EventTime;

/// Where one source stood at the cut.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceCut {
    /// The merged positions of its instances (`None`: an instance cannot resume).
    pub position: Option<Position>,
    /// The least watermark of the instances that had read rows.
    pub watermark: Option<EventTime>,
}

/// A job stopped at a cut: enough to continue it exactly.
#[derive(Debug, Clone, Default)]
pub struct JobSnapshot {
    /// Per source (`pipeline/source`): where it stood.
    pub sources: BTreeMap<String, SourceCut>,
    /// Per stateful node (its node id): its state, from every worker.
    pub state: BTreeMap<String, Vec<RecordBatch>>,
    /// Per sink name: how far it had durably written.
    pub sinks: BTreeMap<String, Position>,
}

impl JobSnapshot {
    /// Rows of state held, over every node.
    pub fn state_rows(&self) -> usize {
        self.state
            .values()
            .flat_map(|v| v.iter())
            .map(|b| b.num_rows())
            .sum()
    }
}

/// A job's cut: whether and where it was asked to stop, what its operators have put in, and
/// the snapshot it was started from.
#[derive(Debug, Default)]
pub struct Cut {
    /// The job keeps durable checkpoints (its sources commit progress only for them).
    pub checkpointed: bool,
    /// The job's directory in the state dir (durable checkpoints only).
    pub state_dir: Option<std::path::PathBuf>,
    /// Opened once the snapshot the job continues from is durable.
    pub durable: Option<weir_connectors::gate::Gate>,
    /// Where the job keeps the newest dead letters of its run (`weir serve`).
    pub recent_dead: Option<std::sync::Arc<crate::job::recent::RecentDeadLetters>>,
    asked: AtomicBool,
    /// The job's close made its sinks' output durable for the cut (rather than finishing
    /// them): the job is suspended, its snapshot complete.
    suspended: AtomicBool,
    /// Source operator instances built, and those that stopped (at the cut, at their end, or
    /// on a stop): a stopped instance holds its watermark until all have.
    sources: AtomicUsize,
    stopped: AtomicUsize,
    at: AtomicI64,
    taken: Mutex<JobSnapshot>,
    restore: Option<JobSnapshot>,
}

impl Cut {
    /// A cut for a job started from `restore` (if any), asked to stop at `at` (if given).
    pub fn new(at: Option<EventTime>, restore: Option<JobSnapshot>) -> Cut {
        let cut = Cut {
            restore,
            ..Cut::default()
        };
        if let Some(t) = at {
            cut.ask(t);
        }
        cut
    }

    /// Asks the job to stop at event time `at` (`EventTime::MIN`: at once).
    pub fn ask(&self, at: EventTime) {
        self.at.store(at, Ordering::Relaxed);
        self.asked.store(true, Ordering::Release);
    }

    /// The event time the job is to stop at, once asked.
    pub fn asked(&self) -> Option<EventTime> {
        self.asked
            .load(Ordering::Acquire)
            .then(|| self.at.load(Ordering::Relaxed))
    }

    /// A source operator instance was built.
    pub fn source_started(&self) {
        self.sources.fetch_add(1, Ordering::AcqRel);
    }

    /// A source operator instance stopped reading.
    pub fn source_stopped(&self) {
        self.stopped.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether every source instance built so far has stopped. (A worker that builds its
    /// instances only after a cut was asked stops them before they read a row.)
    pub fn all_sources_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire) >= self.sources.load(Ordering::Acquire)
    }

    /// The job's close took the cut: it made its sinks' output durable for it.
    pub fn set_suspended(&self) {
        self.suspended.store(true, Ordering::Release);
    }

    /// Whether the job was suspended at the cut — not merely asked to, as it finished.
    pub fn suspended(&self) -> bool {
        self.suspended.load(Ordering::Acquire)
    }

    /// A source instance of `key` stopped at `position` with `watermark` (`None`: it had read
    /// nothing).
    pub fn add_source(&self, key: &str, position: Option<Position>, watermark: Option<EventTime>) {
        let Ok(mut t) = self.taken.lock() else { return };
        let had = t.sources.contains_key(key);
        let e = t.sources.entry(key.to_string()).or_default();
        e.position = match (had, e.position.take(), position) {
            (false, _, p) => p,
            (true, Some(a), Some(b)) => Some(weir_connectors::merge_positions([&a, &b])),
            (true, _, _) => None,
        };
        e.watermark = match (e.watermark, watermark) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// A worker's state of node `node`.
    pub fn add_state(&self, node: &str, batches: Vec<RecordBatch>) {
        if let Ok(mut t) = self.taken.lock() {
            t.state.entry(node.to_string()).or_default().extend(batches);
        }
    }

    /// A sink's position.
    pub fn add_sink(&self, name: &str, position: Position) {
        if let Ok(mut t) = self.taken.lock() {
            t.sinks.insert(name.to_string(), position);
        }
    }

    /// What the job has put in so far.
    pub fn taken(&self) -> JobSnapshot {
        self.taken.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// The snapshot the job started from.
    pub fn restore(&self) -> Option<&JobSnapshot> {
        self.restore.as_ref()
    }

    /// Where source `key` stood in the snapshot the job started from.
    pub fn restored_source(&self, key: &str) -> Option<&SourceCut> {
        self.restore.as_ref()?.sources.get(key)
    }

    /// Node `node`'s state in the snapshot the job started from.
    pub fn restored_state(&self, node: &str) -> &[RecordBatch] {
        self.restore
            .as_ref()
            .and_then(|s| s.state.get(node))
            .map(|v| v.as_slice())
            .unwrap_or(&[])
    }
}

/// The key of a source in a snapshot: the pipeline (or table) reading it and its name.
pub fn source_key(pipeline: &str, source: &str) -> String {
    format!("{pipeline}/{source}")
}
