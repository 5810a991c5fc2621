//! A pipeline's newest dead letters over REST: `GET /api/v1/pipelines/{name}/dead_letters
//! [?limit=N]` — the records its sources could not read, with where they were, why, and their
//! bytes (cut to 4 KiB), newest last, kept in memory for the current run of the server (up to
//! 1,000 per pipeline; a declared dead-letter output keeps them all, durably). They carry raw
//! source data, so they need an analyst or an engineer.
use std::sync::Arc;

use axum::extract::{Path, Query, State as AxState};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::server::Server;
use crate::job::recent::KeptDeadLetter;

type App = Arc<Server>;

/// How many to give.
#[derive(Debug, Deserialize, IntoParams)]
pub struct Limit {
    /// At most this many, the newest (default 100, at most 1,000).
    pub limit: Option<usize>,
}

/// A pipeline's newest dead letters.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetters {
    /// The pipeline.
    pub pipeline: String,
    /// Records refused since the server started the pipeline's run.
    pub total: u64,
    /// The newest of them, oldest first.
    pub letters: Vec<KeptDeadLetter>,
}

/// A pipeline's newest dead letters.
#[utoipa::path(get, path = "/api/v1/pipelines/{name}/dead_letters",
    params(("name" = String, Path), Limit),
    responses((status = 200, body = DeadLetters), (status = 404, body = ErrorBody)))]
pub async fn dead_letters(
    AxState(app): AxState<App>,
    Path(name): Path<String>,
    Query(q): Query<Limit>,
) -> Result<Json<DeadLetters>, ApiError> {
    let s = app.get(&name)?;
    let recent = s.state().2.recent_dead();
    let n = q.limit.unwrap_or(100).min(crate::job::recent::KEPT);
    let letters = recent.newest(n);
    Ok(Json(DeadLetters {
        pipeline: name,
        total: recent.seen(),
        letters,
    }))
}

/// The routes of this file.
pub fn routes() -> Router<App> {
    Router::new().route("/api/v1/pipelines/:name/dead_letters", get(dead_letters))
}
