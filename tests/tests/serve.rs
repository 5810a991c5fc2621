//! `weir serve` through its REST API, with a real HTTP client against the real binary:
//! pipelines created from SQL and checked against a direct computation; compile errors with
//! their position; the OpenAPI document covering every route; `/metrics` in Prometheus'
//! format (checked by `promtool`) with the values the pipelines report; stop, start, and a
//! server killed with SIGKILL and started again, whose pipeline continues from its checkpoint
//! to exactly the output of an uninterrupted run; secrets that never come back out.
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use weir_tests::kill::sorted_lines;
use weir_tests::serve::WeirServer;
use weir_tests::{scratch, WeirProcess};

const MIN: Duration = Duration::from_secs(60);

/// 3,000 readings of 5 sensors over 60 s; the expected (sensor, window start) → (count, min,
/// max) of 1 s windows, computed directly.
fn readings(path: &Path) -> BTreeMap<(String, i64), (u64, i64, i64)> {
    let mut csv = String::from("sensor_id,ts,v\n");
    let mut want = BTreeMap::new();
    for i in 0..3000i64 {
        let (s, ts, v) = (format!("s{}", i % 5), i * 20, (i * 37) % 101);
        csv.push_str(&format!("{s},{ts},{v}\n"));
        let e = want
            .entry((s, ts - ts % 1000))
            .or_insert((0, i64::MAX, i64::MIN));
        e.0 += 1;
        e.1 = e.1.min(v);
        e.2 = e.2.max(v);
    }
    std::fs::write(path, csv).expect("input");
    want
}

fn windows_sql(input: &Path, out: &Path) -> String {
    format!(
        "CREATE SOURCE r (sensor_id TEXT, ts BIGINT, v BIGINT)
           WITH (connector = 'file', path = '{}', event_time = 'ts', watermark_delay = '100ms');
         CREATE SINK out WITH (connector = 'file', path = '{}', format = 'csv');
         CREATE PIPELINE per_second AS INSERT INTO out
         SELECT sensor_id, window_start, count(*) AS n, min(v) AS lo, max(v) AS hi
         FROM r GROUP BY sensor_id, tumble(ts, INTERVAL '1' SECOND);",
        input.display(),
        out.display()
    )
}

fn parse_windows(path: &Path) -> BTreeMap<(String, i64), (u64, i64, i64)> {
    let text = std::fs::read_to_string(path).expect("output");
    let mut got = BTreeMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let key = (f[0].to_string(), f[1].parse::<i64>().expect("window_start"));
        let v = (
            f[2].parse().unwrap(),
            f[3].parse().unwrap(),
            f[4].parse().unwrap(),
        );
        assert!(got.insert(key, v).is_none(), "repeated window: {line}");
    }
    got
}

/// Every path of the OpenAPI document answers each method it lists (no 404 for a missing
/// route, no 405), with `{name}` an existing pipeline.
fn openapi_covers_routes(s: &WeirServer, name: &str) {
    let doc = s.must("GET", "/api/v1/openapi.json", None).json();
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 12, "{paths:?}");
    for (path, item) in paths {
        for method in item.as_object().expect("methods").keys() {
            // Stopping or deleting here would end the pipeline the rest of the test reads.
            if matches!(method.as_str(), "delete" | "post") && path.contains('{') {
                continue;
            }
            let body = json!({"name": "bad name!", "sql": "x"});
            let path = path.replace("{name}", name);
            let r = s.must(&method.to_uppercase(), &path, Some(&body));
            assert!(![404, 405].contains(&r.status), "{method} {path}: {r:?}");
        }
    }
}

