//! Stopping a job at a cut and continuing it in a fresh job gives what an uninterrupted run
//! gives: over the `.slt` window, feature, join and view cases (every query cut at several
//! event times, workers 1 → 1, 2 → 2, 1 → 2, 2 → 1), and over generated readings through
//! windows, features with detectors, an interval join and a view, cut at many points.
use weir_engine::{JobStatus, Runtime, RuntimeOptions, SubmitOptions};
use weir_queries::job_plan::JobPlan;

#[test]
fn slt_windows_cut() {
    weir_tests::cut::run_slt_dir_cut("windows");
}

#[test]
fn slt_features_cut() {
    weir_tests::cut::run_slt_dir_cut("features");
}

#[test]
fn slt_joins_cut() {
    weir_tests::cut::run_slt_dir_cut("joins");
}

#[test]
fn slt_views_cut() {
    weir_tests::cut::run_slt_dir_cut("views");
}

#[test]
fn slt_late_cut() {
    weir_tests::cut::run_slt_dir_cut("late");
}

/// Generated readings (out of order by up to 2 s, watermark delay 2 s) through each stateful
/// operator; floats rounded, as rows meet the aggregates in another order on other workers.
const PIPELINES: &[&str] = &[
    "SELECT machine_id, window_start, count(*) AS n, round(avg(temperature), 6) AS t, \
     round(max(vibration), 6) AS v FROM r GROUP BY machine_id, hop(ts, INTERVAL '10' SECOND, INTERVAL '30' SECOND)",
    "SELECT sensor_id, window_start, window_end, count(*) AS n FROM r \
     GROUP BY sensor_id, session(ts, INTERVAL '1500' MILLISECOND)",
    "SELECT sensor_id, ts, round(avg(temperature) OVER (PARTITION BY sensor_id ORDER BY ts \
     ROWS BETWEEN 5 PRECEDING AND CURRENT ROW), 6) AS a, \
     round(ewma(temperature, 0.3) OVER (PARTITION BY sensor_id ORDER BY ts), 6) AS e, \
     lag(temperature, 2) OVER (PARTITION BY sensor_id ORDER BY ts) AS l2, \
     adwin(temperature) OVER (PARTITION BY sensor_id ORDER BY ts) AS drift, \
     page_hinkley(temperature) OVER (PARTITION BY sensor_id ORDER BY ts) AS ph FROM r",
    "SELECT a.sensor_id, a.ts, b.ts AS bts FROM r a JOIN q b ON a.machine_id = b.machine_id \
     AND b.ts BETWEEN a.ts - 1000 AND a.ts + 1000",
    "SELECT sensor_id, machine_id, count(*) AS n, round(sum(pressure), 6) AS p FROM r GROUP BY sensor_id, machine_id",
];

fn script(query: &str) -> String {
    let gen = |name: &str, seed: u32| {
        format!(
            "CREATE SOURCE {name} (sensor_id TEXT, machine_id TEXT, ts BIGINT, temperature DOUBLE, \
             vibration DOUBLE, pressure DOUBLE) WITH (connector = 'generator', sensors = '12', \
             rows = '2400', jitter = '2s', batch = '97', seed = '{seed}', anomalies = 'level_shift:0.02', \
             event_time = 'ts', watermark_delay = '2s');\n"
        )
    };
    format!("{}{}{query};", gen("r", 7), gen("q", 8))
}

fn rows_of(report: &weir_engine::RunReport) -> Vec<Vec<String>> {
    weir_tests::rows(&report.pipelines[0].results)
}

/// The rows a changelog leaves, or the rows, sorted.
fn net(rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    let mut count: std::collections::BTreeMap<Vec<String>, i64> = Default::default();
    for r in rows {
        match r.split_last() {
            Some((op, row)) if op == "delete" => *count.entry(row.to_vec()).or_default() -= 1,
            Some((op, row)) if op == "insert" => *count.entry(row.to_vec()).or_default() += 1,
            _ => *count.entry(r).or_default() += 1,
        }
    }
    count
        .into_iter()
        .flat_map(|(r, n)| std::iter::repeat_n(r, n.max(0) as usize))
        .collect()
}

/// The report of a job of `graph` on `rt` continued from `snap`.
fn continued(
    rt: &Runtime,
    graph: &JobPlan,
    snap: weir_engine::JobSnapshot,
) -> weir_engine::RunReport {
    let opts = SubmitOptions {
        restore: Some(snap),
        ..Default::default()
    };
    let job = rt.submit_with(graph, Vec::new(), opts).expect("submit");
    job.wait().expect("restored run")
}

fn runtime(workers: usize) -> Runtime {
    Runtime::start(&RuntimeOptions {
        workers,
        cluster: None,
    })
    .expect("runtime")
}

