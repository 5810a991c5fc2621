//! The source adapter: polls a connector, tracks the watermark (max event time − delay, per
//! source instance), holds a capability at it, separates late rows (dropped and counted, or
//! written to the late sink), writes undecodable records to the dead-letter file, runs the
//! stateless operators before the exchange, and splits rows by key for the exchange.
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use datafusion::arrow::array::BooleanArray;
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::record_batch::RecordBatch;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{Scope, Stream};
use weir_connectors::{PartitionState, Poll, Source};
use weir_operators::time::to_millis;
use weir_operators::{run_chain, BatchOperator};

use super::batch::BatchMsg;
use super::route::{self, Router};
use super::source_cut::{After, Before, CutReader};
use super::{DeadLetter, Shared};
use crate::metrics::Metrics;

/// The operator's name in errors.
const OP: &str = "Source";

/// Rows per poll.
pub(super) const POLL_ROWS: usize = 8192;
/// How soon an idle source polls again.
const IDLE_POLL: std::time::Duration = std::time::Duration::from_millis(2);
/// Polls per activation, so other operators get to run.
const POLLS_PER_STEP: usize = 8;

/// Everything one worker's source instance needs.
pub struct SourceParts {
    /// The connector instance.
    pub source: Box<dyn Source>,
    /// Stateless operators before the exchange.
    pub chain: Vec<Box<dyn BatchOperator>>,
    /// Routes rows to the first stateful operator's workers (`None`: no exchange by key).
    pub router: Option<Router>,
    /// Number of workers.
    pub peers: usize,
}

/// Builds the source operator; its output is `(target worker, batch)`.
pub fn build<'s>(
    scope: Scope<'s, u64>,
    shared: Shared,
    mut parts: SourceParts,
) -> Stream<'s, u64, Vec<(u64, BatchMsg)>> {
    let time_index = shared
        .source
        .event_time
        .as_ref()
        .and_then(|et| shared.source.schema.index_of(et).ok());
    let delay = shared.source.watermark_delay_ms;
    let idle_timeout = shared.source.idle_timeout_ms;
    let max_future = shared.source.max_future_ms;
    let live = weir_connectors::registry()
        .source_spec(&shared.source.connector)
        .is_some_and(|s| s.live);
    shared.cut.source_started();
    source::<_, CapacityContainerBuilder<Vec<(u64, BatchMsg)>>, _, _>(
        scope,
        "Source",
        move |cap, info| {
            let activator = scope.activator_for(info.address);
            let mut cap = Some(cap);
            let mut marks = Watermarks::new(delay, idle_timeout, max_future, live);
            // A restored job's source goes on from the watermark it had.
            let (mut cut, restored) = CutReader::new(&shared);
            let mut wm = restored.unwrap_or(0).max(0);
            let mut last_data = Instant::now();
            let mut out = Vec::new();
            let mut stopped = false;
            move |output| {
                shared.guard(OP, || {
                    if stopped {
                        // Stopped at a cut: hold the watermark until every source instance of
                        // the job has stopped, so that no other instance's progress lets
                        // windows close that rows after this instance's cut still belong to.
                        if shared.cut.all_sources_stopped() || shared.failed() {
                            cap = None;
                        } else {
                            activator.activate_after(IDLE_POLL);
                        }
                        return;
                    }
                    let Some(c) = cap.as_mut() else { return };
                    let mut done = false;
                    let mut idle = false;
                    for _ in 0..POLLS_PER_STEP {
                        marks.assign(parts.source.partitions());
                        // A restored instance stands at its restored watermark even before
                        // it reads a row; so does one with partitions to read (they hold the
                        // watermark back): a cut must not take another instance's watermark
                        // for them, or their rows would be late after the restore.
                        let seen = (marks.seen() || restored.is_some() || marks.has_partitions())
                            .then_some(wm);
                        let timed = time_index.is_some();
                        let rows = match cut.before(&shared, parts.source.as_ref(), timed, seen) {
                            Before::Poll(rows) => rows,
                            Before::Stop => {
                                done = true;
                                break;
                            }
                        };
                        let polled = match parts.source.poll(rows) {
                            Ok(p) => p,
                            Err(e) => {
                                shared.fail(OP, format!("source '{}': {e}", shared.source.name));
                                done = true;
                                break;
                            }
                        };
                        match polled {
                            Poll::Done => {
                                cut.ended(&shared, parts.source.as_ref(), seen);
                                done = true;
                                break;
                            }
                            Poll::Idle => {
                                idle = true;
                                marks.refresh(&mut wm);
                                if let Some(t) = idle_timeout {
                                    if last_data.elapsed().as_millis() as i64 >= t {
                                        let global = shared.max_watermark.load(Ordering::Relaxed);
                                        if global > wm {
                                            wm = global;
                                        }
                                    }
                                }
                                break;
                            }
                            Poll::Data {
                                batch,
                                bad,
                                partition,
                            } => {
                                if let (Some(ti), Some(b)) = (time_index, &batch) {
                                    match cut.after(&shared, parts.source.as_mut(), b, ti, seen) {
                                        After::Take => {}
                                        After::Again => continue,
                                        After::Stop => {
                                            done = true;
                                            break;
                                        }
                                    }
                                }
                                last_data = Instant::now();
                                dead_letters(&shared, &bad);
                                let Some(batch) = batch else { continue };
                                let on_time = match time_index {
                                    None => {
                                        Metrics::add(&shared.input.rows_in, batch.num_rows());
                                        batch
                                    }
                                    Some(ti) => {
                                        match marks.split_late(&batch, ti, partition, &mut wm) {
                                            Ok(split) => {
                                                let n = batch.num_rows() - split.future.len();
                                                Metrics::add(&shared.input.rows_in, n);
                                                let src = parts.source.as_ref();
                                                quarantine(&shared, src, &batch, ti, &split.future);
                                                late_rows(&shared, split.late);
                                                split.on_time
                                            }
                                            Err(e) => {
                                                shared.fail(OP, e);
                                                done = true;
                                                break;
                                            }
                                        }
                                    }
                                };
                                if on_time.num_rows() == 0 {
                                    continue;
                                }
                                out.clear();
                                if let Err(e) = run_chain(&mut parts.chain, on_time, &mut out) {
                                    shared.fail_chain(OP, e);
                                    done = true;
                                    break;
                                }
                                let mut session = output.session(&*c);
                                for b in out.drain(..) {
                                    match route::parts(parts.router.as_ref(), b, parts.peers) {
                                        Ok(split) => {
                                            for (t, sb) in split {
                                                session.give((t as u64, BatchMsg(sb)));
                                            }
                                        }
                                        Err(e) => shared.fail(OP, e),
                                    }
                                }
                            }
                        }
                        // Downgrade after every poll: rows emitted later are at or above `wm`.
                        let t = wm.max(0) as u64;
                        if *c.time() < t {
                            c.downgrade(&t);
                        }
                    }
                    shared.max_watermark.fetch_max(wm, Ordering::Relaxed);
                    let t = wm.max(0) as u64;
                    if *c.time() < t {
                        c.downgrade(&t);
                    }
                    if done || shared.stopping() || shared.failed() {
                        stopped = true;
                        shared.cut.source_stopped();
                        let hold = shared.cut.asked().is_some() && !shared.failed();
                        if hold && !shared.cut.all_sources_stopped() {
                            activator.activate_after(IDLE_POLL);
                        } else {
                            cap = None;
                        }
                    } else if idle {
                        // Nothing to read now: look again shortly, leaving the worker to other jobs.
                        activator.activate_after(IDLE_POLL);
                    } else {
                        activator.activate();
                    }
                })
            }
        },
    )
}

