//! The `alerts` sink: rows of a pipeline raise alerts that people act on. Each row raises
//! or repeats one live alert per key and kind (repeats are counted, as PagerDuty's dedup
//! keys do), with its severity, title, model version and evidence (the key's latest rows);
//! rows of a key whose alert is fixed are checked against the verification condition. The
//! alerts, their lifecycle (`lifecycle.rs`) and event logs live in the process's store
//! (`store.rs`; durable in `weir serve`'s state directory); what people do is `act.rs`,
//! work orders go out by `dispatch.rs`.
//!
//! Options: `key` (required; comma-separated columns), `kind` (default: the sink's name),
//! `severity` and `title` (a column's name, or else the text itself), `raise` (a SQL
//! condition: which rows raise; default every row), `verify` and `verify_for` (the condition
//! that must hold, by the rows' time, before a fixed alert is verified), `time` (the rows'
//! time column; default the wall clock), `model_version` (a column; default the one called
//! `model_version` if any), `evidence_rows` (default 30), `playbook` (what to do, shown on
//! the alert's page), `dispatch_url` and `dispatch_topic` (an MQTT broker and topic for work
//! orders).
pub mod act;
pub mod dispatch;
pub mod lifecycle;
pub mod model;
pub mod observe;
pub mod sink;
pub mod store;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

pub use self::act::{ActError, LABELS};
pub use self::dispatch::Dispatch;
pub use self::lifecycle::{Action, State};
pub use self::model::{ActRequest, Alert, Event, Evidence, WorkOrder};
pub use self::observe::Observation;
use self::sink::{condition, AlertSink, Field};
pub use self::store::{current, install, Store};
use crate::describe::{opt, ConnectorSpec, Kind};
use crate::{Error, Options, Result, Sink, SinkContext};

/// The severities, most urgent first.
pub const SEVERITIES: [&str; 5] = ["critical", "major", "minor", "warning", "info"];

