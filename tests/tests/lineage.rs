//! Plan lineage (`weir lineage`): for a script with a lookup join, a window, CASE, features and
//! `predict`, every sink column's sources, models and kind, compared exactly.
use std::process::Command;

use weir_tests::{scratch, weir_bin};

#[test]
fn plan_lineage_is_exact() {
    let dir = scratch("lineage");
    let models = format!("{}/fixtures/models", env!("CARGO_MANIFEST_DIR"));
    let script = dir.join("l.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE SOURCE readings (machine_id TEXT, ts BIGINT, temp DOUBLE, vib DOUBLE, pres DOUBLE)
               WITH (connector = 'file', path = 'r.csv', event_time = 'ts');
             CREATE TABLE machines (machine_id TEXT, line TEXT, rated DOUBLE, PRIMARY KEY (machine_id))
               WITH (connector = 'file', path = 'm.csv');
             CREATE MODEL risk FROM '{models}/linear.onnx' WITH (version = 'v1');
             CREATE MODEL risk FROM '{models}/linear_v2.onnx' WITH (version = 'v2');
             CREATE SINK enriched WITH (connector = 'stdout');
             CREATE SINK windows WITH (connector = 'stdout');
             CREATE PIPELINE enrich AS INSERT INTO enriched
             SELECT r.machine_id, r.ts, m.line,
                    CASE WHEN r.temp > m.rated THEN 'hot' ELSE 'ok' END AS state,
                    predict('risk', r.temp, r.vib, r.pres, 0.0) AS risk,
                    predict_version('risk', 'v2', r.temp, r.vib, r.pres, 0.0) AS challenger
             FROM readings r JOIN machines m ON r.machine_id = m.machine_id;
             CREATE PIPELINE per_minute AS INSERT INTO windows
             SELECT machine_id, window_start, max(temp) AS max_temp, avg(temp * vib) AS load
             FROM readings GROUP BY machine_id, tumble(ts, INTERVAL '1' MINUTE);"
        ),
    )
    .unwrap();
    let out = Command::new(weir_bin())
        .args(["lineage", script.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let got: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(
        got,
        vec![
            "enrich | enriched.machine_id | direct | readings.machine_id | ",
            "enrich | enriched.ts | direct | readings.ts | ",
            "enrich | enriched.line | direct | machines.line | ",
            "enrich | enriched.state | transformed | machines.rated, readings.temp | ",
            "enrich | enriched.risk | transformed | readings.pres, readings.temp, readings.vib | risk@v1, risk@v2",
            "enrich | enriched.challenger | transformed | readings.pres, readings.temp, readings.vib | risk@v2",
            "per_minute | windows.machine_id | direct | readings.machine_id | ",
            "per_minute | windows.window_start | transformed | readings.ts | ",
            "per_minute | windows.max_temp | transformed | readings.temp | ",
            "per_minute | windows.load | transformed | readings.temp, readings.vib | ",
        ]
    );
    let dot = Command::new(weir_bin())
        .args(["lineage", script.to_str().unwrap(), "--dot"])
        .output()
        .unwrap();
    let dot = String::from_utf8_lossy(&dot.stdout);
    assert!(dot.starts_with("digraph lineage {"), "{dot}");
    assert!(
        dot.contains("\"machines.line\" -> \"enriched.line\" [style=bold];"),
        "{dot}"
    );
    assert!(
        dot.contains("\"risk@v2\" -> \"enriched.challenger\" [style=dashed];"),
        "{dot}"
    );
}
