//! Change detectors per key through SQL against River's reference detections
//! (`tests/fixtures/detectors/make_detectors.py`): Page–Hinkley and ADWIN on two keys with mean
//! shifts, DDM on an error stream; every detection at the same reading with the same statistic.
use std::path::PathBuf;

use weir_tests::{sort_by_key_and_time, sql_rows};

#[test]
fn detectors_fire_where_river_does() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join("detectors");
    let expected: Vec<Vec<String>> = std::fs::read_to_string(dir.join("expected.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    for (detector, keys) in [
        ("page_hinkley", "'a', 'b'"),
        ("adwin", "'a', 'b'"),
        ("ddm", "'e'"),
    ] {
        let sql = format!(
            "CREATE SOURCE s (sensor TEXT, ts BIGINT, value DOUBLE)
               WITH (connector = 'file', path = '{d}/streams.csv', event_time = 'ts', watermark_delay = '10s');
             SELECT sensor, ts, statistic FROM (
               SELECT sensor, ts, {detector}(value) OVER (PARTITION BY sensor ORDER BY ts) AS statistic
               FROM s WHERE sensor IN ({keys})
             ) WHERE statistic IS NOT NULL;",
            d = dir.display()
        );
        let want: Vec<&Vec<String>> = expected.iter().filter(|e| e[2] == detector).collect();
        assert!(!want.is_empty());
        for workers in [1, 2] {
            let mut got = sql_rows(&sql, workers);
            sort_by_key_and_time(&mut got);
            assert_eq!(got.len(), want.len(), "{detector}: {got:?}");
            for (g, e) in got.iter().zip(&want) {
                assert_eq!((&g[0], &g[1]), (&e[0], &e[1]), "{detector}");
                let (have, w): (f64, f64) = (g[2].parse().unwrap(), e[3].parse().unwrap());
                assert!(
                    (have - w).abs() <= 1e-9 * w.abs(),
                    "{detector}: {g:?} vs River {e:?}"
                );
            }
        }
    }
}
