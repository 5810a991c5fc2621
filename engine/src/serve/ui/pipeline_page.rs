//! A pipeline's page: its state (and why it failed), uptime and checkpoints; per query the
//! rows in and out, the rate since the run started, the watermark and its lag, late rows and
//! dead letters; the operator graph (its source, each counted operator in plan order with its
//! rows, its sink); its SQL
//! (secrets redacted); and its live output — the rows its `table` sinks write, streamed over
//! server-sent events (`/ui/pipelines/{name}/output`, the same stream as REST's) to those who
//! may read the tables. The figures
//! refresh every two seconds without a reload.
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;

use weir_queries::plan::{ScriptPlan, SinkRef};

use super::super::server::Server;
use super::super::status::{status_of, Status};
use super::super::users::User;
use super::pages::{clock, Chrome};
use super::session::html;

/// One query as shown.
pub struct QueryView {
    /// The query's name.
    pub name: String,
    /// Rows read.
    pub rows_in: u64,
    /// Rows written.
    pub rows_out: u64,
    /// Rows read per second since the run started, as text.
    pub rate: String,
    /// The watermark, as a time.
    pub watermark: String,
    /// Its lag, as text.
    pub lag: String,
    /// Late rows.
    pub late: u64,
    /// Dead letters.
    pub dead: u64,
    /// Its graph: source, operators in plan order, sink.
    pub operators: Vec<GraphNode>,
}

#[derive(Template)]
#[template(path = "pipeline.html")]
struct Page {
    c: Chrome,
    s: Status,
    uptime: String,
    started: String,
    queries: Vec<QueryView>,
    sql: String,
    tables: Vec<String>,
    readable: bool,
    columns: String,
}

/// The columns of the first of `tables` open now, as a JSON list (the live output's header).
fn columns(tables: &[String]) -> String {
    let open = weir_connectors::table::all();
    let names: Vec<String> = tables
        .iter()
        .find_map(|t| open.iter().find(|(n, _)| n == t))
        .map(|(_, t)| {
            t.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!(names).to_string()
}

fn seconds(ms: i64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// One node of a query's graph as shown.
pub struct GraphNode {
    /// `source`, `sink`, or the operator's kind.
    pub kind: String,
    /// What it is: the source's or sink's name and connector.
    pub label: String,
    /// Its node id in the job graph (operators).
    pub node: String,
    /// Rows in.
    pub rows_in: u64,
    /// Rows out.
    pub rows_out: u64,
}

/// The query's graph: its source, its counted operators, its sink.
fn graph(q: &super::super::status::QueryStatus, plan: &ScriptPlan) -> Vec<GraphNode> {
    let p = plan.pipelines.iter().find(|p| p.name == q.name);
    let named = |name: &str, of: Option<&str>| match of {
        Some(c) => format!("{name} ({c})"),
        None => name.to_string(),
    };
    let source = p.map_or(String::new(), |p| {
        named(
            &p.source,
            plan.source(&p.source).map(|s| s.connector.as_str()),
        )
    });
    let sink = p.map_or(String::new(), |p| match &p.sink {
        SinkRef::Named(n) => named(n, plan.sink(n).map(|s| s.connector.as_str())),
        SinkRef::Collect => "the caller".into(),
    });
    let end = |kind: &str, label: String, rows_in, rows_out| GraphNode {
        kind: kind.into(),
        label,
        node: String::new(),
        rows_in,
        rows_out,
    };
    let ops = q.operators.iter().map(|o| GraphNode {
        kind: o.kind.clone(),
        label: String::new(),
        node: o.node.clone(),
        rows_in: o.rows_in,
        rows_out: o.rows_out,
    });
    std::iter::once(end("source", source, 0, q.rows_in))
        .chain(ops)
        .chain([end("sink", sink, q.rows_out, 0)])
        .collect()
}

fn view(q: &super::super::status::QueryStatus, plan: &ScriptPlan, uptime_s: f64) -> QueryView {
    QueryView {
        name: q.name.clone(),
        rows_in: q.rows_in,
        rows_out: q.rows_out,
        rate: if uptime_s > 0.0 {
            format!("{:.0}", q.rows_in as f64 / uptime_s)
        } else {
            "–".into()
        },
        watermark: q.watermark_ms.map_or("–".into(), clock),
        lag: q.watermark_lag_ms.map_or("–".into(), seconds),
        late: q.late,
        dead: q.dead_letter,
        operators: graph(q, plan),
    }
}

/// `GET /ui/pipelines/{name}`.
pub async fn show(
    AxState(app): AxState<Arc<Server>>,
    Extension(user): Extension<User>,
    Path(name): Path<String>,
) -> Response {
    let Ok(p) = app.get(&name) else {
        return super::pages::missing(&user, &format!("No pipeline '{name}'"), "pipelines");
    };
    let s = status_of(&p);
    let sql = p
        .record
        .lock()
        .map(|r| weir_queries::redact::redact(&r.sql))
        .unwrap_or_default();
    let tables = p
        .plan
        .sinks
        .iter()
        .filter(|k| k.connector == "table")
        .map(|k| k.name.clone())
        .collect::<Vec<_>>();
    let readable = tables
        .iter()
        .all(|t| super::super::query::may_read(&app, &user, t));
    let header = columns(&tables);
    let page = Page {
        c: Chrome::new(format!("Pipeline {name}"), &user, "pipelines"),
        uptime: seconds((s.uptime_s * 1000.0) as i64),
        started: if s.started_ms == 0 {
            "never".into()
        } else {
            clock(s.started_ms as i64)
        },
        queries: s
            .queries
            .iter()
            .map(|q| view(q, &p.plan, s.uptime_s))
            .collect(),
        sql,
        tables,
        readable,
        columns: header,
        s,
    };
    html(&page, StatusCode::OK)
}
