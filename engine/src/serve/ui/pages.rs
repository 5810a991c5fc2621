//! The overview (KPI tiles: live alerts by severity, pipelines running, the mean time from
//! an alert to its verification), the pipelines list (state, rows, dead letters, watermark
//! lag) and the alerts inbox (filtered by state, severity and key).
use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use weir_connectors::alerts::{self, Alert, State, SEVERITIES};

use super::super::alerts_api::{select, Filter};
use super::super::audit::Entry;
use super::super::error::ApiError;
use super::super::pipeline::now_ms;
use super::super::server::Server;
use super::super::status::status_of;
use super::super::users::User;
use super::session::html;

/// What every page shows around its content.
pub struct Chrome {
    /// The page's title.
    pub title: String,
    /// The signed-in user.
    pub user: String,
    /// Their roles.
    pub roles: String,
    /// Which tab is open.
    pub tab: &'static str,
}

impl Chrome {
    /// The frame of page `title` for `user`.
    pub fn new(title: impl Into<String>, user: &User, tab: &'static str) -> Chrome {
        Chrome {
            title: title.into(),
            user: user.name.clone(),
            roles: user
                .roles
                .iter()
                .map(|r| r.name())
                .collect::<Vec<_>>()
                .join(", "),
            tab,
        }
    }
}

/// One KPI tile.
pub struct Kpi {
    /// What it measures.
    pub label: String,
    /// Its value now.
    pub value: String,
    /// What it is compared with.
    pub detail: String,
    /// A CSS class for its emphasis.
    pub class: &'static str,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct Overview {
    c: Chrome,
    kpis: Vec<Kpi>,
    states: Vec<(String, u64)>,
}

/// The mean time from raised to verified (ms) over the alerts that got there.
fn mean_time_to_verified(all: &[Alert]) -> Option<u64> {
    let store = alerts::current();
    let mut spans = Vec::new();
    for a in all
        .iter()
        .filter(|a| matches!(a.state, State::Verified | State::Closed))
    {
        let Some(full) = store.get(a.id) else {
            continue;
        };
        let raised = full
            .events
            .iter()
            .find(|e| e.kind == "raised")
            .map(|e| e.ts_ms);
        let verified = full
            .events
            .iter()
            .rev()
            .find(|e| e.kind == "verified")
            .map(|e| e.ts_ms);
        if let (Some(r), Some(v)) = (raised, verified) {
            spans.push(v.saturating_sub(r));
        }
    }
    (!spans.is_empty()).then(|| spans.iter().sum::<u64>() / spans.len() as u64)
}

/// A tile per business KPI: its current value, its baseline and the change.
fn business_kpis() -> Vec<Kpi> {
    super::super::kpi_api::infos()
        .into_iter()
        .map(|k| {
            let num = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.2}"));
            let site = match k.site.is_empty() {
                true => String::new(),
                false => format!(" · {}", k.site),
            };
            Kpi {
                label: format!("{}{site}", k.name),
                value: format!("{} {}", num(k.current), k.unit).trim().to_string(),
                detail: format!(
                    "baseline {} ({}), change {}",
                    num(k.baseline),
                    k.baseline_period,
                    k.change_pct.map_or("–".into(), |c| format!("{c:+.1}%"))
                ),
                class: match k.improved {
                    Some(true) => "good",
                    Some(false) => "bad",
                    None => "",
                },
            }
        })
        .collect()
}

/// `GET /ui`.
pub async fn overview(
    AxState(app): AxState<Arc<Server>>,
    Extension(user): Extension<User>,
) -> Response {
    let all = alerts::current().list(None);
    let live: Vec<&Alert> = all.iter().filter(|a| a.is_live()).collect();
    let pipelines = app.list();
    let running = pipelines
        .iter()
        .filter(|p| p.state().0.name() == "running")
        .count();
    let mut kpis = vec![Kpi {
        label: "Live alerts".into(),
        value: live.len().to_string(),
        detail: format!("{} raised in all", all.len()),
        class: if live.is_empty() { "ok" } else { "warn" },
    }];
    for sev in SEVERITIES.iter().take(2) {
        let n = live.iter().filter(|a| a.severity == *sev).count();
        kpis.push(Kpi {
            label: format!("Live {sev}"),
            value: n.to_string(),
            detail: "not yet closed".into(),
            class: if n == 0 { "ok" } else { "bad" },
        });
    }
    kpis.push(Kpi {
        label: "Pipelines running".into(),
        value: format!("{running} / {}", pipelines.len()),
        detail: "running / known".into(),
        class: if running == pipelines.len() {
            "ok"
        } else {
            "warn"
        },
    });
    let mttv = tokio::task::spawn_blocking(move || mean_time_to_verified(&all))
        .await
        .ok()
        .flatten();
    kpis.push(Kpi {
        label: "Mean time to verified".into(),
        value: mttv.map_or("–".into(), |ms| {
            format!("{:.1} min", ms as f64 / 60_000.0)
        }),
        detail: "from raised to verified".into(),
        class: "",
    });
    kpis.extend(business_kpis());
    let counts: BTreeMap<State, u64> = alerts::current().counts();
    let states = counts
        .into_iter()
        .map(|(s, n)| (s.name().to_string(), n))
        .collect();
    let page = Overview {
        c: Chrome::new("Overview", &user, "overview"),
        kpis,
        states,
    };
    html(&page, StatusCode::OK)
}

