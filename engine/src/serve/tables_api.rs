//! The `table` sinks over REST: `GET /api/v1/tables` (those the user may read, with their
//! columns and row counts), `POST /api/v1/query {sql}` (a read-only `SELECT` over them, as
//! JSON), and for admins `POST /api/v1/tables/{table}/grants {grantee}` (`GRANT SELECT ON
//! table TO user|role`) and `DELETE /api/v1/tables/{table}/grants/{grantee}` (`REVOKE`).
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::api::body;
use super::error::{ApiError, ErrorBody};
use super::query::{may_read, select, to_json};
use super::server::Server;
use super::users::User;

type App = Arc<Server>;

/// A query.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Query {
    /// A `SELECT` over the table sinks (and `weir_audit` for admins).
    pub sql: String,
}

/// A query's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Answer {
    /// Each column's name and Arrow type.
    #[schema(value_type = Vec<Object>)]
    pub columns: serde_json::Value,
    /// One object per row, by column name.
    #[schema(value_type = Vec<Object>)]
    pub rows: serde_json::Value,
}

/// A table sink.
#[derive(Debug, Serialize, ToSchema)]
pub struct TableInfo {
    /// The sink's name.
    pub name: String,
    /// Its columns (name and Arrow type).
    pub columns: Vec<(String, String)>,
    /// Rows it holds now.
    pub rows: usize,
}

/// A grant of `SELECT` on a table.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TableGrant {
    /// A user's or a role's name.
    pub grantee: String,
}

/// The table sinks the signed-in user may read.
#[utoipa::path(get, path = "/api/v1/tables", responses((status = 200, body = [TableInfo])))]
pub async fn tables(
    AxState(app): AxState<App>,
    Extension(user): Extension<User>,
) -> Json<Vec<TableInfo>> {
    let mut out = Vec::new();
    for (name, t) in weir_connectors::table::all() {
        if !may_read(&app, &user, &name) {
            continue;
        }
        let columns = t
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string()))
            .collect();
        let rows = t.len();
        out.push(TableInfo {
            name,
            columns,
            rows,
        });
    }
    Json(out)
}

/// Runs a read-only `SELECT` over the table sinks.
#[utoipa::path(post, path = "/api/v1/query", request_body = Query,
    responses((status = 200, body = Answer), (status = 422, body = ErrorBody)))]
pub async fn query(
    AxState(app): AxState<App>,
    Extension(user): Extension<User>,
    req: Result<Json<Query>, JsonRejection>,
) -> Result<Json<Answer>, ApiError> {
    let q = body(req)?;
    let answer = select(&app, &user, &q.sql).await?;
    let v = to_json(&answer)?;
    Ok(Json(Answer {
        columns: v["columns"].clone(),
        rows: v["rows"].clone(),
    }))
}

/// Grants `SELECT` on a table to a user or role.
#[utoipa::path(post, path = "/api/v1/tables/{table}/grants", params(("table" = String, Path)), request_body = TableGrant,
    responses((status = 204, description = "granted"), (status = 404, body = ErrorBody)))]
pub async fn grant(
    AxState(app): AxState<App>,
    Path(table): Path<String>,
    req: Result<Json<TableGrant>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    app.users.set_select(&table, &body(req)?.grantee, true)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes `SELECT` on a table from a user or role.
#[utoipa::path(delete, path = "/api/v1/tables/{table}/grants/{grantee}", params(("table" = String, Path), ("grantee" = String, Path)),
    responses((status = 204, description = "revoked"), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    AxState(app): AxState<App>,
    Path((table, grantee)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    app.users.set_select(&table, &grantee, false)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes of this file.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/v1/tables", get(tables))
        .route("/api/v1/query", post(query))
        .route("/api/v1/tables/:table/grants", post(grant))
        .route("/api/v1/tables/:table/grants/:grantee", delete(revoke))
}
