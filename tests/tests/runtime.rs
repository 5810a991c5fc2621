//! The job runtime through its public API: jobs submitted while others run, stopped (drain and
//! cancel) without touching the others, failures (a sink that cannot open, a panic in a source
//! on another worker) that end their job only with a typed error, and each job's own models.
//! Also `weir run --workers 2` ending with the typed error when a worker panics.
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use weir_engine::{JobErrorKind, JobHandle, JobStatus, Runtime, RuntimeOptions, StopMode};
use weir_tests::{scratch, weir_bin};

fn runtime(workers: usize) -> Runtime {
    Runtime::start(&RuntimeOptions {
        workers,
        cluster: None,
    })
    .expect("runtime")
}

fn submit(rt: &Runtime, sql: &str) -> JobHandle {
    let plan = weir_queries::compile(sql).unwrap_or_else(|e| panic!("{e}"));
    let plan = weir_queries::job_plan::JobPlan::new("test", plan);
    rt.submit(&plan, Vec::new()).expect("submit")
}

/// Waits (up to 60 s) until `cond` holds.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rows_out(j: &JobHandle) -> u64 {
    j.metrics().iter().map(|m| m.rows_out).sum()
}

/// An unbounded generator (`rows = '0'`) at `rate` rows/s, written as JSON lines to `out`.
fn unbounded(out: &Path, rate: u32, extra: &str, select: &str) -> String {
    format!(
        "CREATE SOURCE r (sensor_id TEXT, ts BIGINT, seq BIGINT, temperature DOUBLE)
           WITH (connector = 'generator', sensors = '8', rows = '0', rate = '{rate}',
                 event_time = 'ts'{extra});
         CREATE SINK out WITH (connector = 'file', path = '{}', format = 'json');
         CREATE PIPELINE p AS INSERT INTO out {select};",
        out.display()
    )
}

/// The JSON lines of `path`, each parsed (a torn line fails the test).
fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("line {l:?}: {e}")))
        .collect()
}

#[test]
fn jobs_start_stop_and_fail_while_others_run() {
    let dir = scratch("runtime-jobs");
    let rt = runtime(2);
    let (a_out, b_out) = (dir.join("a.jsonl"), dir.join("b.jsonl"));
    let a = submit(
        &rt,
        &unbounded(
            &a_out,
            4000,
            "",
            "SELECT sensor_id, seq, temperature FROM r",
        ),
    );
    eventually("job A's first rows", || rows_out(&a) > 0);
    let b = submit(
        &rt,
        &unbounded(
            &b_out,
            2000,
            "",
            "SELECT sensor_id, window_start, count(*) AS n FROM r
             GROUP BY sensor_id, tumble(ts, INTERVAL '10' SECOND)",
        ),
    );
    eventually("job B's first windows", || rows_out(&b) > 0);
    assert_eq!(a.status(), JobStatus::Running);

    // Stop A: it ends, its sink is closed and holds every row it read, once.
    a.stop(StopMode::Drain);
    let report = a.wait().expect("A stops cleanly");
    assert_eq!(a.status(), JobStatus::Stopped);
    let rows = json_lines(&a_out);
    assert_eq!(rows.len() as u64, report.pipelines[0].rows_out);
    assert_eq!(report.pipelines[0].rows_in, report.pipelines[0].rows_out);
    let mut seqs: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in &rows {
        let s = r["sensor_id"].as_str().expect("sensor_id").to_string();
        seqs.entry(s)
            .or_default()
            .push(r["seq"].as_i64().expect("seq"));
    }
    for (s, mut v) in seqs {
        v.sort();
        let want: Vec<i64> = (0..v.len() as i64).collect();
        assert_eq!(v, want, "sensor {s}: every reading from the first, once");
    }
    // B keeps producing after A stopped.
    let before = rows_out(&b);
    eventually("job B's rows after A stopped", || rows_out(&b) > before);
    assert_eq!(b.status(), JobStatus::Running);

    // A job whose sink cannot be written fails alone, with its typed error.
    let blocker = dir.join("not-a-dir");
    std::fs::write(&blocker, "a file").unwrap();
    let c = submit(
        &rt,
        &unbounded(&blocker.join("c.jsonl"), 100, "", "SELECT sensor_id FROM r"),
    );
    let err = c.wait().expect_err("C cannot open its sink");
    assert_eq!(err.kind, JobErrorKind::Build);
    assert_eq!(err.job, c.id());
    assert_eq!(err.pipeline, "p");
    assert!(err.message.contains("sink 'out'"), "{err}");
    assert!(matches!(c.status(), JobStatus::Failed(_)));

    // A job that panics on worker 1 fails alone; B goes on.
    let d = submit(
        &rt,
        &unbounded(
            &dir.join("d.jsonl"),
            0,
            ", panic_at = '500'",
            "SELECT sensor_id FROM r",
        ),
    );
    let err = d.wait().expect_err("D panics");
    assert_eq!(err.kind, JobErrorKind::Panic);
    assert_eq!(
        (err.pipeline.as_str(), err.operator.as_str()),
        ("p", "Source")
    );
    assert!(err.message.contains("fault injected"), "{err}");
    let before = rows_out(&b);
    eventually("job B's rows after C and D failed", || {
        rows_out(&b) > before
    });
    assert_eq!(b.status(), JobStatus::Running);

    // Cancel B: it ends at once; what it wrote is whole lines.
    b.stop(StopMode::Cancel);
    b.wait().expect("B cancelled");
    assert_eq!(b.status(), JobStatus::Stopped);
    let windows = json_lines(&b_out);
    assert!(!windows.is_empty());
    assert!(
        windows.iter().all(|w| w["n"].as_i64() == Some(10)),
        "closed windows are whole"
    );
    rt.shutdown().expect("shutdown");
}

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/models")
}

