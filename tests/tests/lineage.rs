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

/// Reads a schema shipped in `tests/fixtures/openlineage/`.
fn ol_schema(file: &str) -> serde_json::Value {
    let path = format!("{}/fixtures/openlineage/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Validators for the core RunEvent schema and each facet weir emits, by facet key.
struct OpenLineageSchemas {
    core: jsonschema::Validator,
    /// Facet key, the schema's `$id`, its validator.
    facets: Vec<(&'static str, String, jsonschema::Validator)>,
}

impl OpenLineageSchemas {
    fn load() -> OpenLineageSchemas {
        let core = ol_schema("OpenLineage.json");
        // The facet schemas `$ref` the core one by its `$id`: serve it from the fixture.
        let registry = jsonschema::Registry::new()
            .add(
                "https://openlineage.io/spec/2-0-2/OpenLineage.json",
                core.clone(),
            )
            .unwrap()
            .prepare()
            .unwrap();
        let build = |schema: &serde_json::Value| {
            jsonschema::options()
                .should_validate_formats(true)
                .with_registry(&registry)
                .build(schema)
                .unwrap()
        };
        let facets = [
            ("columnLineage", "ColumnLineageDatasetFacet"),
            ("schema", "SchemaDatasetFacet"),
            ("errorMessage", "ErrorMessageRunFacet"),
            ("jobType", "JobTypeJobFacet"),
            ("processing_engine", "ProcessingEngineRunFacet"),
            ("inputStatistics", "InputStatisticsInputDatasetFacet"),
            ("outputStatistics", "OutputStatisticsOutputDatasetFacet"),
        ]
        .into_iter()
        .map(|(key, file)| {
            let schema = ol_schema(&format!("facets/{file}.json"));
            (
                key,
                schema["$id"].as_str().unwrap().to_string(),
                build(&schema),
            )
        })
        .collect();
        OpenLineageSchemas {
            core: build(&core),
            facets,
        }
    }

    /// What is wrong with `e` against the core schema, and with each facet in it against its
    /// own schema (the core schema leaves facet bodies open). A facet without a shipped schema,
    /// or naming another version than the one shipped, is wrong too.
    fn errors(&self, e: &serde_json::Value) -> Vec<String> {
        let mut errors: Vec<String> = self.core.iter_errors(e).map(|x| x.to_string()).collect();
        let mut holders = vec![&e["run"], &e["job"]];
        for side in ["inputs", "outputs"] {
            holders.extend(e[side].as_array().into_iter().flatten());
        }
        let maps = ["facets", "inputFacets", "outputFacets"];
        for h in holders {
            let facets = maps.iter().filter_map(|m| h[*m].as_object()).flatten();
            for (key, body) in facets {
                let Some((_, id, v)) = self.facets.iter().find(|(k, _, _)| k == key) else {
                    errors.push(format!("no schema shipped for facet {key}"));
                    continue;
                };
                let wrapped = serde_json::json!({ key: body });
                errors.extend(v.iter_errors(&wrapped).map(|x| format!("{key}: {x}")));
                let url = body["_schemaURL"].as_str().unwrap_or_default();
                if !url.starts_with(&format!("{id}#/$defs/")) {
                    errors.push(format!("{key}: _schemaURL {url} is not {id}"));
                }
            }
        }
        errors
    }

    fn assert_valid(&self, e: &serde_json::Value) {
        let errors = self.errors(e);
        assert!(errors.is_empty(), "{errors:?} in {e}");
        let id = e["run"]["runId"].as_str().unwrap();
        assert_eq!(&id[14..15], "4", "a version-4 UUID: {id}");
        assert_eq!(e["job"]["namespace"], "weir");
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
    let schemas = OpenLineageSchemas::load();
    for e in &ev {
        schemas.assert_valid(e);
        assert_eq!(e["run"]["runId"], ev[0]["run"]["runId"]);
        assert_eq!(e["job"]["name"], "per_line");
    }
    // The validators do reject what the spec forbids, each fault alone.
    type Fault = fn(&mut serde_json::Value);
    let faults: [Fault; 6] = [
        |e| e["eventType"] = "DONE".into(),
        |e| e["eventTime"] = "yesterday".into(),
        |e| e["run"]["runId"] = "run-1".into(),
        |e| {
            e["outputs"][0]["facets"]["columnLineage"]["fields"]["line"]["inputFields"][0]
                .as_object_mut()
                .unwrap()
                .remove("field");
        },
        |e| e["job"]["facets"]["jobType"]["processingType"] = serde_json::Value::Null,
        |e| e["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] = "many".into(),
    ];
    for (i, fault) in faults.iter().enumerate() {
        let mut wrong = ev[0].clone();
        fault(&mut wrong);
        assert!(!schemas.errors(&wrong).is_empty(), "fault {i} passed");
    }

    // Rows read and written so far: all of them at the end.
    let last = ev.last().unwrap();
    assert_eq!(
        last["inputs"][0]["inputFacets"]["inputStatistics"]["rowCount"],
        2500
    );
    let written = std::fs::read_to_string(dir.join("out.csv"))
        .unwrap()
        .lines()
        .count()
        - 1;
    assert!(written > 0);
    assert_eq!(
        last["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"],
        written
    );
    let table = std::fs::canonicalize(dir.join("machines.csv")).unwrap();
    let named: Vec<(&str, &str)> = ev[0]["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["namespace"].as_str().unwrap(),
                d["name"].as_str().unwrap(),
            )
        })
        .collect();
    let table_name = table.display().to_string();
    assert_eq!(
        named,
        vec![
            ("weir", "generator/source/readings"),
            ("file", table_name.as_str())
        ]
    );
    assert_eq!(
        ev[0]["inputs"][1]["facets"]["schema"]["fields"],
        serde_json::json!([{ "name": "machine_id", "type": "Utf8" }, { "name": "line", "type": "Utf8" }])
    );
    let out_fields: Vec<&str> = ev[0]["outputs"][0]["facets"]["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(out_fields, vec!["machine_id", "line", "double_temp"]);
    assert_eq!(
        ev[0]["job"]["facets"]["jobType"]["processingType"],
        "STREAMING"
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
    got.iter().for_each(|e| schemas.assert_valid(e));
    let msg = got[1]["run"]["facets"]["errorMessage"]["message"]
        .as_str()
        .unwrap();
    assert!(msg.contains("takes 4 features"), "{msg}");
}
