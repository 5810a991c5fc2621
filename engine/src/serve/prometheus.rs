//! `/metrics` in Prometheus' text format, read at scrape time from the pipelines' own
//! counters (no second registry to keep in step): per pipeline whether it is up and its
//! checkpoints; per query (`CREATE PIPELINE`) rows in and out, late rows, dead letters, lag,
//! and each source and sink connector counter; per model version the batch-time histogram of
//! inference and the rows scored. No per-sensor labels.
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State as AxState;
use axum::http::header;
use axum::response::IntoResponse;

use super::pipeline::State;
use super::server::Server;
use super::status::status_of;

/// One metric family: its type, help, and samples (labels, value).
type Family = (&'static str, String, Vec<(String, f64)>);

/// Metric families by name.
#[derive(Default)]
struct Families(BTreeMap<String, Family>);

impl Families {
    fn add(&mut self, name: &str, kind: &'static str, help: &str, labels: String, v: f64) {
        let f = self
            .0
            .entry(name.to_string())
            .or_insert_with(|| (kind, help.to_string(), Vec::new()));
        f.2.push((labels, v));
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for (name, (kind, help, samples)) in &self.0 {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, v) in samples {
                let _ = match labels.is_empty() {
                    true => writeln!(out, "{name} {v}"),
                    false => writeln!(out, "{name}{{{labels}}} {v}"),
                };
            }
        }
        out
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A counter name as a metric name part (`decode_errors`, …).
fn part(name: &str) -> String {
    name.chars()
        .map(|c| match c.is_ascii_alphanumeric() {
            true => c.to_ascii_lowercase(),
            false => '_',
        })
        .collect()
}

/// Connector counters that are readings, not counts.
fn is_gauge(name: &str) -> bool {
    matches!(name, "lag" | "spooled")
}

/// The text of `/metrics` for `app`'s pipelines.
pub fn render(app: &Server) -> String {
    let mut f = Families::default();
    for s in app.list() {
        let st = status_of(&s);
        let pl = format!("pipeline=\"{}\"", esc(&st.name));
        let up = matches!(st.state, State::Running | State::Starting) as u8 as f64;
        f.add(
            "weir_pipeline_up",
            "gauge",
            "Whether the pipeline runs.",
            pl.clone(),
            up,
        );
        let c = &st.checkpoints;
        if c.enabled {
            let cp = |n: &str| format!("weir_checkpoint_{n}");
            f.add(
                &cp("taken_total"),
                "counter",
                "Checkpoints written by the pipeline's current run.",
                pl.clone(),
                c.taken as f64,
            );
            f.add(
                &cp("duration_seconds"),
                "gauge",
                "The last checkpoint's time from the cut until it was on disk.",
                pl.clone(),
                c.last_duration_ms as f64 / 1e3,
            );
            f.add(
                &cp("pause_seconds"),
                "gauge",
                "How long the pipeline paused for the last cut.",
                pl.clone(),
                c.last_pause_ms as f64 / 1e3,
            );
            f.add(
                &cp("size_bytes"),
                "gauge",
                "The last checkpoint's size on disk.",
                pl.clone(),
                c.last_bytes as f64,
            );
            f.add(
                &cp("restore_seconds"),
                "gauge",
                "Time to read the checkpoint the current run continued from.",
                pl.clone(),
                c.restore_ms as f64 / 1e3,
            );
        }
        for q in &st.queries {
            let l = format!("{pl},query=\"{}\"", esc(&q.name));
            f.add(
                "weir_rows_in_total",
                "counter",
                "Rows read by the query's source.",
                l.clone(),
                q.rows_in as f64,
            );
            f.add(
                "weir_rows_out_total",
                "counter",
                "Rows written to the query's sink.",
                l.clone(),
                q.rows_out as f64,
            );
            f.add(
                "weir_late_rows_total",
                "counter",
                "Rows behind the watermark.",
                l.clone(),
                q.late as f64,
            );
            f.add(
                "weir_dead_letters_total",
                "counter",
                "Records that could not be read, sent to the dead-letter output.",
                l.clone(),
                q.dead_letter as f64,
            );
            if let (Some(w), Some(lag)) = (q.watermark_ms, q.watermark_lag_ms) {
                f.add(
                    "weir_watermark_seconds",
                    "gauge",
                    "The query's source watermark, event time in seconds since the Unix epoch.",
                    l.clone(),
                    w as f64 / 1e3,
                );
                f.add(
                    "weir_watermark_lag_seconds",
                    "gauge",
                    "How far the watermark is behind the wall clock.",
                    l.clone(),
                    lag as f64 / 1e3,
                );
            }
            for o in &q.operators {
                let lo = format!("{l},operator=\"{}\"", esc(&o.node));
                f.add(
                    "weir_operator_rows_in_total",
                    "counter",
                    "Rows an operator took in.",
                    lo.clone(),
                    o.rows_in as f64,
                );
                f.add(
                    "weir_operator_rows_out_total",
                    "counter",
                    "Rows an operator gave out.",
                    lo,
                    o.rows_out as f64,
                );
            }
            for (side, counters) in [("source", &q.source), ("sink", &q.sink)] {
                for (name, v) in counters {
                    if *name == "blocked_us" {
                        if side == "source" {
                            continue;
                        }
                        let help = "Time the pipeline spent blocked writing to its sink.";
                        let metric = format!("weir_{side}_blocked_seconds_total");
                        f.add(&metric, "counter", help, l.clone(), *v as f64 / 1e6);
                        continue;
                    }
                    let (kind, suffix) = match is_gauge(name) {
                        true => ("gauge", ""),
                        false => ("counter", "_total"),
                    };
                    let metric = format!("weir_{side}_{}{suffix}", part(name));
                    let help = format!("The {side} connector's {name}.");
                    f.add(&metric, kind, &help, l.clone(), *v as f64);
                }
            }
        }
    }
    f.add(
        "weir_up",
        "gauge",
        "Whether the server has started its catalog's pipelines.",
        String::new(),
        app.ready() as u8 as f64,
    );
    let mut out = f.render();
    inference(&mut out);
    out
}

/// The batch-time histogram and row counter of every model version the process has loaded.
fn inference(out: &mut String) {
    let all = weir_models::times::all_times();
    if all.is_empty() {
        return;
    }
    let labels: Vec<String> = all
        .iter()
        .map(|t| {
            format!(
                "model=\"{}\",version=\"{}\"",
                esc(&t.model),
                esc(&t.version)
            )
        })
        .collect();
    let h = "weir_inference_batch_seconds";
    let _ = writeln!(
        out,
        "# HELP {h} Time to score one batch, per model version."
    );
    let _ = writeln!(out, "# TYPE {h} histogram");
    for (t, l) in all.iter().zip(&labels) {
        let bounds = weir_models::times::BOUNDS.iter().map(|b| b.to_string());
        for (le, n) in bounds.chain(["+Inf".to_string()]).zip(&t.cumulative) {
            let _ = writeln!(out, "{h}_bucket{{{l},le=\"{le}\"}} {n}");
        }
        let _ = writeln!(out, "{h}_sum{{{l}}} {}", t.seconds);
        let _ = writeln!(out, "{h}_count{{{l}}} {}", t.batches);
    }
    let r = "weir_inference_rows_total";
    let _ = writeln!(out, "# HELP {r} Rows scored, per model version.");
    let _ = writeln!(out, "# TYPE {r} counter");
    for (t, l) in all.iter().zip(&labels) {
        let _ = writeln!(out, "{r}{{{l}}} {}", t.rows);
    }
}

/// `GET /metrics`.
pub async fn metrics(AxState(app): AxState<Arc<Server>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&app),
    )
}