/// Counts undecodable records and writes them to the source's dead-letter output.
fn dead_letters(shared: &Shared, bad: &[weir_connectors::BadRecord]) {
    if bad.is_empty() {
        return;
    }
    Metrics::add(&shared.input.dead_letter, bad.len());
    if let Some(r) = &shared.cut.recent_dead {
        r.push(&shared.source.name, bad);
    }
    match &shared.dead {
        Some(DeadLetter::File(d)) => {
            if let Ok(mut d) = d.lock() {
                for r in bad {
                    if let Err(e) = d.write(&shared.source.name, r) {
                        shared.fail(OP, e);
                    }
                }
            }
        }
        Some(DeadLetter::Sink(s)) => {
            let written =
                weir_connectors::deadletter::to_batch(&shared.source.name, bad).and_then(|b| {
                    s.lock()
                        .map_err(|_| weir_connectors::Error::Format("poisoned".into()))?
                        .write(&b)
                });
            if let Err(e) = written {
                shared.fail(OP, format!("dead-letter sink: {e}"));
            }
        }
        None => {}
    }
}

/// Rows whose event time is too far ahead (`max_future`): dead letters with the row's position
/// and the row itself as JSON, instead of rows that would make every later row late.
fn quarantine(
    shared: &Shared,
    source: &dyn Source,
    batch: &RecordBatch,
    ti: usize,
    rows: &[usize],
) {
    if rows.is_empty() {
        return;
    }
    let name = batch.schema().field(ti).name().clone();
    let ts = to_millis(&name, batch.column(ti)).unwrap_or_default();
    let bad: Vec<weir_connectors::BadRecord> = rows
        .iter()
        .map(|&i| {
            let mut payload = Vec::new();
            let row = batch.slice(i, 1);
            let _ = weir_connectors::format::Format::Json.encode(&row, false, &mut payload);
            while payload.last() == Some(&b'\n') {
                payload.pop();
            }
            let t = ts.get(i).copied().unwrap_or_default();
            weir_connectors::BadRecord {
                position: source.row_position(i).unwrap_or_else(|| format!("row {i}")),
                error: why_quarantined(shared, &name, t),
                payload,
            }
        })
        .collect();
    dead_letters(shared, &bad);
}

