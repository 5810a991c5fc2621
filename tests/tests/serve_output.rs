//! A pipeline's output as server-sent events (`GET /api/v1/pipelines/{name}/output`), read
//! with a real HTTP client while the pipeline runs: every row streamed is a row the same
//! generator gives in an uninterrupted `weir run`, with its sink and write time.
use std::collections::HashMap;
use std::io::BufRead;
use std::time::Duration;

use weir_tests::serve::{Auth, WeirServer};
use weir_tests::{scratch, WeirProcess};

fn source(rate: u32) -> String {
    format!(
        "CREATE SOURCE g (sensor_id TEXT, ts BIGINT, temperature DOUBLE)
           WITH (connector = 'generator', sensors = '3', rows = '30000', rate = '{rate}', event_time = 'ts');"
    )
}

#[test]
fn output_streams_rows_as_they_are_written() {
    let dir = scratch("serve-output");
    let want_out = dir.join("want.csv");
    let script = dir.join("want.sql");
    std::fs::write(
        &script,
        format!(
            "{} CREATE SINK out WITH (connector = 'file', path = '{}', format = 'csv');
             CREATE PIPELINE p AS INSERT INTO out SELECT sensor_id, ts, temperature FROM g;",
            source(0),
            want_out.display()
        ),
    )
    .expect("script");
    WeirProcess::start(&script, &[]).finish();
    let want: HashMap<(String, i64), String> = std::fs::read_to_string(&want_out)
        .expect("reference")
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            ((f[0].to_string(), f[1].parse().unwrap()), f[2].to_string())
        })
        .collect();

    let s = WeirServer::start(&dir.join("state"), &[]);
    let sql = format!(
        "{} CREATE SINK live WITH (connector = 'table', max_rows = '1000');
         CREATE PIPELINE p AS INSERT INTO live SELECT sensor_id, ts, temperature FROM g;",
        source(3000)
    );
    let r = s.must(
        "POST",
        "/api/v1/pipelines",
        Some(&serde_json::json!({"name": "live", "sql": sql})),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let auth = Auth::admin();
    let res = ureq::get(&format!("{}/api/v1/pipelines/live/output", s.base))
        .set("authorization", &auth.header_value().expect("auth"))
        .timeout(Duration::from_secs(30))
        .call()
        .expect("SSE");
    assert!(
        res.content_type().starts_with("text/event-stream"),
        "{}",
        res.content_type()
    );
    let mut rows = 0;
    let mut events = 0;
    for line in std::io::BufReader::new(res.into_reader()).lines() {
        let line = line.expect("line");
        if line == "event: row" {
            events += 1;
        }
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(data).expect("JSON row");
        let key = (
            v["sensor_id"].as_str().expect("sensor").to_string(),
            v["ts"].as_i64().expect("ts"),
        );
        let t = want
            .get(&key)
            .unwrap_or_else(|| panic!("{key:?} is not a generated row"));
        assert_eq!(t.parse::<f64>().ok(), v["temperature"].as_f64(), "{v}");
        assert_eq!(v["weir_sink"], "live");
        assert!(v["weir_ts"].as_u64() > Some(1_700_000_000_000), "{v}");
        rows += 1;
        if rows == 200 {
            break;
        }
    }
    assert_eq!((rows, events), (200, 200));
    // A pipeline without a table sink has no stream to give.
    let file_sql = format!(
        "{} CREATE SINK f WITH (connector = 'file', path = '{}', format = 'csv');
         CREATE PIPELINE p AS INSERT INTO f SELECT sensor_id FROM g;",
        source(10),
        dir.join("f.csv").display()
    );
    s.must(
        "POST",
        "/api/v1/pipelines",
        Some(&serde_json::json!({"name": "file", "sql": file_sql})),
    );
    assert_eq!(
        s.must("GET", "/api/v1/pipelines/file/output", None).status,
        409
    );
    s.terminate();
}
