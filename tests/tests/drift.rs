//! Drift aggregates through SQL against reference values computed with numpy/scipy
//! (`tests/fixtures/drift/make_drift.py`): four 500-value windows (none, a mean shift, a wider
//! spread, a shift with a tail) against a 2000-value baseline, one tumbling window each.
use std::path::PathBuf;

use weir_tests::sql_rows;

#[test]
fn drift_statistics_match_scipy() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join("drift");
    let sql = format!(
        "CREATE BASELINE ref FROM '{d}/baseline.csv' COLUMN temperature;
         CREATE SOURCE w (window BIGINT, ts BIGINT, temperature DOUBLE)
           WITH (connector = 'file', path = '{d}/windows.csv', event_time = 'ts');
         SELECT window_start / 1000 AS k, psi(temperature, 'ref') AS psi, ks_stat(temperature, 'ref') AS ks,
                ks_pvalue(temperature, 'ref') AS p, wasserstein(temperature, 'ref') AS wd,
                js_distance(temperature, 'ref') AS js
         FROM w GROUP BY tumble(ts, INTERVAL '1' SECOND);",
        d = dir.display()
    );
    for workers in [1, 2] {
        let mut got = sql_rows(&sql, workers);
        got.sort();
        let expected: Vec<Vec<f64>> = std::fs::read_to_string(dir.join("expected.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
            .collect();
        assert_eq!(got.len(), 4);
        for (g, e) in got.iter().zip(&expected) {
            let g: Vec<f64> = g.iter().map(|v| v.parse().unwrap()).collect();
            assert_eq!(g[0], e[0]);
            for (i, name) in ["psi", "ks_stat", "ks_pvalue", "wasserstein", "js_distance"]
                .iter()
                .enumerate()
            {
                let (have, want) = (g[i + 1], e[i + 1]);
                // Relative 1e-9 (p-values go down to 1e-67), at least 1e-12 absolute.
                let tol = (1e-9 * want.abs()).max(1e-12);
                assert!(
                    (have - want).abs() <= tol,
                    "window {}: {name} {have} vs scipy {want}",
                    e[0]
                );
            }
        }
    }
}

#[test]
fn baseline_from_the_first_rows_of_an_unbounded_stream() {
    let dir = weir_tests::scratch("stream-baseline");
    // The first 500 generator readings, written to a file by a bounded run.
    let first = format!(
        "CREATE SOURCE g (sensor_id TEXT, ts BIGINT, temperature DOUBLE)
           WITH (connector = 'generator', sensors = '10', rows = '500', seed = '9', event_time = 'ts');
         CREATE SINK f WITH (connector = 'file', path = '{}/first.csv', format = 'csv');
         CREATE PIPELINE p AS INSERT INTO f SELECT temperature FROM g;",
        dir.display()
    );
    sql_rows(&first, 1);
    // The same readings as a baseline taken from an unbounded generator with LIMIT, and both
    // baselines compared with the same windows of a shifted stream.
    let sql = format!(
        "CREATE SOURCE live (sensor_id TEXT, ts BIGINT, temperature DOUBLE)
           WITH (connector = 'generator', sensors = '10', rows = '0', seed = '9', event_time = 'ts');
         CREATE BASELINE from_stream AS SELECT temperature FROM live LIMIT 500;
         CREATE BASELINE from_file FROM '{d}/first.csv' COLUMN temperature;
         CREATE SOURCE later (sensor_id TEXT, ts BIGINT, temperature DOUBLE)
           WITH (connector = 'generator', sensors = '10', rows = '3000', seed = '10', event_time = 'ts',
                 anomalies = 'level_shift:0.01');
         SELECT window_start, psi(temperature, 'from_stream') AS a, psi(temperature, 'from_file') AS b,
                wasserstein(temperature, 'from_stream') AS c, wasserstein(temperature, 'from_file') AS d
         FROM later GROUP BY tumble(ts, INTERVAL '1' MINUTE);",
        d = dir.display()
    );
    let got = sql_rows(&sql, 1);
    assert!(got.len() >= 5, "{got:?}");
    for r in &got {
        assert_eq!(r[1], r[2], "{r:?}");
        assert_eq!(r[3], r[4], "{r:?}");
    }
    assert!(got.iter().any(|r| r[1].parse::<f64>().unwrap() > 0.0));
    // With 2 workers the unbounded source stops as well.
    sql_rows(&sql, 2);
}
