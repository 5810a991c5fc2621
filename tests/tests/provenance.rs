//! Record provenance of a windowed aggregate over a file source: every output row's
//! `provenance` names its input lines; reading them back (`weir trace`) gives exactly the rows
//! of that sensor and window, and recomputing the aggregate from them gives the same values.
//! Rows arrive out of order, and a malformed line (a dead letter) is never named.
use std::collections::BTreeSet;

use crate::correctness::Lcg;
use weir_tests::{run_weir_ok, scratch, weir_ok};

#[test]
fn provenance_recovers_the_rows_behind_each_window() {
    let dir = scratch("provenance");
    let mut rng = Lcg(5);
    let mut csv = String::from("sensor_id,ts,v\n");
    let mut good = BTreeSet::new();
    for i in 0..3000u64 {
        let line = i + 2;
        if i == 1234 {
            csv.push_str("s1,not-a-number,3\n");
            continue;
        }
        let ts = i as i64 * 7 + (rng.next() % 300) as i64;
        csv.push_str(&format!(
            "s{},{ts},{}\n",
            rng.next() % 10,
            (rng.next() % 1000) as f64 / 10.0
        ));
        good.insert(line);
    }
    std::fs::write(dir.join("r.csv"), &csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    for workers in ["1", "2"] {
        let out = dir.join(format!("w{workers}.jsonl"));
        let script = dir.join(format!("p{workers}.sql"));
        std::fs::write(
            &script,
            format!(
                "CREATE SOURCE readings (sensor_id TEXT, ts BIGINT, v DOUBLE)
                   WITH (connector = 'file', path = '{d}/r.csv', event_time = 'ts', watermark_delay = '1s',
                         dead_letter = '{d}/dead{workers}.jsonl');
                 CREATE SINK out WITH (connector = 'file', path = '{o}', format = 'json');
                 CREATE PIPELINE per_second WITH (provenance = 'true') AS INSERT INTO out
                 SELECT sensor_id, window_start, count(*) AS n, sum(v) AS total
                 FROM readings GROUP BY sensor_id, tumble(ts, INTERVAL '1' SECOND);",
                d = dir.display(),
                o = out.display()
            ),
        )
        .unwrap();
        run_weir_ok(&script, &["--workers", workers]);
        let plan = weir_queries::compile(&std::fs::read_to_string(&script).unwrap()).unwrap();
        let mut covered = BTreeSet::new();
        let rows: Vec<serde_json::Value> = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(rows.len() > 100);
        for r in &rows {
            let p = r["provenance"].as_str().unwrap();
            let traced = weir_engine::trace::trace(&plan, p).unwrap();
            assert_eq!(traced[0], "sensor_id,ts,v");
            let (start, sensor) = (
                r["window_start"].as_i64().unwrap(),
                r["sensor_id"].as_str().unwrap(),
            );
            let mut sum = 0.0;
            for t in &traced[1..] {
                let f: Vec<&str> = t.split(',').collect();
                assert_eq!(f[0], sensor, "{p}");
                let ts: i64 = f[1].parse().unwrap();
                assert!(ts >= start && ts < start + 1000, "{p}: {t}");
                sum += f[2].parse::<f64>().unwrap();
            }
            let v: serde_json::Value = serde_json::from_str(p).unwrap();
            for r in v["lines"].as_array().unwrap() {
                for n in r[0].as_u64().unwrap()..=r[1].as_u64().unwrap() {
                    assert!(covered.insert(n), "line {n} in two windows");
                    assert!(lines[n as usize - 1].starts_with(&format!("{sensor},")));
                }
            }
            assert_eq!(traced.len() - 1, r["n"].as_u64().unwrap() as usize, "{p}");
            assert!((sum - r["total"].as_f64().unwrap()).abs() < 1e-6, "{p}");
        }
        assert_eq!(covered, good, "every good line in exactly one window");
    }
    // The CLI form.
    let rows = std::fs::read_to_string(dir.join("w1.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(rows.lines().next().unwrap()).unwrap();
    let text = weir_ok(&[
        "trace",
        dir.join("p1.sql").to_str().unwrap(),
        first["provenance"].as_str().unwrap(),
    ]);
    assert_eq!(
        text.lines().count() as u64,
        first["n"].as_u64().unwrap() + 1
    );
}