/// `/metrics` passes `promtool check metrics` (Debian's `prometheus` package).
pub(crate) fn promtool_check(text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; .ci/run installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("writing to promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of the sample of `metric` whose labels include `labels`.
fn sample(text: &str, metric: &str, labels: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) && l.contains(labels))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn rest_api_runs_validates_and_describes_pipelines() {
    let dir = scratch("serve-api");
    let (input, out) = (dir.join("readings.csv"), dir.join("out.csv"));
    let want = readings(&input);
    let s = WeirServer::start(&dir.join("state"), &[]);
    assert_eq!(s.must("GET", "/healthz", None).json()["status"], "ok");

    // A compile error names its line and column.
    let bad = "CREATE SOURCE r (a BIGINT) WITH (connector = 'file', path = 'x');\nCREATE PIPELINE p AS INSERT INTO nowhere SELECT a FROM r;";
    let r = s.must(
        "POST",
        "/api/v1/pipelines/validate",
        Some(&json!({"sql": bad})),
    );
    assert_eq!(r.status, 422, "{r:?}");
    let e = r.json();
    assert_eq!(e["error"], "sql");
    assert_eq!(e["line"], 2, "{e}");
    assert!(e["column"].as_u64().unwrap_or(0) > 0, "{e}");
    let r = s.must(
        "POST",
        "/api/v1/pipelines",
        Some(&json!({"name": "p", "sql": bad})),
    );
    assert_eq!(r.status, 422, "{r:?}");
    let r = s.must(
        "POST",
        "/api/v1/pipelines",
        Some(&json!({"name": "no good", "sql": "x"})),
    );
    assert_eq!(r.status, 400, "{r:?}");
    let r = s.must("POST", "/api/v1/pipelines", Some(&json!({"nom": 1})));
    assert_eq!(r.status, 400, "{r:?}");
    // Expressions nested past the limit are refused with a position; they used to overflow
    // the stack and abort the server (20,000 terms over REST, 400 in a pipeline).
    for (path, sql) in [
        (
            "/api/v1/query",
            format!("SELECT {} AS x", vec!["1"; 20_000].join(" + ")),
        ),
        (
            "/api/v1/query",
            format!("SELECT {} AS x", vec!["1"; 400].join(" + ")),
        ),
        (
            "/api/v1/pipelines/validate",
            format!(
                "CREATE SOURCE r (a BIGINT) WITH (connector = 'file', path = 'x');\n\
                 CREATE SINK o WITH (connector = 'stdout');\n\
                 CREATE PIPELINE p AS INSERT INTO o SELECT {} FROM r;",
                vec!["a"; 400].join(" + ")
            ),
        ),
    ] {
        let r = s.must("POST", path, Some(&json!({ "sql": sql })));
        assert_eq!(
            r.status,
            422,
            "{path}: {}",
            &r.text[..r.text.len().min(300)]
        );
        let e = r.json();
        assert!(e["column"].as_u64() > Some(0), "{e}");
        assert!(
            e["hint"].as_str().is_some_and(|h| h.contains("split")),
            "{e}"
        );
    }
    assert_eq!(s.must("GET", "/healthz", None).status, 200);
    assert_eq!(
        s.must("GET", "/api/v1/pipelines/absent/status", None)
            .status,
        404
    );

    let sql = windows_sql(&input, &out);
    let v = s
        .must(
            "POST",
            "/api/v1/pipelines/validate",
            Some(&json!({"sql": sql})),
        )
        .json();
    assert_eq!(v["pipelines"], json!(["per_second"]), "{v}");
    let r = s.must(
        "POST",
        "/api/v1/pipelines",
        Some(&json!({"name": "windows", "sql": sql})),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let r = s.must(
        "POST",
        "/api/v1/pipelines",
        Some(&json!({"name": "windows", "sql": sql})),
    );
    assert_eq!(r.status, 409, "{r:?}");
    s.wait_state("windows", "finished", MIN);
    assert_eq!(parse_windows(&out), want);

    let st = s.status("windows");
    let q = &st["queries"][0];
    assert_eq!(
        (q["rows_in"].as_u64(), q["rows_out"].as_u64()),
        (Some(3000), Some(want.len() as u64)),
        "{st}"
    );
    // The watermark: the last event time (2999 × 20 ms) less the 100 ms delay; its lag is
    // the wall clock's distance from that 1970 time.
    assert_eq!(q["watermark_ms"].as_i64(), Some(59_880), "{st}");
    let lag = q["watermark_lag_ms"].as_i64().unwrap_or(0);
    assert!(lag > 1_700_000_000_000, "{st}");
    // Per operator: the first takes every row, each takes what the one before gave, and the
    // window aggregate gives one row per sensor-second.
    let ops = q["operators"].as_array().expect("operators");
    assert_eq!(ops[0]["rows_in"].as_u64(), Some(3000), "{st}");
    for w in ops.windows(2) {
        assert_eq!(w[1]["rows_in"], w[0]["rows_out"], "{st}");
    }
    let agg = ops
        .iter()
        .find(|o| o["kind"] == "window_aggregate")
        .expect("aggregate");
    assert_eq!(agg["rows_out"].as_u64(), Some(want.len() as u64), "{st}");
    assert!(
        agg["node"].as_str().unwrap_or("").starts_with("windows/"),
        "{st}"
    );
    assert_eq!(
        ops.last().map(|o| o["rows_out"].clone()),
        Some(q["rows_out"].clone()),
        "{st}"
    );
    let list = s.must("GET", "/api/v1/pipelines", None).json();
    assert_eq!(list[0]["name"], "windows", "{list}");
    let one = s.must("GET", "/api/v1/pipelines/windows", None).json();
    assert!(
        one["sql"].as_str().unwrap_or("").contains("tumble"),
        "{one}"
    );
    let g = s
        .must("GET", "/api/v1/pipelines/windows/graph", None)
        .json();
    assert!(
        g["text"].as_str().unwrap_or("").contains("per_second"),
        "{g}"
    );
    let l = s
        .must("GET", "/api/v1/pipelines/windows/lineage", None)
        .json();
    assert!(
        l["columns"].as_array().is_some_and(|a| !a.is_empty()),
        "{l}"
    );
    openapi_covers_routes(&s, "windows");

    let m = s.must("GET", "/metrics", None).text;
    promtool_check(&m);
    let l = "pipeline=\"windows\",query=\"per_second\"";
    assert_eq!(sample(&m, "weir_rows_in_total", l), Some(3000.0), "{m}");
    assert_eq!(sample(&m, "weir_watermark_seconds", l), Some(59.88), "{m}");
    let node = agg["node"].as_str().unwrap_or("");
    let lo = format!("{l},operator=\"{node}\"");
    let out = sample(&m, "weir_operator_rows_out_total", &lo);
    assert_eq!(out, Some(want.len() as f64), "{m}");
    assert_eq!(
        sample(&m, "weir_rows_out_total", l),
        Some(want.len() as f64),
        "{m}"
    );
    // Time blocked in the sink's writes: some, and less than the whole run took.
    let blocked = sample(&m, "weir_sink_blocked_seconds_total", l).expect("blocked time");
    assert!(blocked > 0.0 && blocked < 60.0, "{blocked}");
    assert_eq!(
        sample(&m, "weir_pipeline_up", "pipeline=\"windows\""),
        Some(0.0),
        "{m}"
    );

    assert_eq!(
        s.must("DELETE", "/api/v1/pipelines/windows", None).status,
        204
    );
    assert_eq!(s.must("GET", "/api/v1/pipelines", None).json(), json!([]));
    s.terminate();
}

/// A rate-limited generator → 1 s windows → CSV.
fn generated_sql(out: &Path, rate: u32) -> String {
    format!(
        "CREATE SOURCE g (sensor_id TEXT, ts BIGINT, temperature DOUBLE)
           WITH (connector = 'generator', sensors = '6', rows = '36000', rate = '{rate}',
                 batch = '64', event_time = 'ts', watermark_delay = '200ms');
         CREATE SINK out WITH (connector = 'file', path = '{}', format = 'csv');
         CREATE PIPELINE p AS INSERT INTO out
         SELECT sensor_id, window_start, count(*) AS n, max(temperature) AS hi
         FROM g GROUP BY sensor_id, tumble(ts, INTERVAL '1' SECOND);",
        out.display()
    )
}

fn rows_out(st: &Value) -> u64 {
    st["queries"][0]["rows_out"].as_u64().unwrap_or(0)
}

#[test]
fn stop_start_and_a_killed_server_continue_from_checkpoints() {
    let dir = scratch("serve-durable");
    let (want_out, want_sql) = (dir.join("want.csv"), dir.join("want.sql"));
    std::fs::write(&want_sql, generated_sql(&want_out, 0)).expect("script");
    WeirProcess::start(&want_sql, &[]).finish();
    let want = sorted_lines(&want_out);
    assert!(want.len() > 1000, "{} lines", want.len());

    let state = dir.join("state");
    let out = dir.join("out.csv");
    let s = WeirServer::start(&state, &["--checkpoint-every", "200ms"]);
    let body = json!({"name": "gen", "sql": generated_sql(&out, 6000)});
    assert_eq!(s.must("POST", "/api/v1/pipelines", Some(&body)).status, 201);
    let idle = json!({"name": "idle", "sql": generated_sql(&dir.join("idle.csv"), 10)});
    assert_eq!(s.must("POST", "/api/v1/pipelines", Some(&idle)).status, 201);
    s.wait_until("output", MIN, |s| rows_out(&s.status("gen")) > 0);

    // Stopped: at a checkpoint, and it stays stopped.
    let r = s.must("POST", "/api/v1/pipelines/gen/stop", None).json();
    assert_eq!(r["state"], "stopped", "{r}");
    let st = s.status("gen");
    assert!(st["checkpoints"]["taken"].as_u64() > Some(0), "{st}");
    let stopped_at = rows_out(&st);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(rows_out(&s.status("gen")), stopped_at);
    assert_eq!(
        s.must("POST", "/api/v1/pipelines/idle/stop", None).status,
        200
    );

    // Started again: from that checkpoint; then the server is killed mid-run.
    let r = s.must("POST", "/api/v1/pipelines/gen/start", None).json();
    assert!(
        ["starting", "running"].contains(&r["state"].as_str().unwrap_or("")),
        "{r}"
    );
    s.wait_until("a checkpoint after the start", MIN, |s| {
        s.status("gen")["checkpoints"]["taken"].as_u64() > Some(1)
    });
    let st = s.status("gen");
    assert!(
        st["checkpoints"]["restored_from"].as_u64().is_some(),
        "{st}"
    );
    assert_eq!(st["state"], "running", "{st}");
    s.kill();

    let s = WeirServer::start(&state, &["--checkpoint-every", "200ms"]);
    assert_eq!(s.status("idle")["state"], "stopped");
    s.wait_state("gen", "finished", MIN);
    let st = s.status("gen");
    assert!(
        st["checkpoints"]["restored_from"].as_u64().is_some(),
        "{st}"
    );
    let got = sorted_lines(&out);
    assert!(got == want, "{} lines, {} wanted", got.len(), want.len());
    s.terminate();

    // A finished pipeline is not run again by the next start.
    let s = WeirServer::start(&state, &[]);
    assert_eq!(s.status("gen")["state"], "finished");
    assert_eq!(sorted_lines(&out), want);
    s.terminate();
}

#[test]
fn secrets_never_come_back_out() {
    let dir = scratch("serve-secrets");
    let secret = "Zx9-very-secret-pw";
    let port = weir_tests::serve::free_port();
    let sql = format!(
        "CREATE SOURCE m (sensor_id TEXT, v DOUBLE)
           WITH (connector = 'mqtt', url = 'mqtt://127.0.0.1:{port}', topic = 'plant/#',
                 username = 'weir', password = '{secret}');
         CREATE SINK out WITH (connector = 'file', path = '{}', format = 'csv');
         CREATE PIPELINE p AS INSERT INTO out SELECT sensor_id, v FROM m;",
        dir.join("out.csv").display()
    );
    let s = WeirServer::start(&dir.join("state"), &[]);
    let r = s.must(
        "POST",
        "/api/v1/pipelines",
        Some(&json!({"name": "m", "sql": sql})),
    );
    assert_eq!(r.status, 201, "{r:?}");
    // Its broker is not there: it retries; give it time to log that.
    std::thread::sleep(Duration::from_secs(2));
    let mut seen = Vec::new();
    for path in [
        "/api/v1/pipelines",
        "/api/v1/pipelines/m",
        "/api/v1/pipelines/m/status",
        "/api/v1/pipelines/m/graph",
        "/api/v1/pipelines/m/lineage",
        "/metrics",
    ] {
        let r = s.must("GET", path, None);
        assert_eq!(r.status, 200, "{path}: {r:?}");
        seen.push((path, r.text));
    }
    let one = &seen[1].1;
    assert!(
        one.contains("username = 'weir'") && one.contains("****"),
        "{one}"
    );
    seen.push(("audit", s.must("GET", "/api/v1/audit", None).text));
    let log = s.terminate();
    seen.push(("stderr", log));
    for (path, text) in &seen {
        assert!(!text.contains(secret), "{path} shows the password: {text}");
    }
}

#[test]
fn plain_http_beyond_loopback_is_refused() {
    let dir = scratch("serve-insecure");
    let out = std::process::Command::new(weir_tests::weir_bin())
        .args(["serve", "--http", "0.0.0.0:0", "--state-dir"])
        .arg(dir.join("state"))
        .output()
        .expect("weir serve");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--insecure"), "{err}");
}