#[test]
fn generated_readings_cut_anywhere_equal_an_uninterrupted_run() {
    let rt = [runtime(1), runtime(2)];
    // Event times run from 1 700 000 000 000 for 200 s (12 sensors, 2400 rows).
    let start = 1_700_000_000_000i64;
    let cuts = [0, 7_300, 49_000, 100_000, 151_700, 199_000, 400_000];
    for (qi, q) in PIPELINES.iter().enumerate() {
        let plan = weir_queries::compile(&script(q)).unwrap_or_else(|e| panic!("{q}: {e}"));
        let graph = JobPlan::new("gen", plan);
        let whole = rt[0].submit(&graph, Vec::new()).expect("submit");
        let want = net(rows_of(&whole.wait().expect("uninterrupted run")));
        assert!(want.len() > 10, "query {qi} gives rows: {}", want.len());
        for (i, cut) in cuts.iter().enumerate() {
            let (b, a) = [(0, 1), (1, 0), (1, 1), (0, 0)][i % 4];
            let first = rt[b]
                .submit_with(
                    &graph,
                    Vec::new(),
                    SubmitOptions {
                        suspend_at: Some(start + cut),
                        restore: None,
                        ..Default::default()
                    },
                )
                .expect("submit");
            let r1 = first.wait().expect("suspended run");
            assert_eq!(first.status(), JobStatus::Suspended);
            let snap = first.snapshot().expect("a snapshot");
            let r2 = continued(&rt[a], &graph, snap);
            let mut got = rows_of(&r1);
            got.extend(rows_of(&r2));
            assert_eq!(
                net(got),
                want,
                "query {qi} cut at +{cut} ms, workers {} → {}",
                b + 1,
                a + 1
            );
        }
    }
    for r in rt {
        r.shutdown().expect("shutdown");
    }
}

/// A running job suspended at once (`StopMode::Suspend`, from outside, wherever it is) and
/// continued on another number of workers gives what an uninterrupted run gives.
#[test]
fn a_job_suspended_while_it_runs_continues_where_it_stopped() {
    let sql = "CREATE SOURCE r (sensor_id TEXT, machine_id TEXT, ts BIGINT, temperature DOUBLE)
               WITH (connector = 'generator', sensors = '16', rows = '20000', rate = '10000',
                     batch = '50', jitter = '500ms', event_time = 'ts', watermark_delay = '1s');
               SELECT machine_id, window_start, count(*) AS n, round(sum(temperature), 6) AS t
               FROM r GROUP BY machine_id, tumble(ts, INTERVAL '5' SECOND);";
    let graph = JobPlan::new("live", weir_queries::compile(sql).expect("compile"));
    let rt = [runtime(1), runtime(2)];
    let whole = rt[0].submit(&graph, Vec::new()).expect("submit");
    let want = net(rows_of(&whole.wait().expect("uninterrupted")));
    let first = rt[1].submit(&graph, Vec::new()).expect("submit");
    let start = std::time::Instant::now();
    while first.metrics().iter().map(|m| m.rows_out).sum::<u64>() < 20 {
        assert!(start.elapsed().as_secs() < 60, "no windows closed");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    first.stop(weir_engine::StopMode::Suspend);
    let r1 = first.wait().expect("suspended");
    assert_eq!(first.status(), JobStatus::Suspended);
    let snap = first.snapshot().expect("a snapshot");
    assert!(snap.state_rows() > 0, "open windows in the snapshot");
    let r2 = continued(&rt[0], &graph, snap);
    assert!(!rows_of(&r1).is_empty() && !rows_of(&r2).is_empty());
    let mut got = rows_of(&r1);
    got.extend(rows_of(&r2));
    assert_eq!(net(got), want);
    for r in rt {
        r.shutdown().expect("shutdown");
    }
}

/// Each operator cut twice at random points (a fixed seed) and continued on another number
/// of workers each time — 2 → 1 → 3 — gives an uninterrupted run's rows.
#[test]
fn cut_twice_at_random_points_on_two_then_one_then_three_workers() {
    let rt = [runtime(1), runtime(2), runtime(3)];
    let start = 1_700_000_000_000i64;
    let mut seed = 0x0dd_u64;
    let mut next = |span: i64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as i64) % span
    };
    for (qi, q) in PIPELINES.iter().enumerate() {
        let plan = weir_queries::compile(&script(q)).unwrap_or_else(|e| panic!("{q}: {e}"));
        let graph = JobPlan::new("gen", plan);
        let whole = rt[0].submit(&graph, Vec::new()).expect("submit");
        let want = net(rows_of(&whole.wait().expect("uninterrupted run")));
        for _ in 0..3 {
            let first_cut = start + next(150_000);
            let second_cut = first_cut + next(60_000);
            let mut got = Vec::new();
            let mut restore = None;
            for (w, cut) in [(1, Some(first_cut)), (0, Some(second_cut)), (2, None)] {
                let opts = SubmitOptions {
                    suspend_at: cut,
                    restore: restore.take(),
                    ..Default::default()
                };
                let job = rt[w].submit_with(&graph, Vec::new(), opts).expect("submit");
                got.extend(rows_of(&job.wait().expect("a part of the run")));
                restore = job.snapshot();
                assert_eq!(restore.is_some(), cut.is_some(), "query {qi}");
            }
            assert_eq!(
                net(got),
                want,
                "query {qi} cut at +{} and +{} ms",
                first_cut - start,
                second_cut - start
            );
        }
    }
    for r in rt {
        r.shutdown().expect("shutdown");
    }
}
