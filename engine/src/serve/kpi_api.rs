//! `GET /api/v1/kpis`: each business KPI of the `kpi` sinks, per site, with its baseline (the
//! mean over the baseline period), its current value and the change — what the overview's
//! tiles show.
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use weir_connectors::kpi;

/// A KPI as served.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiInfo {
    /// Its name.
    pub name: String,
    /// Its site (empty: none).
    pub site: String,
    /// Its unit.
    pub unit: String,
    /// `higher` or `lower`: which change is good.
    pub better: String,
    /// The baseline period as declared.
    pub baseline_period: String,
    /// The mean over the baseline period.
    pub baseline: Option<f64>,
    /// How many values it is the mean of.
    pub baseline_values: u64,
    /// The latest value after the baseline period.
    pub current: Option<f64>,
    /// Its time (ms).
    pub current_ms: Option<i64>,
    /// The change, in percent of the baseline.
    pub change_pct: Option<f64>,
    /// Whether the change is for the better.
    pub improved: Option<bool>,
}

/// Every KPI now.
pub fn infos() -> Vec<KpiInfo> {
    kpi::all()
        .into_iter()
        .map(|k| KpiInfo {
            baseline: k.baseline_value(),
            change_pct: k.change_pct(),
            improved: k.improved(),
            current: k.current.map(|c| c.1),
            current_ms: k.current.map(|c| c.0),
            baseline_values: k.baseline_n,
            baseline_period: k.baseline,
            name: k.name,
            site: k.site,
            unit: k.unit,
            better: k.better,
        })
        .collect()
}

/// The KPIs, by name and site.
#[utoipa::path(get, path = "/api/v1/kpis", responses((status = 200, body = [KpiInfo])))]
pub async fn kpis() -> Json<Vec<KpiInfo>> {
    Json(infos())
}
