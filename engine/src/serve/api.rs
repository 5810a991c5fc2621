//! The REST API (`/api/v1/…`), health and readiness, as axum handlers. Each handler's
//! OpenAPI description sits on it (utoipa); `openapi.rs` gathers them into the document
//! served at `/api/v1/openapi.json`. Work that blocks (compiling, stopping a job at a
//! checkpoint) runs on tokio's blocking threads.
use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::pipeline::{Failure, Served, State};
use super::server::Server;
use super::status::{status_of, Status};
use super::users::User;

type App = Arc<Server>;
type ApiResult<T> = Result<Json<T>, ApiError>;

/// A pipeline to create: a name and a script.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewPipeline {
    /// 1 to 64 letters, digits, `_` or `-`, starting with a letter.
    pub name: String,
    /// The script: sources, sinks, models, pipelines.
    pub sql: String,
}

/// A script to check.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Script {
    /// The script.
    pub sql: String,
}

/// What a script that compiles declares.
#[derive(Debug, Serialize, ToSchema)]
pub struct Validated {
    /// Its pipelines (`CREATE PIPELINE`).
    pub pipelines: Vec<String>,
    /// Its sources and tables.
    pub sources: Vec<String>,
    /// Its sinks.
    pub sinks: Vec<String>,
    /// Whether it would keep checkpoints.
    pub checkpoints: bool,
    /// Why it would not (a source that cannot continue from a position).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoints_off_because: Option<String>,
}

/// A pipeline as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct PipelineInfo {
    /// Its name.
    pub name: String,
    /// Where it stands.
    pub state: State,
    /// Whether it should run (`running`) or was stopped (`stopped`).
    pub desired: String,
    /// Who submitted it.
    pub owner: String,
    /// Submitted at (ms since the Unix epoch).
    pub created_ms: u64,
    /// Its current run started at (ms since the Unix epoch; 0: never started).
    pub started_ms: u64,
    /// Whether it keeps checkpoints.
    pub checkpoints: bool,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
    /// Its script, with the values of secret options (passwords, tokens) hidden (only in
    /// `GET /api/v1/pipelines/{name}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
}

/// A pipeline's operator graph.
#[derive(Debug, Serialize, ToSchema)]
pub struct Graph {
    /// `weir explain`'s text.
    pub text: String,
    /// The plan (`weir explain --json`).
    #[schema(value_type = Object)]
    pub plan: serde_json::Value,
}

/// A pipeline's lineage.
#[derive(Debug, Serialize, ToSchema)]
pub struct Lineage {
    /// One row per sink column: the source columns, tables and model versions it comes from.
    #[schema(value_type = Vec<Object>)]
    pub columns: serde_json::Value,
}

/// Health and readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `starting` before the catalog's pipelines are started.
    pub status: String,
    /// Pipelines known, by state.
    pub pipelines: BTreeMap<String, u64>,
}

fn info(s: &Served, with_sql: bool) -> PipelineInfo {
    let (state, error, _, started_ms) = s.state();
    let r = s.record.lock().map(|r| r.clone()).ok();
    PipelineInfo {
        name: r.as_ref().map(|r| r.name.clone()).unwrap_or_default(),
        state,
        desired: r
            .as_ref()
            .map(|r| r.desired.name().to_string())
            .unwrap_or_default(),
        owner: r.as_ref().map(|r| r.owner.clone()).unwrap_or_default(),
        created_ms: r.as_ref().map_or(0, |r| r.created_ms),
        started_ms,
        checkpoints: s.checkpoints.is_ok(),
        error,
        sql: with_sql
            .then(|| r.map(|r| weir_queries::redact::redact(&r.sql)))
            .flatten(),
    }
}

/// Runs `f` on a blocking thread.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("the request's task failed: {e}")))?
}

/// A JSON body, or 400 with what is wrong with it.
pub(crate) fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(t)| t)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