/// `expected_*.csv` of the model fixtures: id → score.
fn expected(name: &str) -> BTreeMap<i64, f64> {
    let text = std::fs::read_to_string(fixtures().join(name)).expect("expected scores");
    text.lines()
        .skip(1)
        .map(|l| {
            let (id, v) = l.split_once(',').expect("id,value");
            (id.parse().expect("id"), v.parse().expect("value"))
        })
        .collect()
}

#[test]
fn two_jobs_each_score_with_their_own_model_of_one_name() {
    let rt = runtime(2);
    let script = |file: &str, version: &str| {
        format!(
            "CREATE SOURCE inputs (id BIGINT, temperature DOUBLE, vibration DOUBLE, pressure DOUBLE, temp_delta DOUBLE)
               WITH (connector = 'file', path = '{f}/inputs.csv');
             CREATE MODEL risk FROM '{f}/{file}' WITH (version = '{version}');
             SELECT id, predict('risk', temperature, vibration, pressure, temp_delta) AS score,
                    model_version('risk') AS version
             FROM inputs;",
            f = fixtures().display()
        )
    };
    let x = submit(&rt, &script("linear.onnx", "v1"));
    let y = submit(&rt, &script("linear_v2.onnx", "v7"));
    let err = y
        .alter_model("ALTER MODEL risk SET VERSION 'v1'")
        .expect_err("job Y has no v1");
    assert!(err.to_string().contains("no version 'v1'"), "{err}");
    for (job, file, version) in [
        (&x, "expected_linear.csv", "v1"),
        (&y, "expected_linear_v2.csv", "v7"),
    ] {
        let report = job.wait().expect("scored");
        let want = expected(file);
        let mut seen = 0;
        for b in &report.pipelines[0].results {
            let rows = weir_tests::rows(std::slice::from_ref(b));
            for r in rows {
                let id: i64 = r[0].parse().unwrap();
                let score: f64 = r[1].parse().unwrap();
                assert!((score - want[&id]).abs() < 1e-5, "{file} id {id}: {score}");
                assert_eq!(r[2], version);
                seen += 1;
            }
        }
        assert_eq!(seen, want.len(), "{file}");
    }
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_worker_panic_ends_weir_run_with_the_typed_error() {
    let dir = scratch("runtime-panic");
    let script = dir.join("p.sql");
    std::fs::write(
        &script,
        unbounded(
            &dir.join("out.jsonl"),
            0,
            ", panic_at = '1000'",
            "SELECT sensor_id, window_start, count(*) AS n FROM r
             GROUP BY sensor_id, tumble(ts, INTERVAL '10' SECOND)",
        ),
    )
    .unwrap();
    let started = Instant::now();
    let mut child = std::process::Command::new(weir_bin())
        .args([
            "run",
            script.to_str().unwrap(),
            "--workers",
            "2",
            "--progress",
            "0",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("weir");
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("weir run hung after a worker panic");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error:")
            && stderr.contains("pipeline 'p': operator Source panicked: generator: fault injected"),
        "{stderr}"
    );
}

#[test]
fn a_source_read_by_two_pipelines_of_a_job_is_read_once() {
    let dir = scratch("runtime-read-once");
    let rt = runtime(2);
    let source = "CREATE SOURCE r (sensor_id TEXT, ts BIGINT, seq BIGINT, temperature DOUBLE)
                    WITH (connector = 'generator', sensors = '20', rows = '20000', event_time = 'ts');";
    let windows = "SELECT sensor_id, window_start, count(*) AS n FROM r
                   GROUP BY sensor_id, tumble(ts, INTERVAL '10' SECOND)";
    let hot = "SELECT sensor_id, seq, temperature FROM r WHERE temperature > 62";
    let sql = format!(
        "{source}
         CREATE SINK w WITH (connector = 'file', path = '{w}', format = 'json');
         CREATE SINK h WITH (connector = 'file', path = '{h}', format = 'json');
         CREATE PIPELINE windows AS INSERT INTO w {windows};
         CREATE PIPELINE hot AS INSERT INTO h {hot};",
        w = dir.join("w.jsonl").display(),
        h = dir.join("h.jsonl").display()
    );
    let report = submit(&rt, &sql).wait().expect("both pipelines");
    // One read of the source: 20 000 rows, not 40 000, and both pipelines count them.
    let counted: Vec<u64> = report.pipelines.iter().map(|p| p.rows_in).collect();
    assert_eq!(counted, vec![20_000, 20_000]);
    let windows_out = json_lines(&dir.join("w.jsonl"));
    let total: i64 = windows_out.iter().map(|w| w["n"].as_i64().unwrap()).sum();
    assert_eq!(total, 20_000, "every reading in one window");
    // Each pipeline gives what it gives alone, in a job of its own.
    let alone = submit(&rt, &format!("{source} {hot};"))
        .wait()
        .expect("alone");
    let key = |r: &Vec<String>| (r[0].clone(), r[1].parse::<i64>().unwrap());
    let mut want: Vec<(String, i64)> = weir_tests::rows(&alone.pipelines[0].results)
        .iter()
        .map(key)
        .collect();
    let mut got: Vec<(String, i64)> = json_lines(&dir.join("h.jsonl"))
        .iter()
        .map(|r| {
            (
                r["sensor_id"].as_str().unwrap().to_string(),
                r["seq"].as_i64().unwrap(),
            )
        })
        .collect();
    want.sort();
    got.sort();
    assert!(!want.is_empty());
    assert_eq!(got, want);
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_model_given_too_few_inputs_fails_its_job_with_an_error_not_a_panic() {
    let rt = runtime(2);
    let sql = format!(
        "CREATE SOURCE inputs (id BIGINT, temperature DOUBLE, vibration DOUBLE, pressure DOUBLE, temp_delta DOUBLE)
           WITH (connector = 'file', path = '{f}/inputs.csv');
         CREATE MODEL forest FROM '{f}/iforest.onnx' WITH (inputs = '1');
         SELECT id, predict('forest', temperature) AS p FROM inputs;",
        f = fixtures().display()
    );
    let err = submit(&rt, &sql).wait().expect_err("too few inputs");
    assert_eq!(err.kind, JobErrorKind::Operator, "{err}");
    assert!(
        err.message.contains("reads more inputs than it is given"),
        "{err}"
    );
    rt.shutdown().expect("shutdown");
}

/// Two jobs declare a baseline `ref` from different files; while the first runs, the second
/// starts — each compares its windows with its own `ref` (the first with values near 50, the
/// second near 1000), before and after the other registered its baseline.
#[test]
fn two_jobs_each_compare_with_their_own_baseline_of_one_name() {
    let dir = scratch("runtime-baselines");
    let write = |name: &str, base: f64| {
        let path = dir.join(name);
        let mut text = String::from("temperature\n");
        for i in 0..100 {
            text.push_str(&format!("{}\n", base + i as f64));
        }
        std::fs::write(&path, text).expect("baseline file");
        path
    };
    let (near, far) = (write("near.csv", 20.0), write("far.csv", 1000.0));
    let job = |file: &Path, rate: u32| {
        format!(
            "CREATE BASELINE ref FROM '{}' COLUMN temperature;
             CREATE SOURCE r (sensor_id TEXT, ts BIGINT, temperature DOUBLE)
               WITH (connector = 'generator', sensors = '4', rows = '4000', rate = '{rate}',
                     event_time = 'ts');
             SELECT window_start, wasserstein(temperature, 'ref') AS w
             FROM r GROUP BY tumble(ts, INTERVAL '10' SECOND);",
            file.display()
        )
    };
    let rt = runtime(2);
    let a = submit(&rt, &job(&near, 4000));
    eventually("the first job's first windows", || rows_out(&a) > 0);
    let b = submit(&rt, &job(&far, 0));
    let (ra, rb) = (a.wait().expect("job a"), b.wait().expect("job b"));
    let w = |r: &weir_engine::RunReport| -> Vec<f64> {
        weir_tests::rows(&r.pipelines[0].results)
            .iter()
            .map(|row| row[1].parse::<f64>().expect("a distance"))
            .collect()
    };
    let (wa, wb) = (w(&ra), w(&rb));
    assert_eq!((wa.len(), wb.len()), (100, 100));
    // Temperatures sit between 50 and 110: far from 1000, near the 20..120 baseline.
    assert!(wa.iter().all(|d| *d < 60.0), "job a: {wa:?}");
    assert!(wb.iter().all(|d| *d > 800.0), "job b: {wb:?}");
    rt.shutdown().expect("shutdown");
}
