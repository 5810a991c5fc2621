//! What an alert is, as stored, served over REST and rendered on the pages: its identity
//! (kind and key), what raised it (severity, title, the model version, the evidence rows),
//! where it stands, its work order, and its append-only event log.
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lifecycle::State;

/// The readings behind an alert: the key's latest rows as the sink saw them, oldest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Evidence {
    /// The rows' columns.
    pub columns: Vec<String>,
    /// The rows, one value per column (numbers as numbers, the rest as text).
    pub rows: Vec<Vec<Value>>,
    /// Each row's time (ms; the sink's `time` column, else when it arrived).
    #[serde(default)]
    pub times: Vec<i64>,
    /// The column the times come from (`None`: the wall clock).
    #[serde(default)]
    pub time_column: Option<String>,
}

/// A work order sent when an alert is dispatched.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WorkOrder {
    /// Who does the work.
    pub assignee: String,
    /// By when (as the dispatcher wrote it).
    #[serde(default)]
    pub due: String,
    /// What to do.
    #[serde(default)]
    pub instructions: String,
}

/// One entry of an alert's event log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// Its place in the store's log (1, 2, …; over all alerts).
    pub seq: u64,
    /// The alert's id.
    pub alert: u64,
    /// When (ms since the Unix epoch, wall clock).
    pub ts_ms: u64,
    /// What happened: `raised`, `acknowledged`, `dispatched`, `fixed`, `verifying`,
    /// `verified`, `closed`, `reopened`, `shelved`, `labelled`.
    pub kind: String,
    /// Who (`weir` for what the pipeline decided).
    pub user: String,
    /// The note given with it.
    #[serde(default)]
    pub note: String,
    /// The state after it.
    pub state: State,
    /// What came with it: a work order, a label, a shelve expiry.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

/// One alert.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Alert {
    /// Its id (1, 2, …).
    pub id: u64,
    /// Its kind (the sink's name, or its `kind` option).
    pub kind: String,
    /// The key it is about (e.g. the machine id).
    pub key: String,
    /// The site it is at (the sink's `site` column; empty when none).
    #[serde(default)]
    pub site: String,
    /// `critical`, `major`, `minor`, `warning` or `info`.
    pub severity: String,
    /// What it says.
    pub title: String,
    /// Where it stands.
    pub state: State,
    /// How many rows raised it (repeats while it is open are counted, not raised again).
    pub count: u64,
    /// The first raising row's time (ms; event time when the sink has a `time` column).
    pub first_ms: i64,
    /// The latest raising row's time.
    pub last_ms: i64,
    /// The model version behind the latest raising row, when the row carries one.
    #[serde(default)]
    pub model_version: Option<String>,
    /// The verification condition, if declared.
    #[serde(default)]
    pub verify: Option<String>,
    /// How long it must hold (ms).
    #[serde(default)]
    pub verify_for_ms: i64,
    /// Since when it has held (ms, the rows' time), while `verifying`.
    #[serde(default)]
    pub verifying_since_ms: Option<i64>,
    /// The playbook of its kind.
    #[serde(default)]
    pub playbook: String,
    /// The readings behind it.
    pub evidence: Evidence,
    /// Its work order, once dispatched.
    #[serde(default)]
    pub work_order: Option<WorkOrder>,
    /// Shelved until (ms since the Unix epoch).
    #[serde(default)]
    pub shelved_until_ms: Option<u64>,
    /// Its latest review label (`true_positive`, `false_positive`).
    #[serde(default)]
    pub label: Option<String>,
    /// Its event log, oldest first.
    #[serde(default)]
    pub events: Vec<Event>,
}

impl Alert {
    /// Whether it still counts as live for its key (a closed alert does not: the key's next
    /// firing raises a new one).
    pub fn is_live(&self) -> bool {
        self.state != State::Closed
    }
}

/// What a person sends with an action.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ActRequest {
    /// A note for the event log.
    #[serde(default)]
    pub note: String,
    /// Dispatch: who does the work.
    #[serde(default)]
    pub assignee: String,
    /// Dispatch: by when.
    #[serde(default)]
    pub due: String,
    /// Dispatch: what to do.
    #[serde(default)]
    pub instructions: String,
    /// Label: `true_positive` or `false_positive`.
    #[serde(default)]
    pub label: String,
    /// Shelve: for how long (`'30m'`, `'8h'`; default 1h).
    #[serde(default, rename = "for")]
    pub for_: String,
}
