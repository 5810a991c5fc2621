//! What the pipeline tells the store: for each row of an `alerts` sink, whether it raises
//! (a new alert for its key, or a counted repeat of the live one; a fired-again fixed or
//! verifying alert is reopened) and, for a key whose alert is fixed, whether the
//! verification condition holds — `verifying` from the first row where it does, `verified`
//! once it has held for the hold time by the rows' own time, `reopened` when it fails.
use super::lifecycle::State;
use super::model::{Alert, Evidence};
use super::store::{strip, Inner, Record, Store};
use super::KindSpec;
use crate::Result;

/// One row as the sink read it.
#[derive(Debug, Clone)]
pub struct Observation {
    /// Its key's text.
    pub key: String,
    /// Its site (empty: none given).
    pub site: String,
    /// Whether it raises.
    pub raise: bool,
    /// Whether the verification condition holds on it (`None`: none declared).
    pub verify: Option<bool>,
    /// Its time (ms).
    pub time_ms: i64,
    /// Severity and title, as the row gives them.
    pub severity: String,
    /// The alert's title.
    pub title: String,
    /// The model version behind it.
    pub model_version: Option<String>,
    /// The key's latest rows, this one last (only filled for a raising row).
    pub evidence: Option<Evidence>,
}

impl Store {
    /// Applies the observations of one written batch, in order, with one fsync.
    pub fn observe(&self, spec: &KindSpec, rows: Vec<Observation>) -> Result<()> {
        let mut g = self.lock();
        g.expire_shelves(super::now_ms());
        let mut records = Vec::new();
        for o in rows {
            g.observe_one(spec, o, &mut records);
        }
        let changed = !records.is_empty();
        let written = g.write_log(&records);
        drop(g);
        if changed {
            self.changed();
        }
        written
    }
}

impl Inner {
    fn live_alert(&self, kind: &str, key: &str) -> Option<Alert> {
        let id = self.live.get(&(kind.to_string(), key.to_string()))?;
        self.alerts.get(id).cloned()
    }

    fn observe_one(&mut self, spec: &KindSpec, o: Observation, out: &mut Vec<Record>) {
        let live = self.live_alert(&spec.kind, &o.key);
        match (live, o.raise) {
            (None, true) => self.raise(spec, o, out),
            (Some(a), true) => self.repeat(a, o, out),
            (Some(a), false) => self.verify(a, &o, out),
            (None, false) => {}
        }
    }

    /// A new alert.
    fn raise(&mut self, spec: &KindSpec, o: Observation, out: &mut Vec<Record>) {
        let id = self.next_id;
        self.next_id += 1;
        let a = Alert {
            id,
            kind: spec.kind.clone(),
            key: o.key,
            site: o.site,
            severity: o.severity,
            title: o.title,
            state: State::Open,
            count: 1,
            first_ms: o.time_ms,
            last_ms: o.time_ms,
            model_version: o.model_version,
            verify: spec.verify.clone(),
            verify_for_ms: spec.verify_for_ms,
            verifying_since_ms: None,
            playbook: spec.playbook.clone(),
            evidence: o.evidence.unwrap_or_default(),
            work_order: None,
            shelved_until_ms: None,
            label: None,
            events: Vec::new(),
        };
        let event = self.event(&a, "raised", "weir", "");
        // Applied at once, so later rows of the same batch see it.
        let records = vec![
            Record::Alert(Box::new(a)),
            Record::Event { event, alert: None },
        ];
        self.stage(records, out);
    }

    /// A repeat: counted; an alert being fixed or verified is reopened.
    fn repeat(&mut self, mut a: Alert, o: Observation, out: &mut Vec<Record>) {
        a.count += 1;
        a.last_ms = a.last_ms.max(o.time_ms);
        a.severity = o.severity;
        if o.model_version.is_some() {
            a.model_version = o.model_version;
        }
        if let Some(e) = o.evidence {
            a.evidence = e;
        }
        if matches!(a.state, State::Fixed | State::Verifying | State::Verified) {
            a.state = State::Open;
            a.verifying_since_ms = None;
            let event = self.event(&a, "reopened", "weir", "the alert fired again");
            let alert = Some(Box::new(strip(a)));
            return self.stage(vec![Record::Event { event, alert }], out);
        }
        // Repeats change the alert in memory at once; the log gets the count.
        let (id, count, last_ms) = (a.id, a.count, a.last_ms);
        if let Some(kept) = self.alerts.get_mut(&a.id) {
            kept.severity = a.severity;
            kept.model_version = a.model_version;
            kept.evidence = a.evidence;
        }
        self.stage(vec![Record::Count { id, count, last_ms }], out);
    }

    /// The verification condition on a row of a fixed or verifying alert's key.
    fn verify(&mut self, mut a: Alert, o: &Observation, out: &mut Vec<Record>) {
        let Some(holds) = o.verify else {
            return;
        };
        let (kind, note) = match (a.state, holds) {
            (State::Fixed, true) => {
                a.verifying_since_ms = Some(o.time_ms);
                a.state = State::Verifying;
                ("verifying", "the verification condition holds".to_string())
            }
            (State::Verifying, false) => {
                a.state = State::Open;
                a.verifying_since_ms = None;
                ("reopened", "the verification condition failed".to_string())
            }
            _ => ("", String::new()),
        };
        if !kind.is_empty() {
            let event = self.event(&a, kind, "weir", &note);
            let alert = Some(Box::new(strip(a.clone())));
            self.stage(vec![Record::Event { event, alert }], out);
        }
        let since = a.verifying_since_ms.unwrap_or(i64::MAX);
        if a.state == State::Verifying && o.time_ms.saturating_sub(since) >= a.verify_for_ms {
            a.state = State::Verified;
            let note = format!(
                "the verification condition held for {} ms",
                o.time_ms.saturating_sub(since)
            );
            let event = self.event(&a, "verified", "weir", &note);
            let alert = Some(Box::new(strip(a)));
            self.stage(vec![Record::Event { event, alert }], out);
        }
    }

    /// Applies `records` now (so the batch's later rows see them) and keeps them for the log.
    fn stage(&mut self, records: Vec<Record>, out: &mut Vec<Record>) {
        for r in &records {
            self.apply(r.clone());
        }
        out.extend(records);
    }
}
