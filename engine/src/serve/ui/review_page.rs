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
use super::super::api::blocking;
use super::super::server::Server;
use super::super::users::{Role, User};
use super::pages::{audited, Chrome};
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
    let done = blocking(move || do_act(&u, id, "label", req)).await;
    let code = audited(&app, &user, "POST /ui/review/{id}", id.to_string(), &done);
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
    html(&page(&user, flash, ok), code)
}
