//! The dashboard: server-rendered pages under `/ui` (askama templates in `engine/templates`,
//! compiled into the binary; htmx and uPlot embedded from `engine/assets`, no CDN). A person
//! signs in with the server's users (`/ui/login`: a 12-hour session in an HttpOnly,
//! SameSite=Strict cookie, `sessions.rs`), sees the overview, the pipelines, the alerts inbox and
//! an alert's page with the actions their role allows (`pages.rs`, `alert_page.rs`), a
//! pipeline's page with its operators and live output (`pipeline_page.rs`), the
//! review queue (`review_page.rs`) and the models with their validation from review
//! (`models_page.rs`), and the pages follow changes live over server-sent events (`/ui/live`).
pub mod alert_page;
pub mod assets;
pub mod live;
pub mod models_page;
pub mod pages;
pub mod pipeline_page;
pub mod review_page;
pub mod session;
pub mod sessions;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use super::server::Server;

/// The dashboard's routes.
pub fn routes(app: Arc<Server>) -> Router {
    let signed = Router::new()
        .route("/ui", get(pages::overview))
        .route("/ui/pipelines", get(pages::pipelines))
        .route("/ui/pipelines/:name", get(pipeline_page::show))
        .route("/ui/pipelines/:name/output", get(super::output::output))
        .route("/ui/alerts", get(pages::inbox))
        .route("/ui/alerts/:id", get(alert_page::show))
        .route("/ui/alerts/:id/:action", post(alert_page::act))
        .route("/ui/review", get(review_page::show))
        .route("/ui/review/:id", post(review_page::label))
        .route("/ui/models", get(models_page::show))
        .route("/ui/models/:model/version", post(models_page::switch))
        .route("/ui/live", get(live::live))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            session::require,
        ));
    Router::new()
        .merge(signed)
        .route("/", get(|| async { axum::response::Redirect::to("/ui") }))
        .route("/ui/login", get(session::login_form).post(session::login))
        .route("/ui/logout", post(session::logout))
        .route("/ui/assets/:file", get(assets::asset))
        .with_state(app)
}
