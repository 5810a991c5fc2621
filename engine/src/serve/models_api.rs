//! Models over REST: `GET /api/v1/models` (every model version the pipelines declare) and
//! `POST /api/v1/models/{model}/version {version}` (= `ALTER MODEL model SET VERSION 'v'` on
//! every running pipeline with the model, kept for each later job of a checkpointed run;
//! ML engineers).
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State as AxState};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::api::{blocking, body};
use super::error::{ApiError, ErrorBody};
use super::server::Server;

type App = Arc<Server>;

/// A model version a pipeline declares.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelInfo {
    /// The model's name.
    pub name: String,
    /// The version.
    pub version: String,
    /// Whether it is current in the pipeline (declared first, or switched to).
    pub current: bool,
    /// The pipeline.
    pub pipeline: String,
}

/// A version to switch to.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Version {
    /// The version's name.
    pub version: String,
}

/// What a switch did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Switched {
    /// Running pipelines now at the version.
    pub pipelines: usize,
}

/// Every model version the pipelines declare.
#[utoipa::path(get, path = "/api/v1/models", responses((status = 200, body = [ModelInfo])))]
pub async fn models(AxState(app): AxState<App>) -> Json<Vec<ModelInfo>> {
    let mut out = Vec::new();
    for p in app.list() {
        let pipeline = p.name();
        let switched = p
            .record
            .lock()
            .map(|r| r.models.clone())
            .unwrap_or_default();
        out.extend(p.plan.models.iter().map(|m| ModelInfo {
            name: m.name.clone(),
            version: m.version.clone(),
            current: switched.get(&m.name).map_or(m.current, |v| *v == m.version),
            pipeline: pipeline.clone(),
        }));
    }
    Json(out)
}

/// Switches every running pipeline with the model to a version.
#[utoipa::path(post, path = "/api/v1/models/{model}/version", params(("model" = String, Path)), request_body = Version,
    responses((status = 200, body = Switched), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn switch(
    AxState(app): AxState<App>,
    Path(model): Path<String>,
    req: Result<Json<Version>, JsonRejection>,
) -> Result<Json<Switched>, ApiError> {
    let v = body(req)?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    };
    if !ok(&model) || !ok(&v.version) {
        return Err(ApiError::BadRequest(
            "model and version names are letters, digits, '_', '-' or '.'".into(),
        ));
    }
    let statement = format!("ALTER MODEL {model} SET VERSION '{}'", v.version);
    let pipelines = blocking(move || app.alter_model(&statement)).await?;
    Ok(Json(Switched { pipelines }))
}

/// The routes of this file.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/v1/models", get(models))
        .route("/api/v1/models/:model/version", post(switch))
}
