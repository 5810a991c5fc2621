//! Lookup-join benchmark: ROWS readings (default 10 million) of MACHINES machines (default
//! 10 000), ms timestamps with up to 200 ms of jitter, joined as of each reading's event time
//! with a machine table of MACHINES rows (every machine once at time 0, a tenth of them updated
//! halfway through), every joined row written to a CSV file. Prints rows/s and peak RSS.
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn generate(readings: &Path, table: &Path, rows: u64, machines: u64) -> std::io::Result<()> {
    std::fs::create_dir_all(readings.parent().unwrap_or(Path::new(".")))?;
    let span = rows / machines.max(1);
    let base = 1_700_000_000_000i64;
    let mut t = BufWriter::new(std::fs::File::create(table)?);
    writeln!(t, "machine_id,line,rated,valid_from")?;
    for m in 0..machines {
        writeln!(t, "m{m:05},L{},{},{base}", m % 20, 60 + m % 30)?;
    }
    for m in (0..machines).step_by(10) {
        writeln!(
            t,
            "m{m:05},L{},{},{}",
            (m + 1) % 20,
            55 + m % 30,
            base + (span as i64 / 2) * 1000
        )?;
    }
    t.flush()?;
    if readings.exists() {
        return Ok(());
    }
    let tmp = readings.with_extension("tmp");
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
    writeln!(w, "machine_id,ts,temperature")?;
    let mut x: u64 = 2024;
    for i in 0..rows {
        let tick = (i / machines) as i64;
        let m = i % machines;
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let jitter = ((x >> 33) % 200) as i64;
        let temp = 20.0 + ((x >> 13) % 60_000) as f64 / 1000.0;
        writeln!(w, "m{m:05},{},{temp}", base + tick * 1000 + jitter)?;
    }
    w.flush()?;
    std::fs::rename(tmp, readings)
}

/// Runs the benchmark.
pub fn lookup(rows: u64, machines: u64, workers: usize) {
    let readings = PathBuf::from(format!("bench-data/machine-readings-{rows}-{machines}.csv"));
    let table = PathBuf::from(format!("bench-data/machines-{machines}.csv"));
    let t = Instant::now();
    if let Err(e) = generate(&readings, &table, rows, machines) {
        eprintln!("generating {}: {e}", readings.display());
        std::process::exit(1);
    }
    eprintln!("input ready in {:.1}s", t.elapsed().as_secs_f64());
    let sql = format!(
        "CREATE TABLE machines (machine_id TEXT, line TEXT, rated DOUBLE, valid_from BIGINT, PRIMARY KEY (machine_id))
           WITH (connector = 'file', path = '{}', event_time = 'valid_from');
         CREATE SOURCE readings (machine_id TEXT, ts BIGINT, temperature DOUBLE)
           WITH (connector = 'file', path = '{}', event_time = 'ts', watermark_delay = '250ms');
         CREATE SINK out WITH (connector = 'file', path = 'bench-data/lookup-out.csv', format = 'csv');
         CREATE PIPELINE enrich AS INSERT INTO out
         SELECT r.machine_id, r.ts, r.temperature, m.line, m.rated, r.temperature > m.rated AS over
         FROM readings r JOIN machines m ON r.machine_id = m.machine_id;",
        table.display(),
        readings.display(),
    );
    super::models::report(&format!("lookup: machines {machines}"), &sql, workers);
}
