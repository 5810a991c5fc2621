//! The `weir` command: summaries with late and dead-letter counts, the dead-letter file, bad
//! SQL as a positioned error (exit code 1, no panic), and `explain`.
use std::process::Command;

use weir_tests::{run_weir, scratch, weir_bin};

fn data(name: &str) -> String {
    format!("{}/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn malformed_lines_are_dead_letters_and_counted() {
    let dir = scratch("deadletter");
    let dl = dir.join("dead.jsonl");
    let script = dir.join("p.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE SOURCE r (sensor_id TEXT, ts BIGINT, temp DOUBLE)
               WITH (connector = 'file', path = '{}', event_time = 'ts', dead_letter = '{}');
             CREATE SINK out WITH (connector = 'file', path = '{}');
             CREATE PIPELINE p AS INSERT INTO out
             SELECT sensor_id, count(*) AS n FROM r GROUP BY sensor_id, tumble(ts, INTERVAL '1' SECOND);",
            data("bad.csv"),
            dl.display(),
            dir.join("out.csv").display()
        ),
    )
    .unwrap();
    let run = Command::new(weir_bin())
        .args(["run", script.to_str().unwrap(), "--progress", "0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("rows in 3, rows out 2, late 0, dead-letter 2"),
        "{stderr}"
    );
    let dead = std::fs::read_to_string(&dl).unwrap();
    let lines: Vec<serde_json::Value> = dead
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0]["position"]
            .as_str()
            .unwrap()
            .ends_with("bad.csv:3"),
        "{dead}"
    );
    assert_eq!(lines[0]["payload"], "a,1100,not-a-number");
    assert!(
        lines[1]["position"]
            .as_str()
            .unwrap()
            .ends_with("bad.csv:5"),
        "{dead}"
    );
    assert_eq!(lines[1]["source"], "r");
    let out = std::fs::read_to_string(dir.join("out.csv")).unwrap();
    assert_eq!(out.lines().count(), 3, "{out}");
}

#[test]
fn late_rows_are_counted_in_the_summary() {
    let dir = scratch("late");
    let script = dir.join("p.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE SOURCE r (sensor_id TEXT, ts BIGINT, temp DOUBLE)
               WITH (connector = 'file', path = '{}', event_time = 'ts', watermark_delay = '1s');
             CREATE SINK out WITH (connector = 'stdout', format = 'csv');
             CREATE PIPELINE p AS INSERT INTO out
             SELECT sensor_id, window_start, count(*) AS n FROM r GROUP BY sensor_id, tumble(ts, INTERVAL '1' SECOND);",
            data("readings.csv")
        ),
    )
    .unwrap();
    for workers in ["1", "2"] {
        let run = Command::new(weir_bin())
            .args(["run", script.to_str().unwrap(), "--workers", workers])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{stderr}");
        assert!(
            stderr.contains("rows in 10, rows out 7, late 1, dead-letter 0"),
            "{stderr}"
        );
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(stdout.contains("a,1000,3"), "{stdout}");
    }
}

