//! Models through SQL: ONNX fixtures (made by `tests/fixtures/models/make_models.py` with
//! scikit-learn, skl2onnx and onnxruntime) are run with `predict` / `predict_label` over the
//! fixture inputs and compared with onnxruntime's outputs: scores within 1e-5, labels exact.
//! And a hot swap: a model version switched through the control file while a stream runs;
//! every row carries the version that produced it, none lost or duplicated.
use std::collections::BTreeMap;
use std::path::PathBuf;

use weir_engine::{run_sql, RunOptions};
use weir_tests::{rows, scratch, sql_rows, WeirProcess};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join("models")
}

/// The fixture CSV `name` as rows of fields.
fn csv(path: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    (
        header,
        lines
            .map(|l| l.split(',').map(String::from).collect())
            .collect(),
    )
}

/// Writes `dir/inputs.csv`: the fixture inputs `copies` times, copy k with ids k·1000 + id.
fn repeat_inputs(dir: &std::path::Path, copies: usize) {
    let (_, inputs) = csv(&fixtures().join("inputs.csv"));
    let mut big = String::from("id,temperature,vibration,pressure,temp_delta\n");
    for k in 0..copies {
        for r in &inputs {
            big.push_str(&format!(
                "{},{}\n",
                k * 1000 + r[0].parse::<usize>().unwrap(),
                r[1..].join(",")
            ));
        }
    }
    std::fs::write(dir.join("inputs.csv"), big).unwrap();
}

#[test]
fn models_match_onnxruntime() {
    let dir = scratch("models");
    // 3000 rows: more than one 1024-row tract plan.
    repeat_inputs(&dir, 15);
    // (model, score column in the expected file, has labels, evaluator)
    let cases = [
        ("linear", "variable", false, "tract"),
        ("logistic", "probabilities_1", true, "tract"),
        ("mlp", "variable", false, "tract"),
        ("gbr", "variable", false, "weir"),
        ("gbc", "probabilities_1", true, "weir"),
        ("forest", "probabilities_1", true, "weir"),
        ("tree", "probabilities_1", true, "weir"),
        ("iforest", "scores", true, "weir"),
    ];
    for (model, score_col, labelled, evaluator) in cases {
        let (header, expected) = csv(&fixtures().join(format!("expected_{model}.csv")));
        let si = header.iter().position(|h| h == score_col).unwrap();
        let li = header.iter().position(|h| h == "label");
        let name = format!("fixture_{model}");
        let sql = format!(
            "CREATE SOURCE inputs (id BIGINT, temperature DOUBLE, vibration DOUBLE, pressure DOUBLE, temp_delta DOUBLE)
               WITH (connector = 'file', path = '{d}/inputs.csv');
             CREATE MODEL {name} FROM '{f}/{model}.onnx' WITH (version = 'v1');
             SELECT id, predict('{name}', temperature, vibration, pressure, temp_delta) AS score,
                    {label} AS label
             FROM inputs;",
            d = dir.display(),
            f = fixtures().display(),
            label = if labelled {
                format!("predict_label('{name}', temperature, vibration, pressure, temp_delta)")
            } else {
                "0".into()
            },
        );
        let plan = weir_queries::compile(&sql).unwrap_or_else(|e| panic!("{model}: {e}"));
        assert_eq!(plan.models[0].evaluator, evaluator, "{model}");
        let report =
            run_sql(&sql, &RunOptions::default()).unwrap_or_else(|e| panic!("{model}: {e}"));
        let got = rows(&report.pipelines[0].results);
        assert_eq!(got.len(), 3000, "{model}");
        let mut worst = 0f64;
        for r in &got {
            let id: usize = r[0].parse().unwrap();
            let e = &expected[id % 1000];
            let (want, have): (f64, f64) = (e[si].parse().unwrap(), r[1].parse().unwrap());
            worst = worst.max((want - have).abs());
            if let Some(li) = li {
                assert_eq!(r[2], e[li], "{model}: label of row {id}");
            }
        }
        assert!(worst <= 1e-5, "{model}: max abs error {worst}");
    }
}

