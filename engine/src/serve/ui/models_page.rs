//! The models page: each model's versions (which is current — the champion — in how many of
//! its pipelines, whether it was uploaded, rows scored and the mean batch time), and the
//! validation from people's review: per alert kind and model version, the alerts raised, how
//! many a reviewer labelled, the true and false positives and the precision. An ML engineer
//! switches a model's version here (`POST /ui/models/{model}/version`, the same switch as
//! REST's); everyone else sees the figures.
use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use serde::Deserialize;
use weir_connectors::alerts::{self, Alert};

use super::super::api::blocking;
use super::super::error::ApiError;
use super::super::models_api::infos;
use super::super::server::Server;
use super::super::users::{Role, User};
use super::pages::{audited, Chrome};
use super::session::html;

/// One version of a model, as shown.
pub struct VersionRow {
    /// The model.
    pub model: String,
    /// The version.
    pub version: String,
    /// Pipelines where it is current.
    pub current: usize,
    /// Pipelines that declare the model.
    pub pipelines: usize,
    /// Whether it was uploaded.
    pub uploaded: bool,
    /// Rows it scored in this process.
    pub rows: u64,
    /// Its mean batch time, as text.
    pub batch: String,
}

/// The review figures of one alert kind and model version.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Review {
    /// The alert kind.
    pub kind: String,
    /// The model version behind the alerts (`–` when none).
    pub version: String,
    /// Alerts raised.
    pub alerts: u64,
    /// Alerts a reviewer labelled.
    pub labelled: u64,
    /// Labelled true positive.
    pub true_positive: u64,
    /// Labelled false positive.
    pub false_positive: u64,
}

impl Review {
    /// TP / (TP + FP), as text (`–` before any label).
    pub fn precision(&self) -> String {
        match self.true_positive + self.false_positive {
            0 => "–".into(),
            n => format!("{:.3}", self.true_positive as f64 / n as f64),
        }
    }
}

/// The review figures of `all`, by kind and model version.
pub fn reviews(all: &[Alert]) -> Vec<Review> {
    let mut by: BTreeMap<(String, String), Review> = BTreeMap::new();
    for a in all {
        let version = a.model_version.clone().unwrap_or_else(|| "–".into());
        let r = by
            .entry((a.kind.clone(), version.clone()))
            .or_insert_with(|| Review {
                kind: a.kind.clone(),
                version,
                ..Review::default()
            });
        r.alerts += 1;
        match a.label.as_deref() {
            Some("true_positive") => r.true_positive += 1,
            Some("false_positive") => r.false_positive += 1,
            _ => continue,
        }
        r.labelled += 1;
    }
    by.into_values().collect()
}

#[derive(Template)]
#[template(path = "models.html")]
struct Page {
    c: Chrome,
    versions: Vec<VersionRow>,
    reviews: Vec<Review>,
    can_switch: bool,
    flash: String,
    flash_class: &'static str,
}

/// Each model's versions, with what this process scored with them.
fn versions(app: &Server) -> Vec<VersionRow> {
    let times = weir_models::times::all_times();
    let mut by: BTreeMap<(String, String), VersionRow> = BTreeMap::new();
    for m in infos(app) {
        let t = times
            .iter()
            .find(|t| t.model == m.name && t.version == m.version);
        let row = by
            .entry((m.name.clone(), m.version.clone()))
            .or_insert_with(|| VersionRow {
                model: m.name.clone(),
                version: m.version.clone(),
                current: 0,
                pipelines: 0,
                uploaded: m.uploaded,
                rows: t.map_or(0, |t| t.rows),
                batch: t.filter(|t| t.batches > 0).map_or("–".into(), |t| {
                    format!("{:.2} ms", 1000.0 * t.seconds / t.batches as f64)
                }),
            });
        row.pipelines += 1;
        row.current += m.current as usize;
    }
    by.into_values().collect()
}

fn page(app: &Server, user: &User, flash: String, ok: bool) -> Page {
    Page {
        c: Chrome::new("Models", user, "models"),
        versions: versions(app),
        reviews: reviews(&alerts::current().list(None)),
        can_switch: user.any(&[Role::MlEngineer]),
        flash,
        flash_class: if ok { "ok" } else { "error" },
    }
}

/// `GET /ui/models`.
pub async fn show(
    AxState(app): AxState<Arc<Server>>,
    Extension(user): Extension<User>,
) -> Response {
    html(&page(&app, &user, String::new(), true), StatusCode::OK)
}

/// The switch form.
#[derive(Debug, Deserialize)]
pub struct Switch {
    /// The version to make current.
    pub version: String,
}

/// `POST /ui/models/{model}/version` (ML engineers): the page after the switch, or why not.
pub async fn switch(
    AxState(app): AxState<Arc<Server>>,
    Extension(user): Extension<User>,
    Path(model): Path<String>,
    Form(f): Form<Switch>,
) -> Response {
    let done = if !user.any(&[Role::MlEngineer]) {
        Err(ApiError::Forbidden(format!(
            "{} may not switch model versions (ml_engineer may)",
            user.name
        )))
    } else if !super::super::uploads::valid_name(&model)
        || !super::super::uploads::valid_name(&f.version)
    {
        Err(ApiError::BadRequest(
            "model and version names are letters, digits, '_', '-' or '.'".into(),
        ))
    } else {
        let a = app.clone();
        let statement = format!("ALTER MODEL {model} SET VERSION '{}'", f.version);
        blocking(move || a.alter_model(&statement)).await
    };
    let target = format!("{model} {}", f.version);
    let code = audited(
        &app,
        &user,
        "POST /ui/models/{model}/version",
        target,
        &done,
    );
    let (flash, ok) = match done {
        Ok(n) => (
            format!("{model}: {} current in {n} pipeline(s)", f.version),
            true,
        ),
        Err(e) => (e.to_string(), false),
    };
    html(&page(&app, &user, flash, ok), code)
}