/// One pipeline as listed.
pub struct PipelineRow {
    /// Its name.
    pub name: String,
    /// Its state.
    pub state: String,
    /// Rows in and out, late rows and dead letters over its queries.
    pub rows_in: u64,
    /// Rows written.
    pub rows_out: u64,
    /// Late rows.
    pub late: u64,
    /// Dead letters.
    pub dead: u64,
    /// The largest watermark lag of its queries, as text.
    pub lag: String,
}

#[derive(Template)]
#[template(path = "pipelines.html")]
struct Pipelines {
    c: Chrome,
    rows: Vec<PipelineRow>,
}

/// `GET /ui/pipelines`.
pub async fn pipelines(
    AxState(app): AxState<Arc<Server>>,
    Extension(user): Extension<User>,
) -> Response {
    let rows = app
        .list()
        .iter()
        .map(|p| {
            let s = status_of(p);
            let sum =
                |f: fn(&super::super::status::QueryStatus) -> u64| s.queries.iter().map(f).sum();
            let lag = s.queries.iter().filter_map(|q| q.watermark_lag_ms).max();
            PipelineRow {
                name: s.name.clone(),
                state: s.state.name().into(),
                rows_in: sum(|q| q.rows_in),
                rows_out: sum(|q| q.rows_out),
                late: sum(|q| q.late),
                dead: sum(|q| q.dead_letter),
                lag: lag.map_or("–".into(), |ms| format!("{:.1} s", ms as f64 / 1000.0)),
            }
        })
        .collect();
    html(
        &Pipelines {
            c: Chrome::new("Pipelines", &user, "pipelines"),
            rows,
        },
        StatusCode::OK,
    )
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct Inbox {
    c: Chrome,
    alerts: Vec<Alert>,
    state: String,
    severity: String,
    key: String,
    site: String,
    states: Vec<&'static str>,
    severities: Vec<&'static str>,
    flash: String,
}

/// `GET /ui/alerts`.
pub async fn inbox(Extension(user): Extension<User>, Query(f): Query<Filter>) -> Response {
    let (list, flash, status) = match select(&f) {
        Ok(l) => (l, String::new(), StatusCode::OK),
        Err(e) => (Vec::new(), e.to_string(), StatusCode::BAD_REQUEST),
    };
    let page = Inbox {
        c: Chrome::new("Alerts", &user, "alerts"),
        alerts: list,
        state: f.state.unwrap_or_default(),
        severity: f.severity.unwrap_or_default(),
        key: f.key.unwrap_or_default(),
        site: f.site.unwrap_or_default(),
        states: State::ALL.map(State::name).to_vec(),
        severities: SEVERITIES.to_vec(),
        flash,
    };
    html(&page, status)
}

#[derive(Template)]
#[template(path = "missing.html")]
struct Missing {
    c: Chrome,
    message: String,
    back: String,
}

/// A 404 page titled `what`, under `tab`.
pub fn missing(user: &User, what: &str, tab: &'static str) -> Response {
    let message = format!("{what}: it may have been deleted, or the link is wrong.");
    problem(user, what, message, tab, StatusCode::NOT_FOUND)
}

/// A page that says what went wrong, with `status`.
pub fn problem(
    user: &User,
    title: &str,
    message: String,
    tab: &'static str,
    status: StatusCode,
) -> Response {
    let page = Missing {
        c: Chrome::new(title, user, tab),
        message,
        back: format!("/ui/{}", if tab == "overview" { "" } else { tab }),
    };
    html(&page, status)
}

/// Records a page's action (`action` on `target`, done or refused) in the audit log, as the
/// API's middleware does for REST; the status the page answers with.
pub fn audited<T>(
    app: &Server,
    user: &User,
    action: &str,
    target: String,
    done: &Result<T, ApiError>,
) -> StatusCode {
    let status = done.as_ref().map_or_else(|e| e.status_code(), |_| 200);
    app.audit.append(&Entry {
        ts_ms: now_ms(),
        user: user.name.clone(),
        action: action.into(),
        target,
        status,
        outcome: super::super::audit::outcome(status).into(),
    });
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// `ms` since the Unix epoch as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn clock(ms: i64) -> String {
    datafusion::arrow::temporal_conversions::timestamp_ms_to_datetime(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}
