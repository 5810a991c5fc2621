//! Users, roles, tokens and the audit log over REST: `POST /api/v1/tokens` (any signed-in
//! user: a token for themselves), and for admins `GET/POST /api/v1/users`,
//! `DELETE /api/v1/users/{user}`, `POST /api/v1/users/{user}/roles` (grant),
//! `DELETE /api/v1/users/{user}/roles/{role}` (revoke), `GET /api/v1/audit`.
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::api::{blocking, body};
use super::audit::Entry;
use super::error::{ApiError, ErrorBody};
use super::server::Server;
use super::users::{Role, User, UserInfo};

type App = Arc<Server>;

/// A token, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct Token {
    /// Send it as `Authorization: Bearer TOKEN`.
    pub token: String,
    /// Whose it is.
    pub user: String,
}

/// A user to create.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewUser {
    /// 1 to 64 letters, digits, `_`, `-` or `.`.
    pub name: String,
    /// At least 8 characters.
    pub password: String,
    /// Roles granted at once.
    #[serde(default)]
    pub roles: Vec<Role>,
}

/// A role to grant.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Grant {
    /// The role.
    pub role: Role,
}

/// A new API token for the signed-in user.
#[utoipa::path(post, path = "/api/v1/tokens", responses((status = 201, body = Token), (status = 401, body = ErrorBody)))]
pub async fn new_token(
    AxState(app): AxState<App>,
    Extension(user): Extension<User>,
) -> Result<(StatusCode, Json<Token>), ApiError> {
    let token = app.users.new_token(&user.name)?;
    Ok((
        StatusCode::CREATED,
        Json(Token {
            token,
            user: user.name,
        }),
    ))
}

/// Every user with their roles.
#[utoipa::path(get, path = "/api/v1/users", responses((status = 200, body = [UserInfo]), (status = 403, body = ErrorBody)))]
pub async fn users(AxState(app): AxState<App>) -> Json<Vec<UserInfo>> {
    Json(app.users.list())
}

/// Creates a user (`CREATE USER name PASSWORD '…'`).
#[utoipa::path(post, path = "/api/v1/users", request_body = NewUser,
    responses((status = 201, description = "created"), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_user(
    AxState(app): AxState<App>,
    req: Result<Json<NewUser>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let u = body(req)?;
    blocking(move || app.users.create(&u.name, &u.password, &u.roles)).await?;
    Ok(StatusCode::CREATED)
}

/// Deletes a user and their tokens.
#[utoipa::path(delete, path = "/api/v1/users/{user}", params(("user" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody)))]
pub async fn delete_user(
    AxState(app): AxState<App>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.users.delete(&name)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Grants a role (`GRANT role TO user`).
#[utoipa::path(post, path = "/api/v1/users/{user}/roles", params(("user" = String, Path)), request_body = Grant,
    responses((status = 204, description = "granted"), (status = 404, body = ErrorBody)))]
pub async fn grant(
    AxState(app): AxState<App>,
    Path(name): Path<String>,
    req: Result<Json<Grant>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    app.users.set_role(&name, body(req)?.role, true)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes a role (`REVOKE role FROM user`).
#[utoipa::path(delete, path = "/api/v1/users/{user}/roles/{role}", params(("user" = String, Path), ("role" = String, Path)),
    responses((status = 204, description = "revoked"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    AxState(app): AxState<App>,
    Path((name, role)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let role = Role::parse(&role).ok_or_else(|| {
        let all: Vec<String> = Role::ALL.iter().map(|r| r.name()).collect();
        ApiError::BadRequest(format!("no role '{role}'; roles are {}", all.join(", ")))
    })?;
    app.users.set_role(&name, role, false)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The audit log, oldest first.
#[utoipa::path(get, path = "/api/v1/audit", responses((status = 200, body = [Entry]), (status = 403, body = ErrorBody)))]
pub async fn audit(AxState(app): AxState<App>) -> Json<Vec<Entry>> {
    Json(app.audit.read())
}

/// The routes of this file.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/v1/tokens", post(new_token))
        .route("/api/v1/users", get(users).post(create_user))
        .route("/api/v1/users/:user", delete(delete_user))
        .route("/api/v1/users/:user/roles", post(grant))
        .route("/api/v1/users/:user/roles/:role", delete(revoke))
        .route("/api/v1/audit", get(audit))
}
