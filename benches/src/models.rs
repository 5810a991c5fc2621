//! Model benchmarks (run from the repository root):
//! - `inference [ROWS] [BATCH] [none]`: the generator (BATCH rows per batch) → `predict` with
//!   the fixture MLP (`tests/fixtures/models/mlp.onnx`, 4 → 16 → 8 → 1) → a filter that keeps
//!   no row, so the time is generation plus inference; prints rows/s. With `none`, the same
//!   pipeline without the model (the baseline the inference cost is read against).
//! - `compressor [ROWS] [WORKERS] [drift]`: `examples/compressor_health.sql`'s pipeline (rolling
//!   features per sensor → logistic model → alerts) over ROWS generator readings, to a file;
//!   prints rows/s (readings of the stream over the wall time) and peak RSS. With `drift`, two
//!   monitoring pipelines run beside it on the same stream definition (each pipeline reads its
//!   own copy): the fleet's temperature PSI/Wasserstein/KS per minute against a baseline, and
//!   ADWIN per sensor.
use weir_engine::{run_sql, RunOptions};

/// Runs `sql` in this process; prints rows/s and peak RSS.
pub fn report(what: &str, sql: &str, workers: usize) {
    let opts = RunOptions {
        workers,
        ..RunOptions::default()
    };
    match run_sql(sql, &opts) {
        Ok(r) => {
            let p = &r.pipelines[0];
            let secs = r.elapsed.as_secs_f64();
            println!(
                "{what}: rows {} workers {workers} elapsed {:.2}s rows/s {:.0} output rows {} pipelines {} peak RSS {:.0} MB",
                p.rows_in,
                secs,
                p.rows_in as f64 / secs,
                p.rows_out,
                r.pipelines.len(),
                super::peak_rss_mb()
            );
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

/// MLP inference inside a pipeline at a given batch size.
pub fn inference(rows: u64, batch: u64, with_model: bool) {
    let predict = if with_model {
        "predict('mlp', temperature, vibration, pressure, 0.0)"
    } else {
        "temperature + vibration + pressure"
    };
    let sql = format!(
        "CREATE SOURCE readings (sensor_id TEXT, ts BIGINT, temperature DOUBLE, vibration DOUBLE, pressure DOUBLE)
           WITH (connector = 'generator', sensors = '1000', rows = '{rows}', batch = '{b}', event_time = 'ts');
         CREATE MODEL mlp FROM 'tests/fixtures/models/mlp.onnx' WITH (version = 'v1');
         CREATE SINK out WITH (connector = 'file', path = 'bench-data/inference-out.csv');
         CREATE PIPELINE score AS INSERT INTO out
         SELECT sensor_id, ts, risk FROM (SELECT sensor_id, ts, {predict} AS risk FROM readings) WHERE risk > 1000;",
        b = batch.max(1)
    );
    let what = if with_model { "mlp" } else { "no model" };
    report(&format!("inference ({what}) batch {batch}"), &sql, 1);
}

/// Drift monitoring added to the compressor pipeline: the fleet's temperature distribution per
/// minute against a baseline, and ADWIN per sensor.
const DRIFT: &str = "
CREATE BASELINE temperature_ref FROM 'examples/baselines/temperature.csv' COLUMN temperature;
CREATE SINK drift_out WITH (connector = 'file', path = 'bench-data/drift.jsonl', format = 'json');
CREATE PIPELINE drift AS INSERT INTO drift_out
SELECT window_start, psi(temperature, 'temperature_ref') AS psi,
       wasserstein(temperature, 'temperature_ref') AS wd, ks_pvalue(temperature, 'temperature_ref') AS ks_p
FROM readings GROUP BY tumble(ts, INTERVAL '1' MINUTE);
CREATE SINK change_out WITH (connector = 'file', path = 'bench-data/changes.jsonl', format = 'json');
CREATE PIPELINE changes AS INSERT INTO change_out
SELECT sensor_id, ts, w FROM (
  SELECT sensor_id, ts, adwin(temperature) OVER (PARTITION BY sensor_id ORDER BY ts) AS w FROM readings
) WHERE w IS NOT NULL;";

/// The compressor-health example end to end (with `drift`, plus drift monitoring).
pub fn compressor(rows: u64, workers: usize, drift: bool) {
    let example = std::fs::read_to_string("examples/compressor_health.sql").unwrap_or_else(|e| {
        eprintln!("run from the repository root: {e}");
        std::process::exit(1)
    });
    let sql = example
        .replace("rows = '200000'", &format!("rows = '{rows}'"))
        .replace("sensors = '200'", "sensors = '1000'")
        .replace(
            "CREATE SINK alerts WITH (connector = 'stdout', format = 'json');",
            "CREATE SINK alerts WITH (connector = 'file', path = 'bench-data/alerts.jsonl', format = 'json');",
        );
    std::fs::create_dir_all("bench-data").ok();
    if drift {
        report(
            "compressor + drift monitoring",
            &format!("{sql}\n{DRIFT}"),
            workers,
        );
    } else {
        report("compressor", &sql, workers);
    }
}
