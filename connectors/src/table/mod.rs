//! The `table` sink: a pipeline's latest results kept in memory, for `SELECT … FROM name`
//! over `weir serve`'s REST and Postgres doors (what dashboards and Grafana read).
//!
//! Options: `key` (comma-separated columns: one row per key, the latest wins), else the rows
//! as they came, bounded by `max_rows` (default 100000; the oldest go first) and `retain`
//! (a duration: rows older than that, by arrival, go). A table is process-wide, named after
//! the sink: it outlives the job that writes it (a checkpointed pipeline is a chain of jobs),
//! and a pipeline started again fills it on. It is not durable: after a restart it holds what
//! the pipeline has written since. [`Table::follow`] streams the rows written as they come
//! (`weir serve`'s server-sent events).
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, UInt32Array};
use datafusion::arrow::compute::{concat_batches, take_record_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

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
};

/// What a table holds.
enum Rows {
    /// The latest row per key: (its compact batch, row index, arrival).
    Keyed(HashMap<String, (Arc<RecordBatch>, usize, Instant)>),
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
    /// Who follows the rows as they come (a slow follower that falls 1024 batches behind is
    /// let go, never waited for).
    followers: Mutex<Vec<std::sync::mpsc::SyncSender<RecordBatch>>>,
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

    /// Follows the rows written from now on.
    pub fn follow(&self) -> std::sync::mpsc::Receiver<RecordBatch> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1024);
        if let Ok(mut f) = self.followers.lock() {
            f.push(tx);
        }
        rx
    }

    /// How many rows it holds now.
    pub fn len(&self) -> usize {
        let Ok(mut rows) = self.rows.lock() else {
            return 0;
        };
        self.expire(&mut rows);
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
        let mut rows = self
            .rows
            .lock()
            .map_err(|_| Error::Format("table poisoned".into()))?;
        self.expire(&mut rows);
        let batches: Vec<RecordBatch> = match &*rows {
            Rows::Log(q, _) => q.iter().map(|(_, b)| b.clone()).collect(),
            Rows::Keyed(m) => {
                // Rows that share a compact batch are taken from it together.
                let mut by_batch: HashMap<*const RecordBatch, (Arc<RecordBatch>, Vec<u32>)> =
                    HashMap::new();
                for (b, i, _) in m.values() {
                    let e = by_batch
                        .entry(Arc::as_ptr(b))
                        .or_insert_with(|| (b.clone(), Vec::new()));
                    e.1.push(*i as u32);
                }
                let mut out = Vec::new();
                for (b, idx) in by_batch.into_values() {
                    out.push(take_record_batch(&b, &UInt32Array::from(idx))?);
                }
                out
            }
        };
        concat_batches(&self.schema, &batches).map_err(Error::from)
    }

    /// Drops rows older than `retain`.
    fn expire(&self, rows: &mut Rows) {
        let Some(keep) = self.retain else {
            return;
        };
        let now = Instant::now();
        match rows {
            Rows::Log(q, n) => {
                while q
                    .front()
                    .is_some_and(|(t, _)| now.duration_since(*t) > keep)
                {
                    if let Some((_, b)) = q.pop_front() {
                        *n -= b.num_rows();
                    }
                }
            }
            Rows::Keyed(m) => m.retain(|_, (_, _, t)| now.duration_since(*t) <= keep),
        }
    }

    /// Takes in `batch`.
    fn add(&self, batch: &RecordBatch) -> Result<()> {
        if let Ok(mut f) = self.followers.lock() {
            f.retain(|tx| tx.try_send(batch.clone()).is_ok());
        }
        let mut rows = self
            .rows
            .lock()
            .map_err(|_| Error::Format("table poisoned".into()))?;
        let now = Instant::now();
        match &mut *rows {
            Rows::Log(q, n) => {
                q.push_back((now, batch.clone()));
                *n += batch.num_rows();
                while *n > self.max_rows {
                    let Some((t, front)) = q.pop_front() else {
                        break;
                    };
                    let over = *n - self.max_rows;
                    if front.num_rows() > over {
                        q.push_front((t, front.slice(over, front.num_rows() - over)));
                        *n -= over;
                    } else {
                        *n -= front.num_rows();
                    }
                }
            }
            Rows::Keyed(m) => {
                let keys = self.keys(batch)?;
                // The last row of each key in this batch, copied out compactly.
                let mut last: HashMap<&str, usize> = HashMap::new();
                for (i, k) in keys.iter().enumerate() {
                    last.insert(k.as_str(), i);
                }
                let mut idx: Vec<u32> = last.values().map(|&i| i as u32).collect();
                idx.sort_unstable();
                let compact = Arc::new(take_record_batch(batch, &UInt32Array::from(idx.clone()))?);
                for (j, &i) in idx.iter().enumerate() {
                    m.insert(keys[i as usize].clone(), (compact.clone(), j, now));
                }
                if m.len() > self.max_rows {
                    // Over the bound: the keys heard from longest ago go.
                    let mut ages: Vec<(Instant, String)> =
                        m.iter().map(|(k, (_, _, t))| (*t, k.clone())).collect();
                    ages.sort();
                    for (_, k) in ages.into_iter().take(m.len() - self.max_rows) {
                        m.remove(&k);
                    }
                }
            }
        }
        self.expire(&mut rows);
        Ok(())
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

#[cfg(test)]
mod tests;