/// Lists the pipelines.
#[utoipa::path(get, path = "/api/v1/pipelines", responses((status = 200, body = [PipelineInfo])))]
pub async fn list(AxState(app): AxState<App>) -> Json<Vec<PipelineInfo>> {
    Json(app.list().iter().map(|s| info(s, false)).collect())
}

/// Creates a pipeline from SQL and starts it.
#[utoipa::path(post, path = "/api/v1/pipelines", request_body = NewPipeline, responses(
    (status = 201, body = PipelineInfo), (status = 400, body = ErrorBody),
    (status = 409, body = ErrorBody), (status = 422, description = "the SQL does not compile", body = ErrorBody)))]
pub async fn create(
    AxState(app): AxState<App>,
    Extension(user): Extension<User>,
    req: Result<Json<NewPipeline>, JsonRejection>,
) -> Result<(StatusCode, Json<PipelineInfo>), ApiError> {
    let req = body(req)?;
    let s = blocking(move || app.create(&req.name, &req.sql, &req.sql, &user)).await?;
    Ok((StatusCode::CREATED, Json(info(&s, false))))
}

/// Compiles a script without running it.
#[utoipa::path(post, path = "/api/v1/pipelines/validate", request_body = Script, responses(
    (status = 200, body = Validated), (status = 422, body = ErrorBody)))]
pub async fn validate(req: Result<Json<Script>, JsonRejection>) -> ApiResult<Validated> {
    let req = body(req)?;
    let plan = blocking(move || super::server::compile(&req.sql)).await?;
    let why = crate::durable::check_resumable(&plan).err();
    Ok(Json(Validated {
        pipelines: plan.pipelines.iter().map(|p| p.name.clone()).collect(),
        sources: plan.sources.iter().map(|s| s.name.clone()).collect(),
        sinks: plan.sinks.iter().map(|s| s.name.clone()).collect(),
        checkpoints: why.is_none(),
        checkpoints_off_because: why.map(|e| e.to_string()),
    }))
}

/// One pipeline, with its SQL (secrets hidden).
#[utoipa::path(get, path = "/api/v1/pipelines/{name}", params(("name" = String, Path)),
    responses((status = 200, body = PipelineInfo), (status = 404, body = ErrorBody)))]
pub async fn one(AxState(app): AxState<App>, Path(name): Path<String>) -> ApiResult<PipelineInfo> {
    let s = app.get(&name)?;
    Ok(Json(info(&s, true)))
}

/// Stops a pipeline and forgets it with its checkpoints.
#[utoipa::path(delete, path = "/api/v1/pipelines/{name}", params(("name" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody)))]
pub async fn delete(
    AxState(app): AxState<App>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    blocking(move || app.delete(&name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stops a pipeline (at a last checkpoint when it keeps them); it stays stopped across
/// server restarts.
#[utoipa::path(post, path = "/api/v1/pipelines/{name}/stop", params(("name" = String, Path)),
    responses((status = 200, body = PipelineInfo), (status = 404, body = ErrorBody)))]
pub async fn stop(AxState(app): AxState<App>, Path(name): Path<String>) -> ApiResult<PipelineInfo> {
    let s = blocking(move || app.stop(&name)).await?;
    Ok(Json(info(&s, false)))
}

/// Starts a stopped, finished or failed pipeline (from its last checkpoint).
#[utoipa::path(post, path = "/api/v1/pipelines/{name}/start", params(("name" = String, Path)),
    responses((status = 200, body = PipelineInfo), (status = 404, body = ErrorBody)))]
pub async fn start(
    AxState(app): AxState<App>,
    Path(name): Path<String>,
) -> ApiResult<PipelineInfo> {
    let s = blocking(move || app.start(&name)).await?;
    Ok(Json(info(&s, false)))
}

/// Stops and starts a pipeline.
#[utoipa::path(post, path = "/api/v1/pipelines/{name}/restart", params(("name" = String, Path)),
    responses((status = 200, body = PipelineInfo), (status = 404, body = ErrorBody)))]
