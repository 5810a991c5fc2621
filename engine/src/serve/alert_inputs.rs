//! `GET /api/v1/alerts/{id}/inputs`: the input records behind an alert's evidence, read back
//! from their sources. When the raising pipeline runs `WITH (provenance = 'true')`, each row
//! its alerts sink keeps as evidence carries a `provenance` value naming the input rows behind
//! it (file lines, Kafka offsets, archived MQTT sequences); this traces each of them, as
//! `weir trace` does, through the plan of the pipeline whose `alerts` sink raised the alert.
use std::sync::Arc;

use axum::extract::{Path, State as AxState};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use weir_connectors::alerts::{self, Alert};
use weir_queries::plan::ScriptPlan;

use super::api::blocking;
use super::error::ApiError;
use super::server::Server;

/// One evidence row's inputs.
#[derive(Debug, Serialize, ToSchema)]
pub struct Traced {
    /// The evidence row's time (ms).
    pub ts_ms: i64,
    /// Its provenance value.
    pub provenance: String,
    /// The input records it names, as read back (a CSV file's header first).
    pub inputs: Vec<String>,
    /// Why they could not be read back, if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An alert's inputs.
#[derive(Debug, Serialize, ToSchema)]
pub struct Inputs {
    /// The pipeline whose sink raised the alert (empty: none found).
    pub pipeline: String,
    /// Per evidence row with a provenance value, oldest first.
    pub rows: Vec<Traced>,
}

/// Whether `plan` has the `alerts` sink of kind `kind` (its `kind` option, else its name).
fn raises(plan: &ScriptPlan, kind: &str) -> bool {
    plan.sinks
        .iter()
        .any(|s| s.connector == "alerts" && s.options.get("kind").map_or(&s.name, |k| k) == kind)
}

/// The inputs of `a`'s `newest` evidence rows with a provenance value, traced through the
/// plan of the pipeline that raised it.
pub fn inputs_of(app: &Server, a: &Alert, newest: usize) -> Inputs {
    let ev = &a.evidence;
    let Some(col) = ev.columns.iter().position(|c| c == "provenance") else {
        return Inputs {
            pipeline: String::new(),
            rows: Vec::new(),
        };
    };
    let served = app.list().into_iter().find(|p| raises(&p.plan, &a.kind));
    let named: Vec<(&str, i64)> = ev
        .rows
        .iter()
        .zip(&ev.times)
        .filter_map(|(r, t)| r.get(col).and_then(|v| v.as_str()).map(|p| (p, *t)))
        .collect();
    let rows = named[named.len().saturating_sub(newest)..]
        .iter()
        .map(|&(p, ts_ms)| {
            let traced = match &served {
                Some(s) => crate::trace::trace(&s.plan, p),
                None => Err(format!("no pipeline raises '{}' alerts now", a.kind)),
            };
            let (inputs, error) = match traced {
                Ok(i) => (i, None),
                Err(e) => (Vec::new(), Some(e)),
            };
            Traced {
                ts_ms,
                provenance: p.to_string(),
                inputs,
                error,
            }
        })
        .collect();
    Inputs {
        pipeline: served.map(|s| s.name()).unwrap_or_default(),
        rows,
    }
}

/// The input records behind an alert's evidence.
#[utoipa::path(get, path = "/api/v1/alerts/{id}/inputs", params(("id" = u64, Path)),
    responses((status = 200, body = Inputs), (status = 404, body = super::error::ErrorBody)))]
pub async fn inputs(
    AxState(app): AxState<Arc<Server>>,
    Path(id): Path<u64>,
) -> Result<Json<Inputs>, ApiError> {
    let a = alerts::current()
        .get(id)
        .ok_or_else(|| ApiError::NotFound(format!("no alert {id}")))?;
    blocking(move || Ok(Json(inputs_of(&app, &a, usize::MAX)))).await
}
