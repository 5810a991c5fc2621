//! The `kpi` sink: a pipeline's business KPIs (uptime %, energy per unit, alert precision, …)
//! measured against a baseline period, so a pilot's effect is on the dashboard's first page.
//! Each row gives a KPI's name, value and time (and optionally its site). Per (KPI, site),
//! the baseline is the mean of the values whose time falls in the `baseline` period (`start/
//! end`, dates or timestamps, end excluded), the current value the latest value after it.
//!
//! Options: `name` (the KPI's column, default `kpi`), `value` (default `value`), `site`
//! (a column; optional), `time` (a column, TIMESTAMP or BIGINT ms; default the wall clock),
//! `baseline` (required), `unit` (text shown with the value), `better` (`higher` or `lower`:
//! which change is good). One registry per process ([`all`]); `weir serve` keeps it in its
//! state directory (`kpis.json`, written whole, fsynced and renamed into place at each
//! written batch), so baselines survive a restart.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use datafusion::arrow::array::{Array, Float64Array, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::compute::kernels::cast_utils::string_to_timestamp_nanos;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde::{Deserialize, Serialize};

use crate::describe::{opt, ConnectorSpec, Kind};
use crate::{ConnectorMetrics, Error, Options, Result, Sink, SinkContext};

/// One KPI at one site, as it stands.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Kpi {
    /// Its name.
    pub name: String,
    /// Its site (empty: none given).
    pub site: String,
    /// Its unit.
    pub unit: String,
    /// `higher` or `lower`: which change is good.
    pub better: String,
    /// The baseline period's start and end (ms; end excluded).
    pub baseline_ms: (i64, i64),
    /// The baseline period as written.
    pub baseline: String,
    /// The sum and the number of the baseline's values.
    pub baseline_sum: f64,
    /// How many values fell in the baseline period.
    pub baseline_n: u64,
    /// The latest value after the baseline period, and its time.
    pub current: Option<(i64, f64)>,
}

impl Kpi {
    /// The baseline's mean.
    pub fn baseline_value(&self) -> Option<f64> {
        (self.baseline_n > 0).then(|| self.baseline_sum / self.baseline_n as f64)
    }

    /// The change from the baseline to the current value, in percent of the baseline.
    pub fn change_pct(&self) -> Option<f64> {
        let (b, (_, c)) = (self.baseline_value()?, self.current?);
        (b != 0.0).then(|| (c - b) / b.abs() * 100.0)
    }

    /// Whether the change is for the better (`None`: no change known).
    pub fn improved(&self) -> Option<bool> {
        let ch = self.change_pct()?;
        Some(if self.better == "lower" {
            ch < 0.0
        } else {
            ch > 0.0
        })
    }
}

#[derive(Default)]
struct Registry {
    kpis: BTreeMap<(String, String), Kpi>,
    file: Option<PathBuf>,
}

fn registry() -> &'static Mutex<Registry> {
    static KPIS: OnceLock<Mutex<Registry>> = OnceLock::new();
    KPIS.get_or_init(Default::default)
}

fn lock() -> std::sync::MutexGuard<'static, Registry> {
    registry().lock().unwrap_or_else(|e| e.into_inner())
}

/// Keeps the registry in `dir/kpis.json`, loading what it holds.
pub fn open(dir: &Path) -> Result<()> {
    let path = dir.join("kpis.json");
    let kpis: Vec<Kpi> = match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|e| Error::Format(format!("{}: {e}", path.display())))?,
        Err(_) => Vec::new(),
    };
    let mut r = lock();
    r.kpis = kpis
        .into_iter()
        .map(|k| ((k.name.clone(), k.site.clone()), k))
        .collect();
    r.file = Some(path);
    Ok(())
}

/// Every KPI, by name and site.
pub fn all() -> Vec<Kpi> {
    lock().kpis.values().cloned().collect()
}

fn save(r: &Registry) -> Result<()> {
    let Some(path) = &r.file else { return Ok(()) };
    let list: Vec<&Kpi> = r.kpis.values().collect();
    let text = serde_json::to_vec_pretty(&list).map_err(|e| Error::Format(e.to_string()))?;
    let tmp = path.with_extension("json.tmp");
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| Error::io(path.display().to_string(), e))
}

/// The kpi sink's options.
pub const SPEC: ConnectorSpec = ConnectorSpec {
    name: "kpi",
    tables: crate::describe::Tables::Stream,
    formats: &[],
    options: &[&[
        opt("name", Kind::Text, "kpi", "the column naming the KPI"),
        opt("value", Kind::Text, "value", "the column of its value"),
        opt(
            "site",
            Kind::Text,
            "",
            "the column naming the site (optional)",
        ),
        opt(
            "time",
            Kind::Text,
            "",
            "the rows' time column (default: the wall clock)",
        ),
        opt(
            "baseline",
            Kind::Text,
            "",
            "the baseline period: 'start/end' (required)",
        ),
        opt("unit", Kind::Text, "", "the unit shown with the value"),
        opt(
            "better",
            Kind::Text,
            "higher",
            "which change is good: higher or lower",
        ),
    ]],
    provenance: crate::describe::Provenance::Untraced,
    dataset: None,
    resumable: crate::describe::Resumable::No,
    live: false,
};

