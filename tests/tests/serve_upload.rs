//! A model version uploaded over REST (`PUT /api/v1/models/{model}/versions/{version}`) while a
//! checkpointed served pipeline runs on v1, then switched to: the file is checked (a file that
//! is not a model, or has another width, is refused with 422; a version that exists is 409),
//! stored in the state dir, and the run goes on at v2 through checkpoint cuts and a kill -9 of
//! the server. Every row is scored once, by the version it names; only an ML engineer uploads.
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde_json::json;
use weir_tests::serve::{Auth, WeirServer};
use weir_tests::{scratch, sql_rows};

/// A sample of `/metrics` for version `version` of `risk` (0 when not shown).
fn inference(s: &WeirServer, sample: &str, version: &str) -> f64 {
    let text = s.get("/metrics").expect("metrics").text;
    let want = format!("{sample}{{model=\"risk\",version=\"{version}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&want))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn upload(s: &WeirServer, who: &Auth, version: &str, bytes: &[u8]) -> u16 {
    let path = format!("/api/v1/models/risk/versions/{version}");
    s.put_bytes(who, &path, bytes).status
}

#[test]
fn an_uploaded_version_scores_after_the_switch_and_survives_kill_9() {
    let dir = scratch("serve-upload");
    let f = format!("{}/fixtures/models", env!("CARGO_MANIFEST_DIR"));
    let out = dir.join("scored.csv");
    let sql = format!(
        "CREATE SOURCE readings (sensor_id TEXT, seq BIGINT, ts BIGINT, temperature DOUBLE, vibration DOUBLE, pressure DOUBLE)
           WITH (connector = 'generator', sensors = '4', rows = '6000', rate = '1500', event_time = 'ts');
         CREATE MODEL risk FROM '{f}/linear.onnx' WITH (version = 'v1');
         CREATE SINK out WITH (connector = 'file', path = '{}', format = 'csv');
         CREATE PIPELINE score AS INSERT INTO out
         SELECT sensor_id, seq, temperature, vibration, pressure,
                predict('risk', temperature, vibration, pressure, 0.0) AS risk,
                model_version('risk') AS version
         FROM readings;",
        out.display()
    );
    let s = WeirServer::start(&dir.join("state"), &["--checkpoint-every", "200ms"]);
    let body = json!({"name": "score", "sql": sql});
    assert_eq!(s.must("POST", "/api/v1/pipelines", Some(&body)).status, 201);
    s.wait_until("output", Duration::from_secs(60), |s| {
        s.status("score")["queries"][0]["rows_out"].as_u64() > Some(1000)
    });
    // Inference is timed per model version: at least every row written so far was scored.
    let out_before = s.status("score")["queries"][0]["rows_out"].as_u64();
    let scored = inference(&s, "weir_inference_rows_total", "v1");
    assert!(Some(scored as u64) >= out_before, "{scored} {out_before:?}");
    let batches = inference(&s, "weir_inference_batch_seconds_count", "v1");
    assert!(batches >= 1.0 && batches <= scored, "{batches} batches");
    assert!(inference(&s, "weir_inference_batch_seconds_sum", "v1") > 0.0);
    crate::serve::promtool_check(&s.get("/metrics").expect("metrics").text);
    for (name, role) in [("ana", "analyst"), ("mel", "ml_engineer")] {
        let body = json!({"name": name, "password": format!("{name}-password"), "roles": [role]});
        assert_eq!(s.must("POST", "/api/v1/users", Some(&body)).status, 201);
    }
    let ana = Auth::Basic("ana".into(), "ana-password".into());
    let mel = Auth::Basic("mel".into(), "mel-password".into());
    let v2 = std::fs::read(format!("{f}/linear_v2.onnx")).expect("fixture");
    let width3 = std::fs::read(format!("{f}/width3.onnx")).expect("fixture");
    assert_eq!(upload(&s, &mel, "v2", b"not a model at all"), 422);
    let r = s.put_bytes(&mel, "/api/v1/models/risk/versions/v2", &width3);
    let message = r.json()["message"].as_str().unwrap_or("").to_string();
    assert_eq!(r.status, 422, "{r:?}");
    assert!(message.contains("takes 3 inputs"), "{message}");
    assert_eq!(upload(&s, &mel, "v2", b""), 400, "an empty body");
    assert_eq!(upload(&s, &mel, "v2~x", &v2), 400, "not a version name");
    assert_eq!(upload(&s, &ana, "v2", &v2), 403, "an analyst may not");
    let r = s.put_bytes(&mel, "/api/v1/models/risk/versions/v2", &v2);
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(
        (
            r.json()["pipelines"].as_u64(),
            r.json()["features"].as_u64()
        ),
        (Some(1), Some(4)),
        "{r:?}"
    );
    assert_eq!(upload(&s, &mel, "v2", &v2), 409, "uploaded already");
    assert_eq!(upload(&s, &mel, "v1", &v2), 409, "declared in the script");
    let versions = |s: &WeirServer| {
        let m = s.must("GET", "/api/v1/models", None).json();
        let mut v: Vec<(String, bool, bool)> = m
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| {
                let text = v["version"].as_str().unwrap_or("").to_string();
                (text, v["current"] == true, v["uploaded"] == true)
            })
            .collect();
        v.sort();
        v
    };
    let want = vec![("v1".into(), true, false), ("v2".into(), false, true)];
    assert_eq!(versions(&s), want);
    let switch = json!({"version": "v2"});
    let r = s
        .call_as(&mel, "POST", "/api/v1/models/risk/version", Some(&switch))
        .expect("answer");
    assert_eq!((r.status, r.json()["pipelines"].as_u64()), (200, Some(1)));
    s.wait_until("more output", Duration::from_secs(60), |s| {
        s.status("score")["queries"][0]["rows_out"].as_u64() > Some(3500)
    });
    let state = s.state_dir.clone();
    s.kill();
    let s = WeirServer::start(&state, &["--checkpoint-every", "200ms"]);
    let want = vec![("v1".into(), false, false), ("v2".into(), true, true)];
    assert_eq!(versions(&s), want, "the upload is in the state dir");
    s.wait_state("score", "finished", Duration::from_secs(60));
    assert!(inference(&s, "weir_inference_rows_total", "v2") >= 1.0);
    assert_eq!(
        inference(&s, "weir_inference_rows_total", "v1"),
        0.0,
        "after the restart"
    );
    crate::serve::promtool_check(&s.get("/metrics").expect("metrics").text);
    s.terminate();
    check_versions(&out);
    check_scores(&out, &f);
}

