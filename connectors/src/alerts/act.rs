//! What people do to alerts: each action is checked against the alert's state (the
//! lifecycle decides), carries what it needs (a dispatch its assignee, a label its value),
//! and is logged as one event with who, when and the note. A dispatch sends its work order
//! to the kind's dispatch target first; if it cannot be delivered nothing changes.
use serde_json::json;

use super::lifecycle::{next, Action, State};
use super::model::{ActRequest, Alert, WorkOrder};
use super::store::{strip, Record, Store};

/// Why an action was refused.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    /// No alert with that id.
    #[error("no alert {0}")]
    NotFound(u64),
    /// The alert's state does not allow it.
    #[error("{0}")]
    Conflict(String),
    /// The request lacks what the action needs.
    #[error("{0}")]
    Invalid(String),
    /// The work order could not be sent.
    #[error("the work order was not delivered: {0}")]
    Delivery(String),
    /// The store could not write.
    #[error("{0}")]
    Store(#[from] crate::Error),
}

/// The labels a reviewer may give.
pub const LABELS: [&str; 2] = ["true_positive", "false_positive"];

/// `a` after `action` with `req` (the state already decided), and the event's details.
fn changed(
    mut a: Alert,
    action: Action,
    to: State,
    req: &ActRequest,
) -> Result<(Alert, serde_json::Value), ActError> {
    a.state = to;
    let details = match action {
        Action::Dispatch => {
            let w = WorkOrder {
                assignee: req.assignee.trim().to_string(),
                due: req.due.trim().to_string(),
                instructions: req.instructions.trim().to_string(),
            };
            if w.assignee.is_empty() {
                return Err(ActError::Invalid(
                    "a dispatch needs an assignee (who does the work)".into(),
                ));
            }
            a.work_order = Some(w.clone());
            json!(w)
        }
        Action::Label => {
            let l = req.label.trim();
            if !LABELS.contains(&l) {
                return Err(ActError::Invalid(format!(
                    "label '{l}': give true_positive or false_positive"
                )));
            }
            a.label = Some(l.to_string());
            json!({ "label": l })
        }
        Action::Shelve => {
            let text = match req.for_.trim() {
                "" => "1h",
                t => t,
            };
            let ms = crate::options::parse_duration_ms(text)
                .filter(|&ms| ms > 0)
                .ok_or_else(|| {
                    ActError::Invalid(format!(
                        "shelve for '{text}': give a duration like '30m', '8h'"
                    ))
                })?;
            let until = super::now_ms().saturating_add(ms as u64);
            a.shelved_until_ms = Some(until);
            json!({ "until_ms": until })
        }
        Action::Reopen => {
            a.verifying_since_ms = None;
            a.shelved_until_ms = None;
            serde_json::Value::Null
        }
        _ => serde_json::Value::Null,
    };
    Ok((a, details))
}

impl Store {
    /// Does `action` on alert `id` as `user`; the alert after it.
    pub fn act(
        &self,
        id: u64,
        action: Action,
        user: &str,
        req: &ActRequest,
    ) -> Result<Alert, ActError> {
        let (before, after, details) = self.decide(id, action, req)?;
        let kind = self.kind(&before.kind);
        let ts_ms = super::now_ms();
        let label = (action == Action::Label).then(|| {
            json!({
                "alert": id, "kind": after.kind, "key": after.key,
                "model_version": after.model_version, "label": after.label,
                "note": req.note.trim(), "user": user, "ts_ms": ts_ms,
                "first_ms": after.first_ms, "last_ms": after.last_ms,
            })
        });
        let out = match action {
            Action::Dispatch => kind.and_then(|k| k.dispatch).map(|t| {
                let order = json!({
                    "alert": id, "kind": before.kind, "key": before.key,
                    "severity": before.severity, "title": before.title,
                    "work_order": details, "dispatched_by": user, "note": req.note,
                    "ts_ms": ts_ms,
                });
                (t, order)
            }),
            Action::Label => kind.and_then(|k| k.labels).zip(label.clone()),
            _ => None,
        };
        if let Some((t, message)) = out {
            t.deliver(&message).map_err(ActError::Delivery)?;
        }
        let mut g = self.lock();
        // The alert may have moved while the work order was out: decide again.
        if g.alerts.get(&id).map(|a| a.state) != Some(before.state) {
            return Err(ActError::Conflict(format!(
                "alert {id} changed while this {} was being done; look again",
                action.name()
            )));
        }
        let mut event = g.event(&after, action.event(), user, req.note.trim());
        event.details = details.clone();
        if let Some(label) = &label {
            event.ts_ms = ts_ms;
            g.append_label(label)?;
        }
        let alert = Some(Box::new(strip(after)));
        g.commit(vec![Record::Event { event, alert }])?;
        let after = g.alerts.get(&id).cloned().ok_or(ActError::NotFound(id));
        drop(g);
        self.changed();
        after
    }

    /// The alert before and after `action`, checked against its state.
    fn decide(
        &self,
        id: u64,
        action: Action,
        req: &ActRequest,
    ) -> Result<(Alert, Alert, serde_json::Value), ActError> {
        let mut g = self.lock();
        g.expire_shelves(super::now_ms());
        let a = g.alerts.get(&id).cloned().ok_or(ActError::NotFound(id))?;
        let to = next(a.state, action, a.verify.is_some()).map_err(ActError::Conflict)?;
        let other = g.live.get(&(a.kind.clone(), a.key.clone()));
        if action == Action::Reopen && other.is_some_and(|&o| o != id) {
            return Err(ActError::Conflict(format!(
                "'{}' has a newer live alert ({}); act on that one",
                a.key,
                other.copied().unwrap_or_default()
            )));
        }
        let (after, details) = changed(a.clone(), action, to, req)?;
        Ok((a, after, details))
    }
}
