//! A model version switched over REST (`POST /api/v1/models/{model}/version`) while a
//! checkpointed served pipeline runs: every row is scored once, each sensor's rows turn from
//! v1 to v2 once and stay at v2 through the checkpoint cuts that follow (each cut starts a new
//! job, which builds its models from the plan again) and through a kill -9 of the server and
//! its restart; only an ML engineer may switch.
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde_json::json;
use weir_tests::scratch;
use weir_tests::serve::{Auth, WeirServer};

#[test]
fn a_version_switch_holds_across_checkpoints() {
    let dir = scratch("serve-models");
    let f = format!("{}/fixtures/models", env!("CARGO_MANIFEST_DIR"));
    let out = dir.join("scored.csv");
    let sql = format!(
        "CREATE SOURCE readings (sensor_id TEXT, seq BIGINT, ts BIGINT, temperature DOUBLE, vibration DOUBLE, pressure DOUBLE)
           WITH (connector = 'generator', sensors = '4', rows = '6000', rate = '1500', event_time = 'ts');
         CREATE MODEL risk FROM '{f}/linear.onnx' WITH (version = 'v1');
         CREATE MODEL risk FROM '{f}/linear_v2.onnx' WITH (version = 'v2');
         CREATE SINK out WITH (connector = 'file', path = '{}', format = 'csv');
         CREATE PIPELINE score AS INSERT INTO out
         SELECT sensor_id, seq, model_version('risk') AS version FROM readings;",
        out.display()
    );
    let s = WeirServer::start(&dir.join("state"), &["--checkpoint-every", "200ms"]);
    assert_eq!(
        s.must(
            "POST",
            "/api/v1/pipelines",
            Some(&json!({"name": "score", "sql": sql}))
        )
        .status,
        201
    );
    let m = s.must("GET", "/api/v1/models", None).json();
    assert_eq!(m.as_array().map(|a| a.len()), Some(2), "{m}");
    s.wait_until("output", Duration::from_secs(60), |s| {
        s.status("score")["queries"][0]["rows_out"].as_u64() > Some(1000)
    });
    let body = json!({"name": "ana", "password": "ana-password", "roles": ["analyst"]});
    assert_eq!(s.must("POST", "/api/v1/users", Some(&body)).status, 201);
    let body = json!({"name": "mel", "password": "mel-password", "roles": ["ml_engineer"]});
    assert_eq!(s.must("POST", "/api/v1/users", Some(&body)).status, 201);
    let v2 = json!({"version": "v2"});
    let ana = Auth::Basic("ana".into(), "ana-password".into());
    assert_eq!(
        s.call_as(&ana, "POST", "/api/v1/models/risk/version", Some(&v2))
            .expect("answer")
            .status,
        403
    );
    let mel = Auth::Basic("mel".into(), "mel-password".into());
    let r = s
        .call_as(&mel, "POST", "/api/v1/models/risk/version", Some(&v2))
        .expect("answer");
    assert_eq!(
        (r.status, r.json()["pipelines"].as_u64()),
        (200, Some(1)),
        "{r:?}"
    );
    let bad = json!({"version": "v9"});
    assert_eq!(
        s.call_as(&mel, "POST", "/api/v1/models/risk/version", Some(&bad))
            .expect("answer")
            .status,
        400
    );
    // Killed (-9) and started again: the switch is in the catalog, so the run goes on at v2.
    s.wait_until("more output", Duration::from_secs(60), |s| {
        s.status("score")["queries"][0]["rows_out"].as_u64() > Some(3500)
    });
    let state = s.state_dir.clone();
    s.kill();
    let s = WeirServer::start(&state, &["--checkpoint-every", "200ms"]);
    let m = s.must("GET", "/api/v1/models", None).json();
    let current: Vec<&str> = m
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["current"] == true)
        .filter_map(|v| v["version"].as_str())
        .collect();
    assert_eq!(current, vec!["v2"], "{m}");
    s.wait_state("score", "finished", Duration::from_secs(60));
    let taken = s.status("score")["checkpoints"]["taken"]
        .as_u64()
        .unwrap_or(0);
    s.terminate();

    let text = std::fs::read_to_string(&out).expect("output");
    let mut seen = HashSet::new();
    let mut per_sensor: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        assert!(
            seen.insert((f[0].to_string(), f[1].to_string())),
            "repeated {line}"
        );
        per_sensor
            .entry(f[0].into())
            .or_default()
            .push((f[1].parse().unwrap(), f[2].into()));
    }
    assert_eq!(seen.len(), 6000, "every row once");
    assert!(
        taken > 3,
        "{taken} checkpoints: the switch must live through cuts"
    );
    for (sensor, mut rows) in per_sensor {
        rows.sort();
        let versions: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
        let first_v2 = versions
            .iter()
            .position(|v| *v == "v2")
            .unwrap_or_else(|| panic!("{sensor}: never v2"));
        assert!(first_v2 > 0, "{sensor}: v2 from the start");
        assert!(
            versions[first_v2..].iter().all(|v| *v == "v2"),
            "{sensor}: back to v1 after the switch: {versions:?}"
        );
    }
}
