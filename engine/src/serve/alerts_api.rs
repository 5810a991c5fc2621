//! Alerts over REST, as the dashboard's pages use them: the inbox (`GET /api/v1/alerts`,
//! filtered by state, severity, kind or key), one alert with its evidence and event log,
//! and the actions (`POST /api/v1/alerts/{id}/{action}`: ack, dispatch, fixed, confirm,
//! reopen, shelve — an operator's; label — a reviewer's). A transition the alert's state
//! does not allow is 409 and changes nothing; one the user's role does not allow is 403.
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use weir_connectors::alerts::{self, ActError, ActRequest, Action, Alert, State};

use super::api::{blocking, body};
use super::error::ApiError;
use super::server::Server;
use super::users::{Role, User};

type App = Arc<Server>;

/// The inbox's filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct Filter {
    /// `open`, `acknowledged`, `dispatched`, `fixed`, `verifying`, `verified`, `closed`,
    /// `shelved`; several comma-separated; `live`: every state but `closed`.
    pub state: Option<String>,
    /// `critical`, `major`, `minor`, `warning`, `info`.
    pub severity: Option<String>,
    /// The alert kind.
    pub kind: Option<String>,
    /// Keys containing this text.
    pub key: Option<String>,
    /// The site, exactly.
    pub site: Option<String>,
    /// At most this many (default 1000).
    pub limit: Option<usize>,
}

/// The alerts `f` selects, newest first.
pub fn select(f: &Filter) -> Result<Vec<Alert>, ApiError> {
    let states: Option<Vec<State>> = match f.state.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("live") => Some(
            State::ALL
                .into_iter()
                .filter(|s| *s != State::Closed)
                .collect(),
        ),
        Some(list) => Some(
            list.split(',')
                .map(|s| {
                    State::parse(s.trim()).ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "state '{s}': give one of {} or live",
                            State::ALL.map(State::name).join(", ")
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
    };
    let empty = |o: &Option<String>| {
        o.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    let (sev, kind, key) = (empty(&f.severity), empty(&f.kind), empty(&f.key));
    let site = empty(&f.site);
    Ok(alerts::current()
        .list(None)
        .into_iter()
        .filter(|a| states.as_ref().is_none_or(|s| s.contains(&a.state)))
        .filter(|a| sev.as_ref().is_none_or(|s| &a.severity == s))
        .filter(|a| kind.as_ref().is_none_or(|k| &a.kind == k))
        .filter(|a| key.as_ref().is_none_or(|k| a.key.contains(k.as_str())))
        .filter(|a| site.as_ref().is_none_or(|s| &a.site == s))
        .take(f.limit.unwrap_or(1000))
        .collect())
}

/// An alert as listed (its evidence and events come with `GET /api/v1/alerts/{id}`).
#[derive(Debug, serde::Serialize, ToSchema)]
#[schema(as = AlertInfo)]
pub struct AlertDoc {
    /// The alert: id, kind, key, site, severity, title, state, count, first_ms, last_ms,
    /// model_version, verify, verify_for_ms, playbook, evidence {columns, rows}, work_order
    /// {assignee, due, instructions}, shelved_until_ms, label, events [{seq, ts_ms, kind,
    /// user, note, state, details}].
    #[schema(value_type = Object)]
    pub alert: serde_json::Value,
}

/// Lists alerts, newest first.
#[utoipa::path(get, path = "/api/v1/alerts", params(Filter),
    responses((status = 200, description = "the alerts (without evidence and events)", body = [Object]),
    (status = 400, body = super::error::ErrorBody)))]
pub async fn list(Query(f): Query<Filter>) -> Result<Json<Vec<Alert>>, ApiError> {
    blocking(move || select(&f)).await.map(Json)
}

/// One alert, with its evidence and event log.
#[utoipa::path(get, path = "/api/v1/alerts/{id}", params(("id" = u64, Path)),
    responses((status = 200, body = Object), (status = 404, body = super::error::ErrorBody)))]
pub async fn one(Path(id): Path<u64>) -> Result<Json<Alert>, ApiError> {
    alerts::current()
        .get(id)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no alert {id}")))
}

/// The body of an action.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ActBody {
    /// A note for the event log.
    #[serde(default)]
    pub note: String,
    /// `dispatch`: who does the work (required).
    #[serde(default)]
    pub assignee: String,
    /// `dispatch`: by when.
    #[serde(default)]
    pub due: String,
    /// `dispatch`: what to do.
    #[serde(default)]
    pub instructions: String,
    /// `label`: `true_positive` or `false_positive`.
    #[serde(default)]
    pub label: String,
    /// `shelve`: for how long (`30m`, `8h`; default `1h`).
    #[serde(default, rename = "for")]
    pub for_: String,
}

impl From<ActBody> for ActRequest {
    fn from(b: ActBody) -> ActRequest {
        ActRequest {
            note: b.note,
            assignee: b.assignee,
            due: b.due,
            instructions: b.instructions,
            label: b.label,
            for_: b.for_,
        }
    }
}

/// Does `action` (by name) on alert `id` as `user`: the role and the state decide.
pub fn act(user: &User, id: u64, action: &str, req: ActRequest) -> Result<Alert, ApiError> {
    let action = Action::parse(action).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no action '{action}' (ack, dispatch, fixed, confirm, reopen, shelve, label)"
        ))
    })?;
    let (role, what) = match action.is_review() {
        true => (Role::Reviewer, "a reviewer"),
        false => (Role::Operator, "an operator"),
    };
    if !user.any(&[role]) {
        return Err(ApiError::Forbidden(format!(
            "user '{}' may not {} alerts: that takes {what}",
            user.name,
            action.name()
        )));
    }
    alerts::current()
        .act(id, action, &user.name, &req)
        .map_err(|e| match e {
            ActError::NotFound(_) => ApiError::NotFound(e.to_string()),
            ActError::Conflict(_) => ApiError::Conflict(e.to_string()),
            ActError::Invalid(_) => ApiError::BadRequest(e.to_string()),
            ActError::Delivery(_) => ApiError::BadGateway(e.to_string()),
            ActError::Store(_) => ApiError::Internal(e.to_string()),
        })
}

/// Acts on an alert: `ack`, `dispatch`, `fixed`, `confirm`, `reopen`, `shelve` (operators),
/// `label` (reviewers).
#[utoipa::path(post, path = "/api/v1/alerts/{id}/{action}",
    params(("id" = u64, Path), ("action" = String, Path)), request_body = ActBody,
    responses((status = 200, description = "the alert after the action", body = Object),
    (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
    (status = 404, body = super::error::ErrorBody),
    (status = 409, description = "the alert's state does not allow it", body = super::error::ErrorBody),
    (status = 502, description = "the work order was not delivered", body = super::error::ErrorBody)))]
pub async fn action(
    Extension(user): Extension<User>,
    Path((id, action)): Path<(u64, String)>,
    req: Result<Json<ActBody>, JsonRejection>,
) -> Result<Json<Alert>, ApiError> {
    let req = body(req)?;
    blocking(move || act(&user, id, &action, req.into()))
        .await
        .map(Json)
}

/// The routes.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/v1/alerts", get(list))
        .route("/api/v1/alerts/:id", get(one))
        .route(
            "/api/v1/alerts/:id/inputs",
            get(super::alert_inputs::inputs),
        )
        .route("/api/v1/alerts/:id/:action", post(action))
        .route("/api/v1/kpis", get(super::kpi_api::kpis))
}
