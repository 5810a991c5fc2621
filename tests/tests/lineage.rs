//! Plan lineage (`weir lineage`): for a script with a lookup join, a window, CASE, features and
//! `predict`, every sink column's sources, models and kind, compared exactly.
use weir_tests::{run_weir, run_weir_ok, scratch, weir_ok};

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
    let text = weir_ok(&["lineage", script.to_str().unwrap()]);
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
    let dot = weir_ok(&["lineage", script.to_str().unwrap(), "--dot"]);
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

fn events(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Checks the fields the OpenLineage RunEvent schema requires, and their formats.
fn check_run_event(e: &serde_json::Value) {
    let time = e["eventTime"].as_str().unwrap();
    assert!(
        time.len() == 24 && time.ends_with('Z') && &time[10..11] == "T",
        "{time}"
    );
    let id = e["run"]["runId"].as_str().unwrap();
    let parts: Vec<usize> = id.split('-').map(str::len).collect();
    assert_eq!(parts, vec![8, 4, 4, 4, 12], "{id}");
    assert_eq!(&id[14..15], "4", "a version-4 UUID: {id}");
    assert!(["START", "RUNNING", "COMPLETE", "FAIL"].contains(&e["eventType"].as_str().unwrap()));
    assert_eq!(e["job"]["namespace"], "weir");
    assert!(e["producer"].as_str().unwrap().starts_with("https://"));
    assert_eq!(
        e["schemaURL"],
        "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
    );
    for d in e["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .chain(e["outputs"].as_array().unwrap())
    {
        assert!(d["namespace"].is_string() && d["name"].is_string(), "{d}");
    }
}

#[test]
fn openlineage_events_for_a_run() {
    let dir = scratch("openlineage");
    std::fs::write(
        dir.join("machines.csv"),
        "machine_id,line\nm0000,L1\nm0001,L2\n",
    )
    .unwrap();
    let script = dir.join("p.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE SOURCE readings (machine_id TEXT, ts BIGINT, temperature DOUBLE)
               WITH (connector = 'generator', sensors = '8', rows = '2500', rate = '1000', event_time = 'ts');
             CREATE TABLE machines (machine_id TEXT, line TEXT, PRIMARY KEY (machine_id))
               WITH (connector = 'file', path = '{d}/machines.csv');
             CREATE SINK out WITH (connector = 'file', path = '{d}/out.csv', format = 'csv');
             CREATE PIPELINE per_line AS INSERT INTO out
             SELECT r.machine_id, m.line, r.temperature * 2 AS double_temp
             FROM readings r JOIN machines m ON r.machine_id = m.machine_id;",
            d = dir.display()
        ),
    )
    .unwrap();
    let log = dir.join("events.jsonl");
    run_weir_ok(
        &script,
        &[
            "--lineage-every",
            "1",
            "--lineage-events",
            log.to_str().unwrap(),
        ],
    );
    let ev = events(&log);
    let kinds: Vec<&str> = ev
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"START"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"COMPLETE"), "{kinds:?}");
    assert!(kinds.contains(&"RUNNING"), "{kinds:?}");
    for e in &ev {
        check_run_event(e);
        assert_eq!(e["run"]["runId"], ev[0]["run"]["runId"]);
        assert_eq!(e["job"]["name"], "per_line");
    }
    let table = std::fs::canonicalize(dir.join("machines.csv")).unwrap();
    assert_eq!(
        ev[0]["inputs"],
        serde_json::json!([
            { "namespace": "weir", "name": "generator/source/readings" },
            { "namespace": "file", "name": table.display().to_string() },
        ])
    );
    let fields = &ev[0]["outputs"][0]["facets"]["columnLineage"]["fields"];
    assert_eq!(
        fields["line"]["inputFields"][0]["name"],
        table.display().to_string()
    );
    assert_eq!(fields["line"]["inputFields"][0]["field"], "line");
    assert_eq!(
        fields["line"]["inputFields"][0]["transformations"][0]["subtype"],
        "IDENTITY"
    );
    assert_eq!(
        fields["double_temp"]["inputFields"][0]["field"],
        "temperature"
    );
    assert_eq!(
        fields["double_temp"]["inputFields"][0]["transformations"][0]["subtype"],
        "TRANSFORMATION"
    );

    // A failing run ends with FAIL and the error; events can also go to an HTTP endpoint.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let b2 = bodies.clone();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for s in listener.incoming() {
            let Ok(mut s) = s else { break };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(i) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() >= i + 4 + len {
                        b2.lock().unwrap().push(text[i + 4..].to_string());
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let models = format!("{}/fixtures/models", env!("CARGO_MANIFEST_DIR"));
    let bad = dir.join("bad.sql");
    std::fs::write(
        &bad,
        format!(
            "CREATE SOURCE readings (machine_id TEXT, ts BIGINT, temperature DOUBLE)
               WITH (connector = 'generator', sensors = '8', rows = '100', event_time = 'ts');
             CREATE MODEL risk FROM '{models}/linear.onnx' WITH (version = 'v1');
             CREATE SINK out WITH (connector = 'stdout');
             CREATE PIPELINE wrong AS INSERT INTO out SELECT predict('risk', temperature) AS r FROM readings;"
        ),
    )
    .unwrap();
    let out = run_weir(
        &bad,
        &["--lineage-events", &format!("http://{addr}/api/v1/lineage")],
    );
    assert!(!out.status.success());
    let got: Vec<serde_json::Value> = bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    let kinds: Vec<&str> = got
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["START", "FAIL"], "{got:?}");
    got.iter().for_each(check_run_event);
    let msg = got[1]["run"]["facets"]["errorMessage"]["message"]
        .as_str()
        .unwrap();
    assert!(msg.contains("takes 4 features"), "{msg}");
}