/// Why a row with event time `t` (ms, column `name`) was quarantined.
fn why_quarantined(shared: &Shared, name: &str, t: i64) -> String {
    if !weir_operators::time::in_range(t) {
        return format!(
            "event time {t} ms ({name}) is out of range: weir takes event times within \
             ±{} ms of the epoch (about the years 1717 to 2223)",
            weir_operators::time::MAX_EVENT_TIME
        );
    }
    let margin = shared
        .source
        .max_future_ms
        .unwrap_or(0)
        .max(shared.source.watermark_delay_ms);
    if live_hint(shared) && t > now_ms().saturating_add(margin) {
        return format!(
            "event time {t} ms ({name}) is more than {margin} ms (max_future) ahead of the wall \
             clock: a device clock is wrong; quarantined so that it cannot make later rows late"
        );
    }
    format!(
        "event time {t} ms ({name}) is more than {margin} ms (max_future) ahead of the source's \
         highest accepted event time and of the rows after it: an outlier, quarantined so that \
         it cannot make later rows late"
    )
}

/// Whether the source's connector is live (the wall clock bounds its event times too).
fn live_hint(shared: &Shared) -> bool {
    weir_connectors::registry()
        .source_spec(&shared.source.connector)
        .is_some_and(|s| s.live)
}

/// Counts late rows and writes them to the pipeline's late-row sink, if it has one.
fn late_rows(shared: &Shared, late: Option<RecordBatch>) {
    let Some(late) = late else { return };
    Metrics::add(&shared.input.late, late.num_rows());
    if let Some(s) = &shared.late {
        if let Ok(mut s) = s.lock() {
            if let Err(e) = s.write(&late) {
                shared.fail(OP, e);
            }
        }
    }
}

/// A batch split by event time: rows on time, late rows, and the indices of rows quarantined
/// for an event time too far ahead.
struct Split {
    on_time: RecordBatch,
    late: Option<RecordBatch>,
    future: Vec<usize>,
}

/// The least event time after each row of a batch, computed only when a row needs it.
struct Later<'a> {
    ts: &'a [i64],
    suffix: Option<Vec<i64>>,
}

impl<'a> Later<'a> {
    fn new(ts: &'a [i64]) -> Self {
        Later { ts, suffix: None }
    }

    /// The least event time of the rows after row `i` (`i64::MAX`: none).
    fn min_after(&mut self, i: usize) -> i64 {
        let ts = self.ts;
        let suffix = self.suffix.get_or_insert_with(|| {
            let mut s = vec![i64::MAX; ts.len() + 1];
            for j in (0..ts.len()).rev() {
                s[j] = s[j + 1].min(ts[j]);
            }
            s
        });
        suffix.get(i + 1).copied().unwrap_or(i64::MAX)
    }
}

/// The wall clock, epoch ms.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The watermark of one source instance: the highest event time seen minus the delay, or, for
/// a partitioned source, the least of the partitions' (leaving out partitions idle for longer
/// than the idle timeout).
struct Watermarks {
    delay: i64,
    idle_timeout: Option<i64>,
    /// How far a row may be ahead of the highest event time accepted (`max_future`).
    max_future: Option<i64>,
    /// Whether the wall clock counts as accepted too (a live source).
    live: bool,
    max_ts: i64,
    partitions: HashMap<u32, Partition>,
}

/// One partition's progress.
struct Partition {
    max: i64,
    last: Instant,
    state: PartitionState,
}

impl Watermarks {
    fn new(delay: i64, idle_timeout: Option<i64>, max_future: Option<i64>, live: bool) -> Self {
        Watermarks {
            delay,
            idle_timeout,
            max_future,
            live,
            max_ts: i64::MIN,
            partitions: HashMap::new(),
        }
    }