pub async fn restart(
    AxState(app): AxState<App>,
    Path(name): Path<String>,
) -> ApiResult<PipelineInfo> {
    let s = blocking(move || app.restart(&name)).await?;
    Ok(Json(info(&s, false)))
}

/// A pipeline's state and counters.
#[utoipa::path(get, path = "/api/v1/pipelines/{name}/status", params(("name" = String, Path)),
    responses((status = 200, body = Status), (status = 404, body = ErrorBody)))]
pub async fn status(AxState(app): AxState<App>, Path(name): Path<String>) -> ApiResult<Status> {
    let s = app.get(&name)?;
    Ok(Json(status_of(&s)))
}

/// A pipeline's operator graph.
#[utoipa::path(get, path = "/api/v1/pipelines/{name}/graph", params(("name" = String, Path)),
    responses((status = 200, body = Graph), (status = 404, body = ErrorBody)))]
pub async fn graph(AxState(app): AxState<App>, Path(name): Path<String>) -> ApiResult<Graph> {
    let s = app.get(&name)?;
    let mut plan = serde_json::to_value(&s.plan).map_err(|e| ApiError::Internal(e.to_string()))?;
    weir_queries::redact::redact_json(&mut plan);
    Ok(Json(Graph {
        text: s.plan.explain(),
        plan,
    }))
}

/// A pipeline's lineage: every sink column back to source columns and model versions.
#[utoipa::path(get, path = "/api/v1/pipelines/{name}/lineage", params(("name" = String, Path)),
    responses((status = 200, body = Lineage), (status = 404, body = ErrorBody)))]
pub async fn lineage(AxState(app): AxState<App>, Path(name): Path<String>) -> ApiResult<Lineage> {
    let s = app.get(&name)?;
    let rows = weir_queries::lineage::lineage(&s.plan).map_err(ApiError::compile)?;
    Ok(Json(Lineage {
        columns: serde_json::to_value(rows).map_err(|e| ApiError::Internal(e.to_string()))?,
    }))
}

fn health_of(app: &Server) -> Health {
    let mut pipelines = BTreeMap::new();
    for s in app.list() {
        *pipelines.entry(s.state().0.name().to_string()).or_insert(0) += 1;
    }
    Health {
        status: if app.ready() { "ok" } else { "starting" }.into(),
        pipelines,
    }
}

/// Whether the server answers.
#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health)))]
pub async fn healthz(AxState(app): AxState<App>) -> Json<Health> {
    Json(health_of(&app))
}

/// Whether the server has started the pipelines of its catalog (503 until then).
#[utoipa::path(get, path = "/readyz", responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn readyz(AxState(app): AxState<App>) -> (StatusCode, Json<Health>) {
    let code = match app.ready() {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, Json(health_of(&app)))
}

/// The routes of the API.
pub fn routes(app: App) -> Router {
    let p = "/api/v1/pipelines";
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(super::prometheus::metrics))
        .route("/api/v1/openapi.json", get(super::openapi::document))
        .route(p, get(list).post(create))
        .route(&format!("{p}/validate"), post(validate))
        .route(&format!("{p}/:name"), get(one).delete(delete))
        .route(&format!("{p}/:name/stop"), post(stop))
        .route(&format!("{p}/:name/start"), post(start))
        .route(&format!("{p}/:name/restart"), post(restart))
        .route(&format!("{p}/:name/status"), get(status))
        .route(&format!("{p}/:name/graph"), get(graph))
        .route(&format!("{p}/:name/lineage"), get(lineage))
        .route(&format!("{p}/:name/output"), get(super::output::output))
        .merge(super::admin::routes())
        .merge(super::tables_api::routes())
        .merge(super::models_api::routes())
        .merge(super::dead_api::routes())
        .merge(super::alerts_api::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            super::auth::guard,
        ))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .with_state(app.clone())
        .merge(super::ui::routes(app))
}
