//! A source instance's part in suspending a job at a cut (`job/snapshot.rs`): before each poll
//! it notes where the source stands; a batch with a row at or after the cut (`T` plus the
//! watermark delay) is not taken — the source goes back to before it and reads row by row,
//! and stops before the first such row, recording that position and its watermark. A source
//! without event time, or that keeps no position, stops at once. A table without event time
//! is read whole (its rows have no time to cut at) unless the cut is at once.
use datafusion::arrow::record_batch::RecordBatch;
use weir_connectors::{Position, Source};
use weir_operators::time::to_millis;
use weir_operators::EventTime;

use super::Shared;
use crate::job::snapshot::source_key;

/// The operator's name in errors.
const OP: &str = "Source";

/// What to do before a poll.
pub enum Before {
    /// Poll up to this many rows.
    Poll(usize),
    /// Stop: the cut is here.
    Stop,
}

/// What to do with a polled batch.
pub enum After {
    /// Take it.
    Take,
    /// Drop it: the source went back to before it and reads on row by row.
    Again,
    /// Drop it and stop: the cut is before it.
    Stop,
}

/// One source instance's cut.
pub struct CutReader {
    key: String,
    /// The position before the batch just polled (while a cut is asked).
    before: Option<Position>,
    /// The cut's limit for that batch (`T` plus the delay).
    limit: Option<EventTime>,
    /// Reading row by row: a batch crossed the cut.
    fine: bool,
}

impl CutReader {
    /// The cut reader of `shared`'s source, and the watermark it restarts from (a restored
    /// job's source, not a table's: a table is read again from its start).
    pub fn new(shared: &Shared) -> (CutReader, Option<EventTime>) {
        let key = source_key(&shared.plan.name, &shared.source.name);
        let restored = match shared.source.table {
            None => shared.cut.restored_source(&key).and_then(|c| c.watermark),
            Some(_) => None,
        };
        let reader = CutReader {
            key,
            before: None,
            limit: None,
            fine: false,
        };
        (reader, restored)
    }

    /// Before a poll; `seen`: the watermark, if the instance has read rows.
    pub fn before(
        &mut self,
        shared: &Shared,
        source: &dyn Source,
        timed: bool,
        seen: Option<EventTime>,
    ) -> Before {
        let at = shared
            .cut
            .asked()
            .filter(|t| shared.source.table.is_none() || timed || *t == EventTime::MIN);
        self.limit = None;
        let Some(t) = at else {
            return Before::Poll(super::source::POLL_ROWS);
        };
        let position = source.position();
        if t == EventTime::MIN || !timed || position.is_none() {
            // At once: no event time to cut at, or no way back.
            shared.cut.add_source(&self.key, position, seen);
            return Before::Stop;
        }
        self.before = position;
        self.limit = Some(t.saturating_add(shared.source.watermark_delay_ms));
        Before::Poll(if self.fine {
            1
        } else {
            super::source::POLL_ROWS
        })
    }

    /// After a poll gave `batch` (event times in column `ti`).
    pub fn after(
        &mut self,
        shared: &Shared,
        source: &mut dyn Source,
        batch: &RecordBatch,
        ti: usize,
        seen: Option<EventTime>,
    ) -> After {
        let Some(limit) = self.limit else {
            return After::Take;
        };
        let name = batch.schema().field(ti).name().clone();
        let crosses = match to_millis(&name, batch.column(ti)) {
            Ok(ts) => ts.iter().any(|t| *t >= limit),
            Err(e) => {
                shared.fail(OP, e);
                return After::Take;
            }
        };
        match (crosses, self.fine) {
            (false, _) => After::Take,
            (true, false) => {
                if let Some(p) = &self.before {
                    if let Err(e) = source.seek(p) {
                        shared.fail(OP, e);
                    }
                }
                self.fine = true;
                After::Again
            }
            (true, true) => {
                shared.cut.add_source(&self.key, self.before.take(), seen);
                After::Stop
            }
        }
    }

    /// The source ended: where, in case the job is suspended later.
    pub fn ended(&self, shared: &Shared, source: &dyn Source, seen: Option<EventTime>) {
        shared.cut.add_source(&self.key, source.position(), seen);
    }
}
