//! Drift aggregates through SQL against reference values computed with numpy/scipy
//! (`tests/fixtures/drift/make_drift.py`): four 500-value windows (none, a mean shift, a wider
//! spread, a shift with a tail) against a 2000-value baseline, one tumbling window each.
use std::path::PathBuf;

use weir_engine::{run_sql, RunOptions};
use weir_tests::rows;

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
        let report = run_sql(
            &sql,
            &RunOptions {
                workers,
                ..RunOptions::default()
            },
        )
        .unwrap();
        let mut got = rows(&report.pipelines[0].results);
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