#[test]
fn hot_swap_mid_stream_keeps_every_row_once_with_its_version() {
    let dir = scratch("hot-swap");
    let out = dir.join("scored.csv");
    let control = dir.join("control.sql");
    std::fs::write(&control, "").unwrap();
    let script = dir.join("p.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE SOURCE readings (sensor_id TEXT, seq BIGINT, ts BIGINT, temperature DOUBLE, vibration DOUBLE, pressure DOUBLE)
               WITH (connector = 'generator', sensors = '10', rows = '4000', rate = '1000', event_time = 'ts');
             CREATE MODEL risk FROM '{f}/linear.onnx' WITH (version = 'v1');
             CREATE MODEL risk FROM '{f}/linear_v2.onnx' WITH (version = 'v2');
             CREATE SINK out WITH (connector = 'file', path = '{o}', format = 'csv');
             CREATE PIPELINE score AS INSERT INTO out
             SELECT sensor_id, seq, temperature, vibration, pressure,
                    predict('risk', temperature, vibration, pressure, 0.0) AS risk,
                    model_version('risk') AS version
             FROM readings;",
            f = fixtures().display(),
            o = out.display()
        ),
    )
    .unwrap();
    let mut weir = WeirProcess::start(&script, &["--control", control.to_str().unwrap()]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    std::fs::write(&control, "ALTER MODEL risk SET VERSION 'v2';\n").unwrap();
    weir.wait_for("control: model risk now at version v2", 1);
    weir.finish();

    let (header, scored) = csv(&out);
    assert_eq!(header.last().map(String::as_str), Some("version"));
    assert_eq!(scored.len(), 4000, "every row once");
    let mut seen = std::collections::HashSet::new();
    let mut per_sensor: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for r in &scored {
        assert!(
            seen.insert((r[0].clone(), r[1].clone())),
            "duplicate row {r:?}"
        );
        per_sensor
            .entry(r[0].clone())
            .or_default()
            .push((r[1].parse().unwrap(), r[6].clone()));
    }
    let v2 = scored.iter().filter(|r| r[6] == "v2").count();
    assert!(
        v2 > 0 && v2 < 4000,
        "the switch happened mid-stream: {v2} rows on v2"
    );
    for (s, mut list) in per_sensor {
        list.sort();
        let first_v2 = list
            .iter()
            .position(|(_, v)| v == "v2")
            .unwrap_or(list.len());
        assert!(
            list[first_v2..].iter().all(|(_, v)| v == "v2"),
            "{s}: v1 after v2"
        );
    }
    // Each row's score is the one its version gives for its features.
    let check = format!(
        "CREATE SOURCE scored (sensor_id TEXT, seq BIGINT, temperature DOUBLE, vibration DOUBLE, pressure DOUBLE, risk DOUBLE, version TEXT)
           WITH (connector = 'file', path = '{o}');
         CREATE MODEL risk_check FROM '{f}/linear.onnx' WITH (version = 'v1');
         CREATE MODEL risk_check FROM '{f}/linear_v2.onnx' WITH (version = 'v2');
         SELECT version, risk,
                predict_version('risk_check', 'v1', temperature, vibration, pressure, 0.0) AS p1,
                predict_version('risk_check', 'v2', temperature, vibration, pressure, 0.0) AS p2
         FROM scored;",
        f = fixtures().display(),
        o = out.display()
    );
    let got = sql_rows(&check, 1);
    assert_eq!(got.len(), 4000);
    for r in got {
        let (risk, p1, p2): (f64, f64, f64) = (
            r[1].parse().unwrap(),
            r[2].parse().unwrap(),
            r[3].parse().unwrap(),
        );
        assert!((p1 - p2).abs() > 1e-6, "the versions differ");
        let want = if r[0] == "v1" { p1 } else { p2 };
        assert!((risk - want).abs() < 1e-9, "{r:?}");
    }
}

#[test]
fn champion_and_challenger_side_by_side_and_routed_by_key() {
    let (_, v1) = csv(&fixtures().join("expected_linear.csv"));
    let (_, v2) = csv(&fixtures().join("expected_linear_v2.csv"));
    let dir = scratch("champion");
    repeat_inputs(&dir, 50);
    let f = "temperature, vibration, pressure, temp_delta";
    let sql = format!(
        "CREATE SOURCE inputs (id BIGINT, temperature DOUBLE, vibration DOUBLE, pressure DOUBLE, temp_delta DOUBLE)
           WITH (connector = 'file', path = '{d}/inputs.csv');
         CREATE MODEL cc FROM '{m}/linear.onnx' WITH (version = 'v1');
         CREATE MODEL cc FROM '{m}/linear_v2.onnx' WITH (version = 'v2');
         SELECT id,
                predict('cc', {f}) AS champion,
                predict_version('cc', 'v2', {f}) AS challenger,
                ab_bucket(id, 0.25) AS to_challenger,
                CASE WHEN ab_bucket(id, 0.25) THEN predict_version('cc', 'v2', {f}) ELSE predict('cc', {f}) END AS routed,
                CASE WHEN ab_bucket(id, 0.25) THEN 'v2' ELSE model_version('cc') END AS routed_version
         FROM inputs;",
        d = dir.display(),
        m = fixtures().display(),
    );
    let mut first: Option<Vec<Vec<String>>> = None;
    for _ in 0..2 {
        let mut got = sql_rows(&sql, 1);
        got.sort();
        assert_eq!(got.len(), 10_000);
        let mut routed = 0;
        for r in &got {
            let id: usize = r[0].parse().unwrap();
            let (c, ch): (f64, f64) = (r[1].parse().unwrap(), r[2].parse().unwrap());
            assert!(
                (c - v1[id % 1000][1].parse::<f64>().unwrap()).abs() <= 1e-5,
                "{r:?}"
            );
            assert!(
                (ch - v2[id % 1000][1].parse::<f64>().unwrap()).abs() <= 1e-5,
                "{r:?}"
            );
            let to = r[3] == "true";
            routed += to as usize;
            let want = if to { ch } else { c };
            assert_eq!(r[4].parse::<f64>().unwrap(), want, "{r:?}");
            assert_eq!(r[5], if to { "v2" } else { "v1" });
        }
        // A quarter of the keys (± 2 points) go to the challenger, the same ones every run.
        let share = routed as f64 / got.len() as f64;
        assert!((share - 0.25).abs() < 0.02, "share {share}");
        if let Some(f) = &first {
            assert_eq!(f, &got);
        }
        first = Some(got);
    }
}
