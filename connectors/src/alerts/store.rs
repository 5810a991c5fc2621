//! The alert store: every alert with its event log, in memory, and — when opened on a
//! directory — an append-only log file (`alerts.jsonl`) written and fsynced before a change
//! is answered, replayed on open (a torn last line from a kill -9 is skipped). One store per
//! process ([`current`]); `weir serve` opens it in its state directory, `weir run` without
//! one keeps alerts in memory. Review labels go to `labels.jsonl` beside it, one JSON object
//! per line, which a pipeline can read back as delayed ground truth.
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use serde::{Deserialize, Serialize};

use super::lifecycle::State;
use super::model::{Alert, Event};
use super::KindSpec;
use crate::{Error, Result};

/// One line of the log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(crate) enum Record {
    /// A new alert (its events come as their own records).
    Alert(Box<Alert>),
    /// An event, with what it changed.
    Event {
        event: Event,
        #[serde(default)]
        alert: Option<Box<Alert>>,
    },
    /// Repeats of a live alert.
    Count { id: u64, count: u64, last_ms: i64 },
}

/// What the store holds, under one lock.
#[derive(Default)]
pub(crate) struct Inner {
    pub alerts: BTreeMap<u64, Alert>,
    /// The live alert of each (kind, key).
    pub live: HashMap<(String, String), u64>,
    pub kinds: HashMap<String, KindSpec>,
    pub next_id: u64,
    pub next_seq: u64,
    log: Option<File>,
    labels: Option<PathBuf>,
}

/// Every alert of this process.
pub struct Store {
    pub(crate) inner: Mutex<Inner>,
    /// Bumped at every change (live pages follow it).
    changes: AtomicU64,
}

fn slot() -> &'static Mutex<Arc<Store>> {
    static STORE: OnceLock<Mutex<Arc<Store>>> = OnceLock::new();
    STORE.get_or_init(|| Mutex::new(Arc::new(Store::memory())))
}

/// The process's store.
pub fn current() -> Arc<Store> {
    slot()
        .lock()
        .map(|s| s.clone())
        .unwrap_or_else(|e| e.into_inner().clone())
}

/// Makes `store` the process's store.
pub fn install(store: Arc<Store>) {
    let mut s = slot().lock().unwrap_or_else(|e| e.into_inner());
    *s = store;
}

impl Store {
    /// A store kept in memory only.
    pub fn memory() -> Store {
        Store {
            inner: Mutex::new(Inner {
                next_id: 1,
                next_seq: 1,
                ..Inner::default()
            }),
            changes: AtomicU64::new(0),
        }
    }

