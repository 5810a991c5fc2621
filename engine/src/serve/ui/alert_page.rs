//! An alert's page: what raised it (severity, title, count, model version), the evidence
//! chart of the key's readings (uPlot), the input records behind the newest evidence rows
//! (when the pipeline keeps provenance), the playbook, the work order, the event log, and a
//! form for each action that both the alert's state and the user's role allow. An action
//! answers with the page again (htmx swaps it in; without JavaScript it is a plain form
//! post); a refused one shows why, with its status code, and changes nothing.
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use weir_connectors::alerts::{self, lifecycle, ActRequest, Action, Alert, Event};

use super::super::alert_inputs::{inputs_of, Traced};
use super::super::alerts_api::act as do_act;
use super::super::api::blocking;
use super::super::server::Server;
use super::super::users::{Role, User};
use super::pages::{audited, clock, Chrome};
use super::session::html;

/// An event as shown.
pub struct Shown {
    /// The event.
    pub e: Event,
    /// When, as text.
    pub at: String,
    /// Its details as text.
    pub details: String,
}

#[derive(Template)]
#[template(path = "alert.html")]
struct Page {
    c: Chrome,
    a: Alert,
    first: String,
    last: String,
    events: Vec<Shown>,
    actions: Vec<ActionForm>,
    chart: String,
    inputs: Vec<Traced>,
    flash: String,
    flash_class: &'static str,
}

/// How many evidence rows' inputs the page shows (the newest).
const INPUT_ROWS: usize = 5;

/// An action's form.
pub struct ActionForm {
    /// The action's name.
    pub name: &'static str,
    /// Whether it is the dispatch (assignee, due, instructions).
    pub dispatch: bool,
    /// Whether it is the label (true or false positive).
    pub label: bool,
    /// Whether it is the shelve (for how long).
    pub shelve: bool,
}

/// The actions `user` may do on `a` now.
fn allowed(a: &Alert, user: &User) -> Vec<ActionForm> {
    Action::ALL
        .into_iter()
        .filter(|&act| {
            let role = if act.is_review() {
                Role::Reviewer
            } else {
                Role::Operator
            };
            user.any(&[role]) && lifecycle::next(a.state, act, a.verify.is_some()).is_ok()
        })
        .map(|act| ActionForm {
            name: act.name(),
            dispatch: act == Action::Dispatch,
            label: act == Action::Label,
            shelve: act == Action::Shelve,
        })
        .collect()
}

/// The evidence as uPlot's data: `{names: [...], data: [[x...], [y...]...]}`, the x axis in
/// seconds, one series per numeric column.
fn chart(a: &Alert) -> String {
    let ev = &a.evidence;
    let xs: Vec<f64> = ev.times.iter().map(|t| *t as f64 / 1000.0).collect();
    let mut names = Vec::new();
    let mut data = vec![serde_json::json!(xs)];
    for (c, name) in ev.columns.iter().enumerate() {
        if ev.time_column.as_ref() == Some(name) {
            continue;
        }
        let ys: Vec<Option<f64>> = ev
            .rows
            .iter()
            .map(|r| r.get(c).and_then(|v| v.as_f64()))
            .collect();
        if ys.iter().any(Option::is_some) && ys.len() == xs.len() {
            names.push(name.clone());
            data.push(serde_json::json!(ys));
        }
    }
    // `</` cannot end the script element the data sits in.
    serde_json::json!({"names": names, "data": data})
        .to_string()
        .replace("</", "<\\/")
}

fn page(app: &Server, a: Alert, user: &User, flash: String, ok: bool) -> Page {
    let mut inputs = inputs_of(app, &a, INPUT_ROWS).rows;
    inputs.reverse();
    let events = a
        .events
        .iter()
        .rev()
        .map(|e| Shown {
            e: e.clone(),
            at: clock(e.ts_ms as i64),
            details: match &e.details {
                serde_json::Value::Null => String::new(),
                v => v.to_string(),
            },
        })
        .collect();
    Page {
        c: Chrome::new(format!("Alert {}", a.id), user, "alerts"),
        first: clock(a.first_ms),
        last: clock(a.last_ms),
        actions: allowed(&a, user),
        chart: chart(&a),
        inputs,
        events,
        flash,
        flash_class: if ok { "ok" } else { "error" },
        a,
    }
}

/// `GET /ui/alerts/{id}`.
pub async fn show(
    AxState(app): AxState<Arc<Server>>,
    Extension(user): Extension<User>,
    Path(id): Path<u64>,
) -> Response {
    let Some(a) = alerts::current().get(id) else {
        return not_found(&user, id);
    };
    render(app, a, user, String::new(), true, StatusCode::OK).await
}

/// Alert `a`'s page for `user` (its inputs read off the async threads), with `flash`.
async fn render(
    app: Arc<Server>,
    a: Alert,
    user: User,
    flash: String,
    ok: bool,
    code: StatusCode,
) -> Response {
    let u = user.clone();
    match tokio::task::spawn_blocking(move || page(&app, a, &u, flash, ok)).await {
        Ok(p) => html(&p, code),
        Err(e) => super::pages::problem(
            &user,
            "The page failed",
            e.to_string(),
            "alerts",
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    }
}

fn not_found(user: &User, id: u64) -> Response {
    super::pages::missing(user, &format!("No alert {id}"), "alerts")
}

/// `POST /ui/alerts/{id}/{action}` (a form): the page after it, or with why not.
pub async fn act(
    AxState(app): AxState<Arc<Server>>,
    Extension(user): Extension<User>,
    Path((id, action)): Path<(u64, String)>,
    Form(req): Form<ActRequest>,
) -> Response {
    let u = user.clone();
    let what = action.clone();
    let done = blocking(move || do_act(&u, id, &what, req)).await;
    let what = format!("POST /ui/alerts/{{id}}/{action}");
    let code = audited(&app, &user, &what, id.to_string(), &done);
    let (alert, flash, ok) = match done {
        Ok(a) => (Some(a), format!("{action}: done"), true),
        Err(e) => (alerts::current().get(id), e.to_string(), false),
    };
    let Some(a) = alert else {
        return not_found(&user, id);
    };
    render(app, a, user, flash, ok, code).await
}