/// What a kind of alert declares (by its sink), kept by the store while it runs.
#[derive(Debug, Clone, Default)]
pub struct KindSpec {
    /// The kind's name.
    pub kind: String,
    /// The verification condition's SQL.
    pub verify: Option<String>,
    /// How long it must hold (ms).
    pub verify_for_ms: i64,
    /// What to do.
    pub playbook: String,
    /// Where work orders go.
    pub dispatch: Option<Dispatch>,
    /// Where review labels go, as a stream a pipeline reads as delayed ground truth.
    pub labels: Option<Dispatch>,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The alerts sink's options.
pub const SPEC: ConnectorSpec = ConnectorSpec {
    name: "alerts",
    tables: crate::describe::Tables::Stream,
    formats: &[],
    options: &[&[
        opt(
            "key",
            Kind::Text,
            "",
            "columns identifying what an alert is about (required)",
        ),
        opt(
            "kind",
            Kind::Text,
            "",
            "the alert kind (default: the sink's name)",
        ),
        opt(
            "severity",
            Kind::Text,
            "warning",
            "a column, or one of critical, major, minor, warning, info",
        ),
        opt("title", Kind::Text, "", "a column, or the title's text"),
        opt(
            "site",
            Kind::Text,
            "",
            "the column naming the site (plant, line) an alert is at",
        ),
        opt(
            "raise",
            Kind::Condition,
            "",
            "a SQL condition: the rows that raise (default: every row)",
        ),
        opt(
            "verify",
            Kind::Condition,
            "",
            "a SQL condition that must hold before a fixed alert is verified",
        ),
        opt(
            "verify_for",
            Kind::Duration,
            "0",
            "how long (by the rows' time) the condition must hold",
        ),
        opt(
            "time",
            Kind::Text,
            "",
            "the rows' time column (default: the wall clock)",
        ),
        opt(
            "model_version",
            Kind::Text,
            "",
            "the column naming the model version (default: model_version)",
        ),
        opt(
            "evidence_rows",
            Kind::Integer,
            "30",
            "the key's latest rows kept as evidence",
        ),
        opt(
            "playbook",
            Kind::Text,
            "",
            "what to do about it, shown on the alert's page",
        ),
        opt(
            "dispatch_url",
            Kind::Text,
            "",
            "where work orders go: an MQTT broker (mqtt://host:port, with dispatch_topic) or a webhook (http://…)",
        ),
        opt(
            "dispatch_topic",
            Kind::Text,
            "",
            "the topic work orders are published to",
        ),
        opt(
            "labels_url",
            Kind::Text,
            "",
            "where review labels go: mqtt://host:port (with labels_topic) or http://… (default: dispatch_url when labels_topic is given)",
        ),
        opt(
            "labels_topic",
            Kind::Text,
            "",
            "the topic each review label is published to, as delayed ground truth",
        ),
    ]],
    provenance: crate::describe::Provenance::Untraced,
    dataset: None,
    resumable: crate::describe::Resumable::No,
    live: false,
};

fn column(ctx: &SinkContext, option: &str, name: &str) -> Result<usize> {
    ctx.schema.index_of(name.trim()).map_err(|_| Error::Option {
        option: option.into(),
        message: format!("'{name}': the sink's rows have no such column"),
    })
}

/// The target options `{what}_url` and `{what}_topic` name (work orders, labels): an MQTT
/// topic, or an `http://` webhook (no topic).
fn target(what: &str, url: Option<String>, topic: Option<String>) -> Result<Option<Dispatch>> {
    if let (Some(u), None) = (&url, &topic) {
        if u.starts_with("http://") {
            return Ok(Some(Dispatch::Http { url: u.clone() }));
        }
        if u.starts_with("https://") {
            return Err(Error::Option {
                option: format!("{what}_url"),
                message: "https:// webhooks are not supported yet: use http:// inside the \
                          plant network, or an MQTT broker (mqtt://host:port)"
                    .into(),
            });
        }
    }
    let (url, topic) = match (url, topic) {
        (None, None) => return Ok(None),
        (Some(u), Some(t)) => (u, t),
        (u, _) => {
            let missing = if u.is_some() { "topic" } else { "url" };
            return Err(Error::Option {
                option: format!("{what}_{missing}"),
                message: format!("{what}_url and {what}_topic go together"),
            });
        }
    };
    let (host, port) = crate::mqtt::parse_url(&url).ok_or_else(|| Error::Option {
        option: format!("{what}_url"),
        message: format!("expected mqtt://host:port (with a topic) or http://…, got '{url}'"),
    })?;
    Ok(Some(Dispatch::Mqtt { host, port, topic }))
}

/// Builds the alerts sink, declaring its kind in the process's store.
pub fn build(ctx: SinkContext) -> Result<Box<dyn Sink>> {
    let mut o = Options::new(&SPEC, ctx.options.clone());
    let key_text = o.required("key")?;
    let kind = o.string("kind").unwrap_or_else(|| ctx.name.clone());
    let severity = Field::of(
        &o.string("severity").unwrap_or_else(|| "warning".into()),
        &ctx.schema,
    );
    if let Field::Const(s) = &severity {
        if !SEVERITIES.contains(&s.to_ascii_lowercase().as_str()) {
            return Err(Error::Option {
                option: "severity".into(),
                message: format!(
                    "'{s}' is neither a column nor one of {}",
                    SEVERITIES.join(", ")
                ),
            });
        }
    }
    let title = o.string("title").map(|t| Field::of(&t, &ctx.schema));
    let site = o
        .string("site")
        .map(|s| column(&ctx, "site", &s))
        .transpose()?;
    let raise = o
        .condition("raise")
        .map(|c| condition(&c, &ctx.schema, "raise"))
        .transpose()?;
    let verify_sql = o.condition("verify");
    let verify = verify_sql
        .as_deref()
        .map(|c| condition(c, &ctx.schema, "verify"))
        .transpose()?;
    let verify_for_ms = o.duration_ms("verify_for", 0)?;
    let time = o
        .string("time")
        .map(|t| column(&ctx, "time", &t))
        .transpose()?;
    let model_version = match o.string("model_version") {
        Some(c) => Some(column(&ctx, "model_version", &c)?),
        None => ctx.schema.index_of("model_version").ok(),
    };
    let evidence_rows = o.u64("evidence_rows", 30)?.clamp(1, 10_000) as usize;
    let playbook = o.string("playbook").unwrap_or_default();
    let dispatch_url = o.string("dispatch_url");
    let labels_topic = o.string("labels_topic");
    let labels_url = o
        .string("labels_url")
        .or_else(|| labels_topic.as_ref().and(dispatch_url.clone()));
    let labels = target("labels", labels_url, labels_topic)?;
    let dispatch = target("dispatch", dispatch_url, o.string("dispatch_topic"))?;
    o.finish()?;
    let mut key = Vec::new();
    for k in key_text.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        key.push(column(&ctx, "key", k)?);
    }
    if key.is_empty() {
        return Err(Error::Option {
            option: "key".into(),
            message: "name the columns an alert is about (e.g. key = 'machine_id')".into(),
        });
    }
    let spec = KindSpec {
        kind,
        verify: verify_sql,
        verify_for_ms,
        playbook,
        dispatch,
        labels,
    };
    let store = current();
    store.declare(spec.clone());
    Ok(Box::new(AlertSink {
        spec,
        schema: ctx.schema.clone(),
        key,
        severity,
        title,
        site,
        raise,
        verify,
        time,
        model_version,
        evidence_rows,
        recent: HashMap::new(),
        store,
        metrics: ctx.metrics,
    }))
}