#[test]
fn bad_sql_is_a_positioned_error_not_a_panic() {
    let dir = scratch("badsql");
    let script = dir.join("p.sql");
    std::fs::write(
        &script,
        "CREATE SOURCE r (sensor_id TEXT, ts BIGINT)\n  WITH (connector = 'generator', rows = '10');\nSELECT sensor, count(*)\nFROM r GROUP BY sensor_id, tumble(ts, INTERVAL '1' SECOND);\n",
    )
    .unwrap();
    let run = run_weir(&script, &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("line 3, column 8: No field named sensor"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn unknown_connector_option_fails_cleanly() {
    let dir = scratch("badopt");
    let script = dir.join("p.sql");
    std::fs::write(
        &script,
        "CREATE SOURCE r (sensor_id TEXT, ts BIGINT) WITH (connector = 'generator', sensorz = '10', event_time = 'ts');\nCREATE SINK o WITH (connector = 'stdout');\nCREATE PIPELINE p AS INSERT INTO o SELECT * FROM r;\n",
    )
    .unwrap();
    let run = run_weir(&script, &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("connector option 'sensorz': unknown option for the generator connector"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn explain_prints_the_operator_graph() {
    let example = format!(
        "{}/../examples/generator_alerts.sql",
        env!("CARGO_MANIFEST_DIR")
    );
    let run = Command::new(weir_bin())
        .args(["explain", &example])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success());
    assert!(stdout.contains("pipeline compressor_watch"), "{stdout}");
    assert!(
        stdout.contains(
            "window_aggregate tumble(10000ms) group by [machine_id, window_start, window_end]"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("exchange by hash(machine_id)"), "{stdout}");
    let json = Command::new(weir_bin())
        .args(["explain", "--json", &example])
        .output()
        .unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        plan["pipelines"][0]["stages"][0]["op"]["op"],
        "assign_window"
    );
}

#[test]
fn example_pipeline_runs_on_the_generator() {
    let example = format!(
        "{}/../examples/generator_alerts.sql",
        env!("CARGO_MANIFEST_DIR")
    );
    let a = Command::new(weir_bin())
        .args(["run", &example, "--workers", "2"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&a.stderr);
    assert!(a.status.success(), "{stderr}");
    assert!(stderr.contains("rows in 200000"), "{stderr}");
    let b = Command::new(weir_bin())
        .args(["run", &example, "--workers", "1"])
        .output()
        .unwrap();
    let mut la: Vec<_> = String::from_utf8_lossy(&a.stdout)
        .lines()
        .map(String::from)
        .collect();
    let mut lb: Vec<_> = String::from_utf8_lossy(&b.stdout)
        .lines()
        .map(String::from)
        .collect();
    la.sort();
    lb.sort();
    assert!(!la.is_empty());
    assert_eq!(la, lb, "same alerts with 1 and 2 workers");
}

#[test]
fn every_example_compiles() {
    let dir = format!("{}/../examples", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().map(|x| x == "sql").unwrap_or(false) {
            // Examples are run from the repository root (their model paths are relative to it).
            let out = Command::new(weir_bin())
                .arg("explain")
                .arg(&path)
                .current_dir(format!("{}/..", env!("CARGO_MANIFEST_DIR")))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            n += 1;
        }
    }
    assert!(n >= 4, "examples found: {n}");
}

#[test]
fn compressor_example_alerts_carry_risk_and_model_version() {
    let out = Command::new(weir_bin())
        .args(["run", "examples/compressor_health.sql", "--progress", "0"])
        .current_dir(format!("{}/..", env!("CARGO_MANIFEST_DIR")))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("rows in 200000"), "{stderr}");
    let alerts: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!alerts.is_empty(), "{stderr}");
    for a in &alerts {
        assert!(a["risk"].as_f64().unwrap() >= 0.8, "{a}");
        assert_eq!(a["model_version"], "v1", "{a}");
        assert!(
            a["avg_temp"].as_f64().is_some() && a["max_vib"].as_f64().is_some(),
            "{a}"
        );
    }
}

/// A record without its event time (an empty CSV value, a JSON field missing or null) is a
/// dead letter with its line and the reason; every other row goes on, and the run succeeds.
#[test]
fn records_without_event_time_are_dead_letters() {
    let dir = scratch("no-event-time");
    let mut csv = String::from("sensor_id,ts,temp\n");
    let mut json = String::new();
    let mut missing = Vec::new();
    for i in 0..500u32 {
        let line = i + 2;
        if i % 97 == 5 {
            csv.push_str(&format!("s{},,{i}.5\n", i % 3));
            let ts = if i % 2 == 0 { "" } else { "\"ts\": null, " };
            json.push_str(&format!(
                "{{\"sensor_id\": \"s{}\", {ts}\"temp\": 1}}\n",
                i % 3
            ));
            missing.push(line);
        } else {
            csv.push_str(&format!("s{},{},{i}.5\n", i % 3, i * 10));
            json.push_str(&format!(
                "{{\"sensor_id\": \"s{}\", \"ts\": {}, \"temp\": 1}}\n",
                i % 3,
                i * 10
            ));
        }
    }
    std::fs::write(dir.join("r.csv"), csv).unwrap();
    std::fs::write(dir.join("r.jsonl"), json).unwrap();
    for (input, format, first_line) in [("r.csv", "csv", 0), ("r.jsonl", "json", 1)] {
        let dl = dir.join(format!("dead-{format}.jsonl"));
        let out = dir.join(format!("out-{format}.csv"));
        let script = dir.join(format!("p-{format}.sql"));
        std::fs::write(
            &script,
            format!(
                "CREATE SOURCE r (sensor_id TEXT, ts BIGINT, temp DOUBLE)
                   WITH (connector = 'file', path = '{}', format = '{format}', event_time = 'ts', dead_letter = '{}');
                 CREATE SINK out WITH (connector = 'file', path = '{}', format = 'csv');
                 CREATE PIPELINE p AS INSERT INTO out SELECT sensor_id, ts FROM r;",
                dir.join(input).display(),
                dl.display(),
                out.display()
            ),
        )
        .unwrap();
        let run = run_weir(&script, &[]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{format}: {stderr}");
        let good = 500 - missing.len();
        assert!(
            stderr.contains(&format!(
                "rows in {good}, rows out {good}, late 0, dead-letter {}",
                missing.len()
            )),
            "{format}: {stderr}"
        );
        let dead: Vec<serde_json::Value> = std::fs::read_to_string(&dl)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        // JSON lines have no header: line numbers are one less than the CSV's.
        let want: Vec<String> = missing
            .iter()
            .map(|l| format!("{input}:{}", l - first_line))
            .collect();
        let got: Vec<String> = dead
            .iter()
            .map(|d| {
                let p = d["position"].as_str().unwrap_or("");
                p.rsplit('/').next().unwrap_or("").to_string()
            })
            .collect();
        assert_eq!(got, want, "{format}");
        assert!(
            dead.iter()
                .all(|d| d["error"].as_str().unwrap_or("").contains("ts")),
            "{format}: the reason names the column: {dead:?}"
        );
        let rows = std::fs::read_to_string(&out).unwrap().lines().count() - 1;
        assert_eq!(rows, good, "{format}");
    }
}
