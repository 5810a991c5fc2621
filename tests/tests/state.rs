//! The state contract of the windowed aggregates (tumble, hop, session), through the planner's
//! operators: feed the first rows to P workers' operators (rows routed by the exchange's key
//! hash), snapshot each one, restore every snapshot batch's rows into Q fresh operators by
//! their route hash, feed the rest routed over Q — the output equals an uninterrupted run on
//! one operator, at every cut point, for 1→1, 1→2, 2→1 and 2→3 workers.
use datafusion::arrow::record_batch::RecordBatch;
use weir_connectors::{registry, Poll, SourceContext};
use weir_operators::state::for_worker;
use weir_operators::BatchOperator;
use weir_queries::physical::{build_stage, partitioner};
use weir_queries::plan::{OperatorSpec, Stage};
use weir_queries::session::session;

/// Generator readings: 12 sensors, out of order by up to 3 s, in batches of 97 rows.
fn readings(sql_schema: &datafusion::arrow::datatypes::Schema) -> Vec<RecordBatch> {
    let options = [
        ("sensors", "12"),
        ("rows", "3000"),
        ("jitter", "3s"),
        ("batch", "97"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut src = registry()
        .source(
            "generator",
            SourceContext {
                name: "r".into(),
                schema: std::sync::Arc::new(sql_schema.clone()),
                options,
                format: None,
                worker: 0,
                workers: 1,
                metrics: Default::default(),
                internal: Default::default(),
            },
        )
        .expect("generator");
    let mut out = Vec::new();
    loop {
        match src.poll(97).expect("poll") {
            Poll::Data { batch: Some(b), .. } => out.push(b),
            Poll::Data { .. } | Poll::Idle => {}
            Poll::Done => return out,
        }
    }
}

/// The stages of the script's only pipeline: before the aggregate, the aggregate, after it.
fn stages(
    sql: &str,
) -> (
    Vec<Stage>,
    Stage,
    Vec<Stage>,
    datafusion::arrow::datatypes::Schema,
) {
    let plan = weir_queries::compile(sql).unwrap_or_else(|e| panic!("{e}"));
    let p = &plan.pipelines[0];
    let k = p
        .stages
        .iter()
        .position(|s| matches!(s.op, OperatorSpec::WindowAggregate { .. }))
        .expect("a windowed aggregate");
    let schema = plan.sources[0].schema.clone();
    (
        p.stages[..k].to_vec(),
        p.stages[k].clone(),
        p.stages[k + 1..].to_vec(),
        schema,
    )
}

fn chain(stages: &[Stage]) -> Vec<Box<dyn BatchOperator>> {
    let s = session();
    stages
        .iter()
        .map(|st| build_stage(&s, st).expect("stage"))
        .collect()
}

fn through(ops: &mut [Box<dyn BatchOperator>], b: RecordBatch) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    weir_operators::run_chain(ops, b, &mut out).expect("chain");
    out
}

/// Output rows as sorted text.
fn sorted(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut rows = weir_tests::rows(batches);
    rows.sort();
    rows
}

/// Runs `inputs` through `workers` aggregates (routed by key), giving each the same watermarks;
/// `cut`: after that many batches, snapshot and restore onto `after` workers.
fn run(sql: &str, workers: usize, cut: Option<(usize, usize)>) -> Vec<Vec<String>> {
    let (pre, agg, post, schema) = stages(sql);
    let s = session();
    let router = partitioner(&s, &agg).expect("router");
    let mut pre = chain(&pre);
    let mut post = chain(&post);
    let new_ops = |n: usize| -> Vec<Box<dyn BatchOperator>> {
        (0..n)
            .map(|_| build_stage(&s, &agg).expect("aggregate"))
            .collect()
    };
    let mut ops = new_ops(workers);
    let mut out = Vec::new();
    let mut max_ts = i64::MIN;
    for (i, raw) in readings(&schema).into_iter().enumerate() {
        if let Some((at, after)) = cut {
            if i == at {
                let mut fresh = new_ops(after);
                for op in ops.iter_mut() {
                    let snap = op.state().expect("stateful").snapshot().expect("snapshot");
                    for b in &snap {
                        for (w, f) in fresh.iter_mut().enumerate() {
                            let part = for_worker(b, w, after).expect("route");
                            f.state()
                                .expect("stateful")
                                .restore(&[part])
                                .expect("restore");
                        }
                    }
                }
                ops = fresh;
            }
        }
        let ts = raw
            .column_by_name("ts")
            .and_then(|c| {
                c.as_any()
                    .downcast_ref::<datafusion::arrow::array::Int64Array>()
            })
            .map(|a| a.values().iter().copied().max().unwrap_or(i64::MIN))
            .unwrap_or(i64::MIN);
        max_ts = max_ts.max(ts);
        for b in through(&mut pre, raw) {
            for (w, part) in router.split(&b, ops.len()).expect("split") {
                ops[w].on_batch(&part, &mut out).expect("aggregate");
            }
        }
        // The watermark trails the jitter, as a source with watermark_delay = '3s' would.
        for op in ops.iter_mut() {
            op.on_watermark(max_ts - 3000, &mut out).expect("watermark");
        }
    }
    for op in ops.iter_mut() {
        op.on_end(&mut out).expect("end");
    }
    let done: Vec<RecordBatch> = out
        .into_iter()
        .flat_map(|b| through(&mut post, b))
        .collect();
    sorted(&done)
}

/// The same rows; numbers equal to 1e-9 relative (merged partial sums add in another order).
fn same(got: &[Vec<String>], want: &[Vec<String>], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: row count");
    for (g, w) in got.iter().zip(want) {
        let close = g.len() == w.len()
            && g.iter().zip(w).all(|(a, b)| {
                a == b
                    || match (a.parse::<f64>(), b.parse::<f64>()) {
                        (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
                        _ => false,
                    }
            });
        assert!(close, "{what}: got {g:?}, want {w:?}");
    }
}

const SOURCE: &str = "CREATE SOURCE r (sensor_id TEXT, machine_id TEXT, ts BIGINT, temperature DOUBLE, vibration DOUBLE)
    WITH (connector = 'generator', event_time = 'ts', watermark_delay = '3s');";

#[test]
fn window_state_survives_snapshot_restore_and_rescale() {
    let cases = [
        "SELECT sensor_id, window_start, count(*) AS n, avg(temperature) AS t, max(vibration) AS v,
                stddev(temperature) AS sd
         FROM r GROUP BY sensor_id, tumble(ts, INTERVAL '10' SECOND)",
        "SELECT machine_id, window_end, count(*) AS n, min(temperature) AS t, sum(vibration) AS v
         FROM r GROUP BY machine_id, hop(ts, INTERVAL '5' SECOND, INTERVAL '20' SECOND)",
        "SELECT sensor_id, window_start, window_end, count(*) AS n, avg(vibration) AS v
         FROM r WHERE temperature > 60 GROUP BY sensor_id, session(ts, INTERVAL '2' SECOND)",
    ];
    for q in cases {
        let sql = format!("{SOURCE} {q};");
        let whole = run(&sql, 1, None);
        assert!(whole.len() > 50, "{q}: {} rows", whole.len());
        for (p, after) in [(1, 1), (1, 2), (2, 1), (2, 3)] {
            same(&run(&sql, p, None), &whole, &format!("{q}: {p} workers"));
            for cut in [1, 7, 13, 22, 30] {
                let got = run(&sql, p, Some((cut, after)));
                same(
                    &got,
                    &whole,
                    &format!("{q}: cut after {cut} batches, {p} → {after}"),
                );
            }
        }
    }
}