/// `start/end` as ms.
fn period(text: &str) -> Result<(i64, i64)> {
    let bad = |m: String| Error::Option {
        option: "baseline".into(),
        message: m,
    };
    let (a, b) = text.split_once('/').ok_or_else(|| {
        bad(format!(
            "'{text}': give 'start/end', e.g. '2026-10-01/2026-11-01'"
        ))
    })?;
    let ms = |s: &str| {
        let s = s.trim();
        let full = if s.len() == 10 {
            format!("{s}T00:00:00")
        } else {
            s.to_string()
        };
        string_to_timestamp_nanos(&full)
            .map(|ns| ns / 1_000_000)
            .map_err(|e| bad(format!("'{s}': {e}")))
    };
    let (start, end) = (ms(a)?, ms(b)?);
    if end <= start {
        return Err(bad(format!("'{text}': the end must come after the start")));
    }
    Ok((start, end))
}

/// The kpi sink.
pub struct KpiSink {
    name: usize,
    value: usize,
    site: Option<usize>,
    time: Option<usize>,
    baseline: String,
    baseline_ms: (i64, i64),
    unit: String,
    better: String,
    metrics: std::sync::Arc<ConnectorMetrics>,
}

fn column(ctx: &SinkContext, option: &str, name: &str) -> Result<usize> {
    ctx.schema.index_of(name.trim()).map_err(|_| Error::Option {
        option: option.into(),
        message: format!("'{name}': the sink's rows have no such column"),
    })
}

/// Builds the kpi sink.
pub fn build(ctx: SinkContext) -> Result<Box<dyn Sink>> {
    let mut o = Options::new(&SPEC, ctx.options.clone());
    let name = column(
        &ctx,
        "name",
        &o.string("name").unwrap_or_else(|| "kpi".into()),
    )?;
    let value = column(
        &ctx,
        "value",
        &o.string("value").unwrap_or_else(|| "value".into()),
    )?;
    let site = o
        .string("site")
        .map(|c| column(&ctx, "site", &c))
        .transpose()?;
    let time = o
        .string("time")
        .map(|c| column(&ctx, "time", &c))
        .transpose()?;
    let baseline = o.required("baseline")?;
    let baseline_ms = period(&baseline)?;
    let unit = o.string("unit").unwrap_or_default();
    let better = o.string("better").unwrap_or_else(|| "higher".into());
    if better != "higher" && better != "lower" {
        return Err(Error::Option {
            option: "better".into(),
            message: format!("'{better}': give higher or lower"),
        });
    }
    o.finish()?;
    Ok(Box::new(KpiSink {
        name,
        value,
        site,
        time,
        baseline,
        baseline_ms,
        unit,
        better,
        metrics: ctx.metrics,
    }))
}

fn texts(batch: &RecordBatch, c: usize) -> Result<Vec<String>> {
    let col = batch.column(c);
    let f = ArrayFormatter::try_new(col.as_ref(), &FormatOptions::default())?;
    Ok((0..batch.num_rows())
        .map(|r| f.value(r).to_string())
        .collect())
}

/// Each row's time in ms (`None` where NULL): column `c`'s, a TIMESTAMP or BIGINT ms, else the
/// wall clock. `what` names the sink in errors. The alerts sink uses it too.
pub(crate) fn row_times(
    batch: &RecordBatch,
    c: Option<usize>,
    what: &str,
) -> Result<Vec<Option<i64>>> {
    let Some(c) = c else {
        return Ok(vec![Some(crate::alerts::now_ms() as i64); batch.num_rows()]);
    };
    let col = batch.column(c);
    let ms = match col.data_type() {
        DataType::Timestamp(_, _) => cast(col, &DataType::Timestamp(TimeUnit::Millisecond, None))
            .and_then(|a| cast(&a, &DataType::Int64))?,
        _ => cast(col, &DataType::Int64)?,
    };
    let ms = ms
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| Error::Format(format!("{what}: the time column")))?;
    Ok((0..ms.len())
        .map(|i| ms.is_valid(i).then(|| ms.value(i)))
        .collect())
}

impl Sink for KpiSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        ConnectorMetrics::add(&self.metrics.messages, batch.num_rows() as u64);
        let names = texts(batch, self.name)?;
        let sites = match self.site {
            Some(c) => texts(batch, c)?,
            None => vec![String::new(); batch.num_rows()],
        };
        let values = cast(batch.column(self.value), &DataType::Float64)?;
        let values = values
            .as_any()
            .downcast_ref::<Float64Array>()
            .ok_or_else(|| Error::Format("kpi: value".into()))?;
        let times = row_times(batch, self.time, "kpi")?;
        let mut r = lock();
        for i in 0..batch.num_rows() {
            let (Some(t), true) = (times[i], values.is_valid(i)) else {
                continue;
            };
            let v = values.value(i);
            let k = r
                .kpis
                .entry((names[i].clone(), sites[i].clone()))
                .or_default();
            if k.baseline != self.baseline {
                // A new KPI, or its baseline period changed: counted afresh.
                *k = Kpi {
                    name: names[i].clone(),
                    site: sites[i].clone(),
                    baseline: self.baseline.clone(),
                    baseline_ms: self.baseline_ms,
                    ..Kpi::default()
                };
            }
            k.unit = self.unit.clone();
            k.better = self.better.clone();
            let (start, end) = self.baseline_ms;
            if t >= start && t < end {
                k.baseline_sum += v;
                k.baseline_n += 1;
            } else if t >= end && k.current.is_none_or(|(ct, _)| t >= ct) {
                k.current = Some((t, v));
            }
        }
        save(&r)
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}
