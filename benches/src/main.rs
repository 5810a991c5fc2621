//! End-to-end benchmarks, run by hand with a release build (`cargo build --release -p
//! weir-engine -p weir-benches` first: the broker benches run the `weir` binary beside this one):
//!
//! `target/release/weir-bench windowed [ROWS] [WORKERS] [provenance]`
//! `target/release/weir-bench mqtt [MESSAGES] [QOS]` (needs mosquitto)
//! `target/release/weir-bench kafka [ROWS]` (needs Tansu)
//! `target/release/weir-bench lookup [ROWS] [MACHINES] [WORKERS]`
//! `target/release/weir-bench inference [ROWS] [BATCH] [none]` (`none`: without the model)
//! `target/release/weir-bench compressor [ROWS] [WORKERS] [drift]`
//! `target/release/weir-bench alerts [ALERTS]` (the alert store and the inbox with ALERTS
//! open alerts: see `alerts.rs`)
//!
//! `target/release/weir-bench serve-load [CALLS] [CONCURRENCY] [ROWS]` (API calls against `weir
//! serve` while it runs the windowed pipeline into a table sink: see `serve.rs`)
//!
//! `windowed`: ROWS readings (default 10 million) of 1000 sensors with ms timestamps and up to
//! 200 ms of jitter, written once to `bench-data/readings-ROWS.csv`, then a 1-second tumbling
//! count/avg/min/max per sensor from that file to a CSV file. Prints rows/s (input rows over the
//! run's wall time), output rows and the process's peak RSS.
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use weir_engine::{run_sql, RunOptions};

mod alerts;
mod brokers;
mod kill;
mod lookup;
mod models;
mod serve;

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn generate(path: &PathBuf, rows: u64) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(path.parent().unwrap_or(std::path::Path::new(".")))?;
    let tmp = path.with_extension("tmp");
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
    writeln!(w, "sensor_id,ts,temperature")?;
    let mut x: u64 = 2024;
    let base = 1_700_000_000_000i64;
    for i in 0..rows {
        let tick = (i / 1000) as i64;
        let s = i % 1000;
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let jitter = ((x >> 33) % 200) as i64;
        let temp = 20.0 + ((x >> 13) % 60_000) as f64 / 1000.0;
        writeln!(w, "s{s:04},{},{temp}", base + tick * 1000 + jitter)?;
    }
    w.flush()?;
    std::fs::rename(tmp, path)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map(String::as_str).unwrap_or("windowed");
    match which {
        "windowed" => {}
        "mqtt" => {
            let n = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200_000);
            let qos = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
            brokers::mqtt(n, qos, args.get(4).map(String::as_str) == Some("archive"));
            return;
        }
        "lookup" => {
            let n = |i: usize, d: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
            lookup::lookup(n(2, 10_000_000), n(3, 10_000), n(4, 1) as usize);
            return;
        }
        "inference" => {
            let n = |i: usize, d: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
            std::fs::create_dir_all("bench-data").ok();
            models::inference(
                n(2, 2_000_000),
                n(3, 1024),
                args.get(4).map(String::as_str) != Some("none"),
            );
            return;
        }
        "compressor" => {
            let n = |i: usize, d: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
            models::compressor(
                n(2, 2_000_000),
                n(3, 1) as usize,
                args.get(4).map(String::as_str) == Some("drift"),
            );
            return;
        }
        "kill-mqtt" | "kill-kafka" => {
            let n = |i: usize, d: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
            kill::run(which, n(2, 100) as usize, n(3, 0));
            return;
        }
        "alerts" => {
            alerts::run(args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000));
            return;
        }
        "serve-load" => {
            let n = |i: usize, d: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
            let rows = n(4, 10_000_000);
            let input = PathBuf::from(format!("bench-data/readings-{rows}.csv"));
            if let Err(e) = generate(&input, rows) {
                eprintln!("generating {}: {e}", input.display());
                std::process::exit(1);
            }
            serve::run(n(2, 1000) as usize, n(3, 50) as usize, &input);
            return;
        }
        "kafka" => {
            brokers::kafka(
                args.get(2)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(1_000_000),
            );
            return;
        }
        _ => {
            eprintln!("usage: weir-bench windowed [ROWS] [WORKERS] [provenance] | mqtt [MESSAGES] [QOS] [archive] | kafka [ROWS] | kill-mqtt [KILLS] [MESSAGES] | kill-kafka [KILLS] [ROWS] | lookup [ROWS] [MACHINES] [WORKERS] | inference [ROWS] [BATCH] [none] | compressor [ROWS] [WORKERS] [drift] | serve-load [CALLS] [CONCURRENCY] [ROWS] | alerts [ALERTS]");
            std::process::exit(2);
        }
    }
    let rows: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let workers: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let provenance = args.get(4).map(String::as_str) == Some("provenance");
    let input = PathBuf::from(format!("bench-data/readings-{rows}.csv"));
    let t = Instant::now();
    if let Err(e) = generate(&input, rows) {
        eprintln!("generating {}: {e}", input.display());
        std::process::exit(1);
    }
    eprintln!(
        "input {} ready in {:.1}s",
        input.display(),
        t.elapsed().as_secs_f64()
    );
    let out = PathBuf::from("bench-data/out.csv");
    let sql = format!(
        "CREATE SOURCE readings (sensor_id TEXT, ts BIGINT, temperature DOUBLE)
           WITH (connector = 'file', path = '{}', event_time = 'ts', watermark_delay = '250ms');
         CREATE SINK out WITH (connector = 'file', path = '{}', format = 'csv');
         CREATE PIPELINE per_second {with} AS INSERT INTO out
         SELECT sensor_id, window_start, count(*) AS n, avg(temperature) AS avg_t,
                min(temperature) AS min_t, max(temperature) AS max_t
         FROM readings GROUP BY sensor_id, tumble(ts, INTERVAL '1' SECOND);",
        input.display(),
        out.display(),
        with = if provenance {
            "WITH (provenance = 'true')"
        } else {
            ""
        },
    );
    match run_sql(
        &sql,
        &RunOptions {
            workers,
            progress: None,
            cluster: None,
            control: None,
            lineage: None,
            ..RunOptions::default()
        },
    ) {
        Ok(report) => {
            let p = &report.pipelines[0];
            let secs = report.elapsed.as_secs_f64();
            println!(
                "windowed{}: rows {} workers {} elapsed {:.2}s rows/s {:.0} output rows {} late {} peak RSS {:.0} MB",
                if provenance { " with provenance" } else { "" },
                p.rows_in,
                workers,
                secs,
                p.rows_in as f64 / secs,
                p.rows_out,
                p.late,
                peak_rss_mb()
            );
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
