//! Models over REST: `GET /api/v1/models` (every model version the pipelines declare) and
//! `POST /api/v1/models/{model}/version {version}` (= `ALTER MODEL model SET VERSION 'v'` on
//! every running pipeline with the model, kept for each later job of a checkpointed run;
//! ML engineers), and `PUT /api/v1/models/{model}/versions/{version}` with the ONNX file as the
//! body (kept in the state directory, declared in every pipeline with the model; ML
//! engineers).
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State as AxState};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
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
    /// Whether the version was uploaded (not declared by the pipeline's script).
    pub uploaded: bool,
}

/// A version uploaded.
#[derive(Debug, Serialize, ToSchema)]
pub struct Uploaded {
    /// The model's name.
    pub name: String,
    /// The version.
    pub version: String,
    /// The model's input width.
    pub features: usize,
    /// Which evaluator runs it (`tract` or `weir`).
    pub evaluator: String,
    /// Running pipelines that have the version now (current once switched to).
    pub pipelines: usize,
}

/// The largest model file taken (256 MiB).
const MAX_MODEL_BYTES: usize = 256 << 20;

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
    Json(infos(&app))
}

/// Every model version the pipelines declare, each with its pipeline.
pub fn infos(app: &Server) -> Vec<ModelInfo> {
    let mut out = Vec::new();
    let uploads = app.uploads();
    for p in app.list() {
        let pipeline = p.name();
        let switched = p
            .record
            .lock()
            .map(|r| r.models.clone())
            .unwrap_or_default();
        let uploaded = uploads
            .iter()
            .filter(|u| p.plan.models.iter().any(|m| m.name == u.name))
            .map(|u| (u, true));
        let declared = p.plan.models.iter().map(|m| (m, false));
        out.extend(declared.chain(uploaded).map(|(m, uploaded)| ModelInfo {
            name: m.name.clone(),
            version: m.version.clone(),
            current: switched.get(&m.name).map_or(m.current, |v| *v == m.version),
            pipeline: pipeline.clone(),
            uploaded,
        }));
    }
    out
}

/// Uploads a version of a model: the ONNX file as the body.
#[utoipa::path(put, path = "/api/v1/models/{model}/versions/{version}",
    params(("model" = String, Path), ("version" = String, Path)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = Uploaded), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn upload(
    AxState(app): AxState<App>,
    Path((model, version)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::BadRequest(
            "the body is the model's ONNX file; it is empty".into(),
        ));
    }
    let (def, pipelines) = blocking(move || app.upload_model(&model, &version, &bytes)).await?;
    let out = Uploaded {
        name: def.name,
        version: def.version,
        features: def.features.unwrap_or(0),
        evaluator: def.evaluator,
        pipelines,
    };
    Ok((StatusCode::CREATED, Json(out)))
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
    let ok = super::uploads::valid_name;
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
        .route(
            "/api/v1/models/:model/versions/:version",
            put(upload).layer(DefaultBodyLimit::max(MAX_MODEL_BYTES)),
        )
}