/// Every row once; each sensor's rows turn from v1 to v2 once and stay there.
fn check_versions(out: &std::path::Path) {
    let text = std::fs::read_to_string(out).expect("output");
    let mut seen = HashSet::new();
    let mut per_sensor: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        assert!(seen.insert((f[0], f[1])), "repeated {line}");
        let seq = f[1].parse().expect("seq");
        per_sensor
            .entry(f[0].into())
            .or_default()
            .push((seq, f[6].into()));
    }
    assert_eq!(seen.len(), 6000, "every row once");
    for (sensor, mut rows) in per_sensor {
        rows.sort();
        let at = rows.iter().position(|r| r.1 == "v2");
        let at = at.unwrap_or_else(|| panic!("{sensor}: never v2"));
        assert!(at > 0, "{sensor}: v2 from the start");
        assert!(
            rows[at..].iter().all(|r| r.1 == "v2"),
            "{sensor}: back to v1 after the switch"
        );
    }
}

/// Each row's score is what its version's file gives for its features, scored again from the
/// fixtures (not from the uploaded copy).
fn check_scores(out: &std::path::Path, f: &str) {
    let check = format!(
        "CREATE SOURCE scored (sensor_id TEXT, seq BIGINT, temperature DOUBLE, vibration DOUBLE, pressure DOUBLE, risk DOUBLE, version TEXT)
           WITH (connector = 'file', path = '{}');
         CREATE MODEL oracle FROM '{f}/linear.onnx' WITH (version = 'v1');
         CREATE MODEL oracle FROM '{f}/linear_v2.onnx' WITH (version = 'v2');
         SELECT version, risk,
                predict_version('oracle', 'v1', temperature, vibration, pressure, 0.0) AS p1,
                predict_version('oracle', 'v2', temperature, vibration, pressure, 0.0) AS p2
         FROM scored;",
        out.display()
    );
    let got = sql_rows(&check, 1);
    assert_eq!(got.len(), 6000);
    for r in got {
        let num = |i: usize| r[i].parse::<f64>().expect("number");
        let (risk, p1, p2) = (num(1), num(2), num(3));
        assert!((p1 - p2).abs() > 1e-6, "the versions differ");
        let want = if r[0] == "v1" { p1 } else { p2 };
        assert!((risk - want).abs() < 1e-9, "{r:?}");
    }
}
