//! Change detectors per key through SQL against River's reference detections
//! (`tests/fixtures/detectors/make_detectors.py`): Page–Hinkley on two keys with mean shifts,
//! DDM on an error stream; every detection at the same reading with the same statistic.
use std::path::PathBuf;

use weir_engine::{run_sql, RunOptions};
use weir_tests::rows;

#[test]
fn detectors_fire_where_river_does() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join("detectors");
    let sql = format!(
        "CREATE SOURCE s (sensor TEXT, ts BIGINT, value DOUBLE)
           WITH (connector = 'file', path = '{d}/streams.csv', event_time = 'ts', watermark_delay = '10s');
         SELECT sensor, ts, detector, statistic FROM (
           SELECT sensor, ts, CASE WHEN sensor = 'e' THEN 'ddm' ELSE 'page_hinkley' END AS detector,
                  CASE WHEN sensor = 'e' THEN d ELSE ph END AS statistic
           FROM (SELECT sensor, ts,
                        page_hinkley(value) OVER (PARTITION BY sensor ORDER BY ts) AS ph,
                        ddm(value) OVER (PARTITION BY sensor ORDER BY ts) AS d
                 FROM s)
         ) WHERE statistic IS NOT NULL;",
        d = dir.display()
    );
    let expected: Vec<Vec<String>> = std::fs::read_to_string(dir.join("expected.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
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
        got.sort_by(|a, b| {
            (&a[0], a[1].parse::<i64>().unwrap()).cmp(&(&b[0], b[1].parse::<i64>().unwrap()))
        });
        assert_eq!(got.len(), expected.len(), "{got:?}");
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(&g[..3], &e[..3]);
            let (have, want): (f64, f64) = (g[3].parse().unwrap(), e[3].parse().unwrap());
            assert!(
                (have - want).abs() <= 1e-9 * want.abs(),
                "{g:?} vs River {e:?}"
            );
        }
    }
}
