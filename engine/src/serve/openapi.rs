//! The OpenAPI document of the REST API, gathered at compile time from the handlers'
//! descriptions (utoipa) and served at `/api/v1/openapi.json`.
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::OpenApi;

use super::{admin, api, models_api, tables_api};

/// HTTP Basic (a user's password) and bearer tokens, as the document's security schemes.
struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The API's document.
#[derive(OpenApi)]
#[openapi(
    info(title = "weir", description = "Pipelines of SQL over industrial sensor data: submit, watch, stop."),
    paths(
        api::list, api::create, api::validate, api::one, api::delete, api::stop, api::start,
        api::restart, api::status, api::graph, api::lineage, api::healthz, api::readyz,
        admin::new_token, admin::users, admin::create_user, admin::delete_user, admin::grant,
        admin::revoke, admin::audit, tables_api::tables, tables_api::query, tables_api::grant,
        tables_api::revoke, super::output::output, models_api::models, models_api::switch,
        models_api::upload, super::dead_api::dead_letters, super::alerts_api::list,
        super::alerts_api::one, super::alerts_api::action, super::kpi_api::kpis,
        super::alert_inputs::inputs
    ),
    components(schemas(
        api::NewPipeline, api::Script, api::Validated, api::PipelineInfo, api::Graph, api::Lineage,
        api::Health, super::error::ErrorBody, super::pipeline::State, super::pipeline::Failure,
        super::status::Status, super::status::QueryStatus, super::status::CheckpointInfo,
        admin::Token, admin::NewUser, admin::Grant, super::users::UserInfo, super::users::Role,
        super::audit::Entry, tables_api::Query, tables_api::Answer, tables_api::TableInfo,
        tables_api::TableGrant, models_api::ModelInfo, models_api::Version, models_api::Switched,
        models_api::Uploaded, super::dead_api::DeadLetters, crate::job::recent::KeptDeadLetter,
        super::alerts_api::ActBody, super::kpi_api::KpiInfo,
        super::alert_inputs::Inputs, super::alert_inputs::Traced
    )),
    modifiers(&Security),
    security(("basic" = []), ("bearer" = []))
)]
pub struct ApiDoc;

/// The document as JSON.
pub fn json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

/// `GET /api/v1/openapi.json`.
pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], json())
}
