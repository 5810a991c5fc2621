//! The `table` sink: a pipeline's latest results kept in memory, for `SELECT … FROM name`
//! over `weir serve`'s REST and Postgres doors (what dashboards and Grafana read).
//!
//! Options: `key` (comma-separated columns: one row per key, the latest wins), else the rows
//! as they came, bounded by `max_rows` (default 100000; the oldest go first) and `retain`
//! (a duration: rows older than that, by arrival, go). A table is process-wide, named after
//! the sink: it outlives the job that writes it (a checkpointed pipeline is a chain of jobs),
//! and a pipeline started again fills it on. It is not durable: after a restart it holds what
//! the pipeline has written since. [`Table::subscribe`] gives its rows now and its changes
//! from then on, each row with a diff (`SUBSCRIBE` over Postgres; `weir serve`'s server-sent
//! events take the rows that came).
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use std::sync::mpsc::Receiver;

use datafusion::arrow::array::{Array, UInt32Array};
use datafusion::arrow::compute::{concat_batches, take_record_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use self::changes::gather;
pub use self::changes::Change;
use crate::describe::{opt, ConnectorSpec, Kind};
use crate::{Error, Options, Result, Sink, SinkContext};

/// The table sink's options.
pub const SPEC: ConnectorSpec = ConnectorSpec {
    name: "table",
    tables: crate::describe::Tables::Stream,
    formats: &[],
    options: &[&[
        opt(
            "key",
            Kind::Text,
            "",
            "columns identifying a row: the latest row per key is kept",
        ),
        opt(
            "max_rows",
            Kind::Integer,
            "100000",
            "rows kept at most (the oldest go first)",
        ),
        opt(
            "retain",
            Kind::Duration,
            "0",
            "rows older than this (by arrival) go (0: kept until max_rows)",
        ),
    ]],
    provenance: crate::describe::Provenance::Untraced,
    dataset: None,
    resumable: crate::describe::Resumable::No,
    live: false,
};

/// How many changes a follower may fall behind before it is let go.
pub const FOLLOWER_LAG: usize = 1024;

/// A kept row: its compact batch, its index there, its arrival.
type Kept = (Arc<RecordBatch>, usize, Instant);

/// What a table holds.
enum Rows {
    /// The latest row per key.
    Keyed(HashMap<String, Kept>),
    /// Rows as they came, oldest first.
    Log(VecDeque<(Instant, RecordBatch)>, usize),
}

/// One in-memory table.
pub struct Table {
    schema: SchemaRef,
    key: Vec<usize>,
    max_rows: usize,
    retain: Option<Duration>,
    rows: Mutex<Rows>,
    /// Who follows the changes as they come (a slow follower that falls [`FOLLOWER_LAG`]
    /// changes behind is let go, never waited for).
    followers: Mutex<Vec<std::sync::mpsc::SyncSender<Change>>>,
}

fn tables() -> &'static Mutex<BTreeMap<String, Arc<Table>>> {
    static TABLES: OnceLock<Mutex<BTreeMap<String, Arc<Table>>>> = OnceLock::new();
    TABLES.get_or_init(Default::default)
}