    /// The store kept in `dir` (made if missing), with what its log holds.
    pub fn open(dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
        let path = dir.join("alerts.jsonl");
        let mut inner = Inner {
            next_id: 1,
            next_seq: 1,
            ..Inner::default()
        };
        let mut good = 0u64;
        if let Ok(f) = File::open(&path) {
            let mut r = BufReader::new(f);
            let mut line = String::new();
            // A line cut short by a kill -9 is the last one; it is cut off the file.
            while r
                .read_line(&mut line)
                .map_err(|e| Error::io(path.display().to_string(), e))?
                > 0
            {
                match serde_json::from_str::<Record>(&line) {
                    Ok(rec) if line.ends_with('\n') => inner.apply(rec),
                    _ => break,
                }
                good += line.len() as u64;
                line.clear();
            }
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|f| f.set_len(good).map(|_| f))
            .map_err(|e| Error::io(path.display().to_string(), e))?;
        inner.log = Some(log);
        inner.labels = Some(dir.join("labels.jsonl"));
        Ok(Store {
            inner: Mutex::new(inner),
            changes: AtomicU64::new(0),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a change (what follows [`Store::changes`] looks again).
    pub(crate) fn changed(&self) {
        self.changes.fetch_add(1, Ordering::Relaxed);
    }

    /// How many changes there have been (it grows at every change).
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    /// One alert, with its events.
    pub fn get(&self, id: u64) -> Option<Alert> {
        let mut g = self.lock();
        g.expire_shelves(super::now_ms());
        g.alerts.get(&id).cloned()
    }

    /// The alerts in `state` (all when `None`), newest first, without their evidence rows
    /// and events (see [`Store::get`]).
    pub fn list(&self, state: Option<State>) -> Vec<Alert> {
        let mut g = self.lock();
        g.expire_shelves(super::now_ms());
        g.alerts
            .values()
            .rev()
            .filter(|a| state.is_none_or(|s| a.state == s))
            .map(|a| Alert {
                events: Vec::new(),
                evidence: Default::default(),
                ..a.clone()
            })
            .collect()
    }

    /// Every event of every alert, in order.
    pub fn events(&self) -> Vec<Event> {
        let g = self.lock();
        let mut all: Vec<Event> = g
            .alerts
            .values()
            .flat_map(|a| a.events.iter().cloned())
            .collect();
        all.sort_by_key(|e| e.seq);
        all
    }

    /// How many alerts it holds, by state.
    pub fn counts(&self) -> BTreeMap<State, u64> {
        let mut out = BTreeMap::new();
        for a in self.lock().alerts.values() {
            *out.entry(a.state).or_insert(0) += 1;
        }
        out
    }

    /// Declares (or declares again) an alert kind: its playbook, verification and dispatch.
    pub fn declare(&self, spec: KindSpec) {
        self.lock().kinds.insert(spec.kind.clone(), spec);
    }

    /// The declaration of `kind`, while a pipeline of it has run in this process.
    pub fn kind(&self, kind: &str) -> Option<KindSpec> {
        self.lock().kinds.get(kind).cloned()
    }
}

impl Inner {
    /// Applies a record (replay, or a change just logged).
    pub(crate) fn apply(&mut self, r: Record) {
        match r {
            Record::Alert(a) => {
                self.next_id = self.next_id.max(a.id + 1);
                if a.is_live() {
                    self.live.insert((a.kind.clone(), a.key.clone()), a.id);
                }
                self.alerts.insert(a.id, *a);
            }
            Record::Event { event, alert } => {
                self.next_seq = self.next_seq.max(event.seq + 1);
                let Some(a) = self.alerts.get_mut(&event.alert) else {
                    return;
                };
                if let Some(new) = alert {
                    let events = std::mem::take(&mut a.events);
                    *a = *new;
                    a.events = events;
                }
                a.state = event.state;
                if !a.is_live() {
                    self.live.remove(&(a.kind.clone(), a.key.clone()));
                } else {
                    self.live.insert((a.kind.clone(), a.key.clone()), a.id);
                }
                a.events.push(event);
            }
            Record::Count { id, count, last_ms } => {
                if let Some(a) = self.alerts.get_mut(&id) {
                    a.count = count;
                    a.last_ms = last_ms;
                }
            }
        }
    }

    /// Writes `records` to the log (fsynced), then applies them.
    pub(crate) fn commit(&mut self, records: Vec<Record>) -> Result<()> {
        self.write_log(&records)?;
        for r in records {
            self.apply(r);
        }
        Ok(())
    }

    /// Writes `records` to the log (fsynced; already applied).
    pub(crate) fn write_log(&mut self, records: &[Record]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        if let Some(f) = self.log.as_mut() {
            let mut text = String::new();
            for r in records {
                let line = serde_json::to_string(r).map_err(|e| Error::Format(e.to_string()))?;
                text.push_str(&line);
                text.push('\n');
            }
            f.write_all(text.as_bytes())
                .and_then(|_| f.sync_data())
                .map_err(|e| Error::io("alerts.jsonl", e))?;
        }
        Ok(())
    }

    /// A new event of alert `a` (not yet committed), taking the next sequence number.
    pub(crate) fn event(&mut self, a: &Alert, kind: &str, user: &str, note: &str) -> Event {
        let seq = self.next_seq;
        self.next_seq += 1;
        Event {
            seq,
            alert: a.id,
            ts_ms: super::now_ms(),
            kind: kind.into(),
            user: user.into(),
            note: note.into(),
            state: a.state,
            details: serde_json::Value::Null,
        }
    }

    /// Appends one review label to `labels.jsonl` (fsynced).
    pub(crate) fn append_label(&self, label: &serde_json::Value) -> Result<()> {
        let Some(path) = &self.labels else {
            return Ok(());
        };
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path.display().to_string(), e))?;
        writeln!(f, "{label}")
            .and_then(|_| f.sync_data())
            .map_err(|e| Error::io(path.display().to_string(), e))
    }

    /// Shelved alerts whose expiry has passed go back to `open`.
    pub(crate) fn expire_shelves(&mut self, now: u64) {
        let due: Vec<u64> = self
            .alerts
            .values()
            .filter(|a| a.state == State::Shelved && a.shelved_until_ms.is_some_and(|t| t <= now))
            .map(|a| a.id)
            .collect();
        for id in due {
            let Some(a) = self.alerts.get(&id).cloned() else {
                continue;
            };
            let mut after = a.clone();
            after.state = State::Open;
            after.shelved_until_ms = None;
            let event = self.event(&after, "reopened", "weir", "the shelve expired");
            let _ = self.commit(vec![Record::Event {
                event,
                alert: Some(Box::new(strip(after))),
            }]);
        }
    }
}

/// `a` without its events (they are logged as their own records).
pub(crate) fn strip(mut a: Alert) -> Alert {
    a.events.clear();
    a
}
