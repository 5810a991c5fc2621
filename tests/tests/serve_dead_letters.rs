//! The newest dead letters of a served pipeline over REST (`GET
//! /api/v1/pipelines/{name}/dead_letters`): a file with bad lines among good ones, read by a
//! checkpointed pipeline (so its run is a chain of jobs) with no dead-letter output declared —
//! each bad line is shown once with its line number, its reason and its text, the count agrees
//! with the status and `/metrics`, `limit` gives the newest, and the good rows all arrive.
use std::collections::BTreeSet;
use std::fmt::Write;
use std::time::Duration;

use serde_json::json;
use weir_tests::scratch;
use weir_tests::serve::WeirServer;

#[test]
fn bad_lines_are_shown_with_their_line_and_reason() {
    let dir = scratch("serve-dead");
    let input = dir.join("readings.csv");
    let mut text = String::from("sensor_id,ts,temperature\n");
    let mut bad_lines = BTreeSet::new();
    for i in 0..3000u32 {
        // Line numbers count the header as line 1.
        let line = i + 2;
        if i % 500 == 7 {
            let _ = writeln!(text, "s{},{},not-a-number-{line}", i % 3, 1_000 * i);
            bad_lines.insert(line);
        } else {
            let _ = writeln!(text, "s{},{},{}.5", i % 3, 1_000 * i, i % 40);
        }
    }
    std::fs::write(&input, text).expect("input");
    let out = dir.join("out.csv");
    let sql = format!(
        "CREATE SOURCE r (sensor_id TEXT, ts BIGINT, temperature DOUBLE)
           WITH (connector = 'file', path = '{}', format = 'csv', event_time = 'ts');
         CREATE SINK out WITH (connector = 'file', path = '{}', format = 'csv');
         CREATE PIPELINE p AS INSERT INTO out SELECT sensor_id, ts, temperature FROM r;",
        input.display(),
        out.display()
    );
    let s = WeirServer::start(&dir.join("state"), &["--checkpoint-every", "100ms"]);
    let body = json!({"name": "p", "sql": sql});
    assert_eq!(s.must("POST", "/api/v1/pipelines", Some(&body)).status, 201);
    s.wait_state("p", "finished", Duration::from_secs(60));
    let d = s
        .must("GET", "/api/v1/pipelines/p/dead_letters", None)
        .json();
    assert_eq!(d["total"].as_u64(), Some(bad_lines.len() as u64), "{d}");
    let letters = d["letters"].as_array().expect("letters");
    let mut seen = BTreeSet::new();
    for l in letters {
        let at = l["position"].as_str().unwrap_or("");
        let line: u32 = at
            .rsplit(':')
            .next()
            .and_then(|n| n.parse().ok())
            .expect(at);
        assert!(at.starts_with(&input.display().to_string()), "{l}");
        assert!(seen.insert(line), "shown twice: {l}");
        let payload = l["payload"].as_str().unwrap_or("");
        assert!(payload.ends_with(&format!("not-a-number-{line}")), "{l}");
        assert_eq!(l["source"], "r");
        assert!(!l["error"].as_str().unwrap_or("").is_empty(), "{l}");
    }
    assert_eq!(seen, bad_lines, "each bad line, with its line number");
    let st = s.status("p");
    assert_eq!(st["queries"][0]["dead_letter"].as_u64(), Some(6), "{st}");
    let metrics = s.get("/metrics").expect("metrics").text;
    assert!(
        metrics.contains("weir_dead_letters_total{pipeline=\"p\",query=\"p\"} 6"),
        "{metrics}"
    );
    let two = s
        .must("GET", "/api/v1/pipelines/p/dead_letters?limit=2", None)
        .json();
    let newest: Vec<&str> = two["letters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["position"].as_str())
        .collect();
    let all: Vec<&str> = letters
        .iter()
        .filter_map(|l| l["position"].as_str())
        .collect();
    assert_eq!(newest, all[all.len() - 2..], "the newest two");
    let r = s
        .get("/api/v1/pipelines/nope/dead_letters")
        .expect("answer");
    assert_eq!(r.status, 404);
    s.terminate();
    let rows = std::fs::read_to_string(&out)
        .expect("output")
        .lines()
        .count();
    assert_eq!(rows, 1 + 3000 - bad_lines.len(), "every good row once");
}
