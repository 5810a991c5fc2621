//! The review queue: the alerts no reviewer has labelled yet, newest first, each with its
//! model version, count and state; a reviewer labels one as a true or false positive with a
//! note right in the list (`POST /ui/review/{id}`, the same `label` action as REST's), and the
//! label goes to the label stream that pipelines read as delayed ground truth. The queue
//! also lists the latest labels given.
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use weir_connectors::alerts::{self, ActRequest, Alert};

use super::super::alerts_api::act as do_act;
use super::super::audit::Entry;
use super::super::error::ApiError;
use super::super::pipeline::now_ms;
use super::super::server::Server;
use super::super::users::{Role, User};
use super::pages::Chrome;
use super::session::html;

/// How many alerts the queue and the labelled list show.
const SHOWN: usize = 200;

#[derive(Template)]
#[template(path = "review.html")]
struct Page {
    c: Chrome,
    queue: Vec<Alert>,
    waiting: usize,
    labelled: Vec<Alert>,
    can_label: bool,
    flash: String,
    flash_class: &'static str,
}

fn page(user: &User, flash: String, ok: bool) -> Page {
    let all = alerts::current().list(None);
    let (done, todo): (Vec<Alert>, Vec<Alert>) = all.into_iter().partition(|a| a.label.is_some());
    Page {
        c: Chrome::new("Review", user, "review"),
        waiting: todo.len(),
        queue: todo.into_iter().take(SHOWN).collect(),
        labelled: done.into_iter().take(SHOWN).collect(),
        can_label: user.any(&[Role::Reviewer]),
        flash,
        flash_class: if ok { "ok" } else { "error" },
    }
}

/// `GET /ui/review`.
pub async fn show(Extension(user): Extension<User>) -> Response {
    html(&page(&user, String::new(), true), StatusCode::OK)
}

/// `POST /ui/review/{id}` (a label form): the queue after it, or why not.
pub async fn label(
    AxState(app): AxState<Arc<Server>>,
    Extension(user): Extension<User>,
    Path(id): Path<u64>,
    Form(req): Form<ActRequest>,
) -> Response {
    let u = user.clone();
    let done = tokio::task::spawn_blocking(move || do_act(&u, id, "label", req))
        .await
        .unwrap_or_else(|e| Err(ApiError::Internal(e.to_string())));
    let status = done.as_ref().map_or_else(|e| e.status_code(), |_| 200);
    app.audit.append(&Entry {
        ts_ms: now_ms(),
        user: user.name.clone(),
        action: "POST /ui/review/{id}".into(),
        target: id.to_string(),
        status,
        outcome: super::super::audit::outcome(status).into(),
    });
    let (flash, ok) = match done {
        Ok(a) => (
            format!(
                "alert {id}: {}",
                a.label.as_deref().unwrap_or("labelled").replace('_', " ")
            ),
            true,
        ),
        Err(e) => (e.to_string(), false),
    };
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    html(&page(&user, flash, ok), code)
}