    /// Splits `batch` into on-time and late rows, and the indices of rows too far in the
    /// future (quarantined: neither on time nor late). Without partitions the watermark
    /// advances row by row (a row is late when its event time is below the watermark left by
    /// the rows before it); with a partition, rows are judged against the watermark at the
    /// batch's start and the partition's maximum then moves the combined watermark.
    fn split_late(
        &mut self,
        batch: &RecordBatch,
        ti: usize,
        partition: Option<u32>,
        wm: &mut i64,
    ) -> Result<Split, weir_operators::Error> {
        let name = batch.schema().field(ti).name().clone();
        let ts = to_millis(&name, batch.column(ti))?;
        let mut keep = Vec::with_capacity(ts.len());
        let mut future = Vec::new();
        let mut any_late = false;
        let start_wm = *wm;
        let before = match partition {
            Some(p) => self.partitions.get(&p).map_or(i64::MIN, |e| e.max),
            None => self.max_ts,
        };
        let mut part_max = i64::MIN;
        let now = self.live.then(now_ms);
        let mut later = Later::new(&ts);
        for (i, &t) in ts.iter().enumerate() {
            if self.too_far(i, t, before.max(part_max), now, &mut later) {
                keep.push(false);
                future.push(i);
                continue;
            }
            let limit = if partition.is_some() { start_wm } else { *wm };
            if t < limit {
                keep.push(false);
                any_late = true;
            } else {
                keep.push(true);
                part_max = part_max.max(t);
                if partition.is_none() && t > self.max_ts {
                    self.max_ts = t;
                    *wm = (*wm).max(t.saturating_sub(self.delay));
                }
            }
        }
        if let Some(p) = partition {
            let e = self.partitions.entry(p).or_insert(Partition {
                max: i64::MIN,
                last: Instant::now(),
                state: PartitionState::Reading,
            });
            e.max = e.max.max(part_max);
            e.last = Instant::now();
            *wm = (*wm).max(self.combined());
        }
        if !any_late && future.is_empty() {
            return Ok(Split {
                on_time: batch.clone(),
                late: None,
                future,
            });
        }
        let on_time = filter_record_batch(batch, &BooleanArray::from(keep.clone()))?;
        let late = match any_late {
            true => {
                // Late: neither kept nor quarantined (`future` is in row order).
                let mask: BooleanArray = (0..keep.len())
                    .map(|i| Some(!keep[i] && future.binary_search(&i).is_err()))
                    .collect();
                Some(filter_record_batch(batch, &mask)?)
            }
            false => None,
        };
        Ok(Split {
            on_time,
            late,
            future,
        })
    }

    /// Whether row `i`, at event time `t`, is quarantined: out of range; for a live source,
    /// more than `max_future` ahead of the wall clock `now`; or more than `max_future` ahead
    /// of `accepted` (the highest event time accepted so far; `i64::MIN`: none yet) while a
    /// later row of the batch is that far behind it — the stream came back, so the row was an
    /// outlier, not a gap in sparse data. The margin is at least the watermark delay: disorder
    /// declared as expected is never quarantined.
    fn too_far(
        &self,
        i: usize,
        t: i64,
        accepted: i64,
        now: Option<i64>,
        later: &mut Later,
    ) -> bool {
        if !weir_operators::time::in_range(t) {
            return true;
        }
        let Some(max) = self.max_future.map(|m| m.max(self.delay)) else {
            return false;
        };
        if now.is_some_and(|n| t > n.saturating_add(max)) {
            return true;
        }
        t > accepted.saturating_add(max) && later.min_after(i) < t.saturating_sub(max)
    }

    /// Whether the instance reads partitions.
    fn has_partitions(&self) -> bool {
        !self.partitions.is_empty()
    }

    /// Whether the instance has read any row with an event time.
    fn seen(&self) -> bool {
        self.max_ts != i64::MIN || self.partitions.values().any(|p| p.max != i64::MIN)
    }

    /// Records the source's partitions and where each stands.
    fn assign(&mut self, list: Vec<(u32, PartitionState)>) {
        for (p, state) in list {
            let e = self.partitions.entry(p).or_insert(Partition {
                max: i64::MIN,
                last: Instant::now(),
                state,
            });
            if e.state != state && state == PartitionState::CaughtUp {
                // Idleness counts from when the partition caught up, or its last row if later.
                e.last = e.last.max(Instant::now());
            }
            e.state = state;
        }
    }

    /// The least maximum among active partitions, minus the delay. Finished partitions and
    /// partitions caught up and idle for `idle_timeout` do not count; a partition still
    /// reading without data yet holds the watermark back; with none active, the highest.
    fn combined(&self) -> i64 {
        let idle = |p: &Partition| match self.idle_timeout {
            Some(t) => {
                p.state == PartitionState::CaughtUp && p.last.elapsed().as_millis() as i64 >= t
            }
            None => false,
        };
        let active: Vec<&Partition> = self
            .partitions
            .values()
            .filter(|p| p.state != PartitionState::Finished && !idle(p))
            .collect();
        if active.iter().any(|p| p.max == i64::MIN) {
            return i64::MIN;
        }
        let least = active.iter().map(|p| p.max).min();
        let least = least.or_else(|| self.partitions.values().map(|p| p.max).max());
        least
            .map(|m| m.saturating_sub(self.delay))
            .unwrap_or(i64::MIN)
    }

    /// Re-evaluates the combined watermark (idle partitions drop out over time).
    fn refresh(&self, wm: &mut i64) {
        if !self.partitions.is_empty() {
            *wm = (*wm).max(self.combined());
        }
    }
}