/// Every table of this process, by name.
pub fn all() -> Vec<(String, Arc<Table>)> {
    tables()
        .lock()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// Forgets table `name` (its pipeline was deleted).
pub fn drop_table(name: &str) {
    if let Ok(mut t) = tables().lock() {
        t.remove(name);
    }
}

impl Table {
    /// Its schema.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Follows the changes from now on.
    pub fn follow(&self) -> Receiver<Change> {
        match self.subscribe(false) {
            Ok((_, rx)) => rx,
            Err(_) => std::sync::mpsc::sync_channel(0).1,
        }
    }

    /// Its rows now (when `snapshot`) and its changes from then on, taken together so that
    /// no change is missed or seen twice.
    pub fn subscribe(&self, snapshot: bool) -> Result<(Option<RecordBatch>, Receiver<Change>)> {
        let mut rows = self.lock()?;
        let went = self.expire(&mut rows)?;
        self.tell(&went, None)?;
        let now = match snapshot {
            true => Some(self.rows_of(&rows)?),
            false => None,
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(FOLLOWER_LAG);
        if let Ok(mut f) = self.followers.lock() {
            f.push(tx);
        }
        Ok((now, rx))
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Rows>> {
        self.rows
            .lock()
            .map_err(|_| Error::Format("table poisoned".into()))
    }

    /// Whether anyone follows (rows that went are gathered only then).
    fn followed(&self) -> bool {
        self.followers.lock().is_ok_and(|f| !f.is_empty())
    }

    /// Tells the followers (called with the rows locked, so changes keep their order).
    fn tell(&self, went: &[RecordBatch], came: Option<&RecordBatch>) -> Result<()> {
        let Ok(mut f) = self.followers.lock() else {
            return Ok(());
        };
        if f.is_empty() {
            return Ok(());
        }
        if let Some(c) = Change::of(&self.schema, went, came)? {
            f.retain(|tx| tx.try_send(c.clone()).is_ok());
        }
        Ok(())
    }

    /// How many rows it holds now.
    pub fn len(&self) -> usize {
        let Ok(mut rows) = self.lock() else {
            return 0;
        };
        if let Ok(went) = self.expire(&mut rows) {
            let _ = self.tell(&went, None);
        }
        match &*rows {
            Rows::Log(_, n) => *n,
            Rows::Keyed(m) => m.len(),
        }
    }

    /// Whether it holds no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its rows now, as one batch.
    pub fn snapshot(&self) -> Result<RecordBatch> {
        let mut rows = self.lock()?;
        let went = self.expire(&mut rows)?;
        self.tell(&went, None)?;
        self.rows_of(&rows)
    }

    fn rows_of(&self, rows: &Rows) -> Result<RecordBatch> {
        let batches: Vec<RecordBatch> = match rows {
            Rows::Log(q, _) => q.iter().map(|(_, b)| b.clone()).collect(),
            Rows::Keyed(m) => gather(m.values().map(|(b, i, _)| (b, *i)))?,
        };
        concat_batches(&self.schema, &batches).map_err(Error::from)
    }

    /// Drops rows older than `retain`; the rows that went, when followed.
    fn expire(&self, rows: &mut Rows) -> Result<Vec<RecordBatch>> {
        let Some(keep) = self.retain else {
            return Ok(Vec::new());
        };
        let (now, followed) = (Instant::now(), self.followed());
        let mut went = Vec::new();
        match rows {
            Rows::Log(q, n) => {
                while q
                    .front()
                    .is_some_and(|(t, _)| now.duration_since(*t) > keep)
                {
                    if let Some((_, b)) = q.pop_front() {
                        *n -= b.num_rows();
                        went.push(b);
                    }
                }
            }
            Rows::Keyed(m) => {
                let old: Vec<String> = m
                    .iter()
                    .filter(|(_, (_, _, t))| now.duration_since(*t) > keep)
                    .map(|(k, _)| k.clone())
                    .collect();
                let gone: Vec<_> = old.iter().filter_map(|k| m.remove(k)).collect();
                if followed {
                    went = gather(gone.iter().map(|(b, i, _)| (b, *i)))?;
                }
            }
        }
        Ok(went)
    }

    /// Takes in `batch`.
    fn add(&self, batch: &RecordBatch) -> Result<()> {
        let mut rows = self.lock()?;
        let mut went = self.expire(&mut rows)?;
        let came = match &mut *rows {
            Rows::Log(q, n) => {
                q.push_back((Instant::now(), batch.clone()));
                *n += batch.num_rows();
                went.extend(self.bound_log(q, n));
                batch.clone()
            }
            Rows::Keyed(m) => {
                let (compact, gone) = self.add_keyed(m, batch)?;
                if self.followed() {
                    went.extend(gather(gone.iter().map(|(b, i, _)| (b, *i)))?);
                }
                compact
            }
        };
        self.tell(&went, Some(&came))
    }

    /// Keeps the newest `max_rows` of a log; the rows pushed out.
    fn bound_log(
        &self,
        q: &mut VecDeque<(Instant, RecordBatch)>,
        n: &mut usize,
    ) -> Vec<RecordBatch> {
        let mut went = Vec::new();
        while *n > self.max_rows {
            let Some((t, front)) = q.pop_front() else {
                break;
            };
            let over = *n - self.max_rows;
            if front.num_rows() > over {
                went.push(front.slice(0, over));
                q.push_front((t, front.slice(over, front.num_rows() - over)));
                *n -= over;
            } else {
                *n -= front.num_rows();
                went.push(front);
            }
        }
        went
    }

    /// Puts the last row of each key in `batch` in place: the rows kept (compact) and the
    /// ones replaced or pushed out by `max_rows`.
    fn add_keyed(
        &self,
        m: &mut HashMap<String, Kept>,
        batch: &RecordBatch,
    ) -> Result<(RecordBatch, Vec<Kept>)> {
        let keys = self.keys(batch)?;
        let mut last: HashMap<&str, usize> = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            last.insert(k.as_str(), i);
        }
        let mut idx: Vec<u32> = last.values().map(|&i| i as u32).collect();
        idx.sort_unstable();
        let compact = Arc::new(take_record_batch(batch, &UInt32Array::from(idx.clone()))?);
        let (now, mut gone) = (Instant::now(), Vec::new());
        for (j, &i) in idx.iter().enumerate() {
            gone.extend(m.insert(keys[i as usize].clone(), (compact.clone(), j, now)));
        }
        if m.len() > self.max_rows {
            // Over the bound: the keys heard from longest ago go.
            let mut ages: Vec<(Instant, String)> =
                m.iter().map(|(k, (_, _, t))| (*t, k.clone())).collect();
            ages.sort();
            for (_, k) in ages.into_iter().take(m.len() - self.max_rows) {
                gone.extend(m.remove(&k));
            }
        }
        // A row of this batch pushed out at once neither came nor went.
        let (fresh, gone): (Vec<_>, Vec<_>) = gone
            .into_iter()
            .partition(|(b, _, _)| Arc::ptr_eq(b, &compact));
        if fresh.is_empty() {
            return Ok(((*compact).clone(), gone));
        }
        let out: Vec<u32> = fresh.iter().map(|(_, j, _)| *j as u32).collect();
        let kept: Vec<u32> = (0..compact.num_rows() as u32)
            .filter(|j| !out.contains(j))
            .collect();
        Ok((take_record_batch(&compact, &UInt32Array::from(kept))?, gone))
    }

    /// Each row's key as text.
    fn keys(&self, batch: &RecordBatch) -> Result<Vec<String>> {
        let opts = FormatOptions::default().with_null("\u{0}");
        let fmts = self
            .key
            .iter()
            .map(|&c| ArrayFormatter::try_new(batch.column(c).as_ref() as &dyn Array, &opts))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok((0..batch.num_rows())
            .map(|r| {
                fmts.iter()
                    .map(|f| f.value(r).to_string())
                    .collect::<Vec<_>>()
                    .join("\u{1}")
            })
            .collect())
    }
}

/// Writes into a process-wide table.
pub struct TableSink {
    table: Arc<Table>,
    metrics: Arc<crate::ConnectorMetrics>,
}

/// Builds the table sink (the table is made, or taken up again with the same schema and
/// options).
pub fn build(ctx: SinkContext) -> Result<Box<dyn Sink>> {
    let mut o = Options::new(&SPEC, ctx.options);
    let key_text = o.string("key").unwrap_or_default();
    let max_rows = o.u64("max_rows", 100_000)?.max(1) as usize;
    let retain = o.duration_ms("retain", 0)?;
    o.finish()?;
    let retain = (retain > 0).then(|| Duration::from_millis(retain as u64));
    let mut key = Vec::new();
    for k in key_text.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        let i = ctx.schema.index_of(k).map_err(|_| Error::Option {
            option: "key".into(),
            message: format!("'{k}': the sink's rows have no such column"),
        })?;
        key.push(i);
    }
    let mut all = tables()
        .lock()
        .map_err(|_| Error::Format("tables poisoned".into()))?;
    let same = all.get(&ctx.name).filter(|t| {
        t.schema == ctx.schema && t.key == key && t.max_rows == max_rows && t.retain == retain
    });
    let table = match same {
        Some(t) => t.clone(),
        None => {
            let rows = match key.is_empty() {
                true => Rows::Log(VecDeque::new(), 0),
                false => Rows::Keyed(HashMap::new()),
            };
            let t = Arc::new(Table {
                schema: ctx.schema.clone(),
                key,
                max_rows,
                retain,
                rows: Mutex::new(rows),
                followers: Mutex::new(Vec::new()),
            });
            all.insert(ctx.name.clone(), t.clone());
            t
        }
    };
    Ok(Box::new(TableSink {
        table,
        metrics: ctx.metrics,
    }))
}

impl Sink for TableSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        crate::ConnectorMetrics::add(&self.metrics.messages, batch.num_rows() as u64);
        self.table.add(batch)
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

mod changes;
#[cfg(test)]
mod tests;
