//! Updating views (non-windowed GROUP BY on differential dataflow): the changelog (`op` =
//! insert/delete) replays to the right final state — checked against the aggregate computed
//! here from the same rows — with retractions when groups change, for 1 and 2 workers.
use std::collections::BTreeMap;
use weir_tests::scratch;

fn run(script: &std::path::Path, workers: &str) {
    weir_tests::run_weir_ok(script, &["--workers", workers]);
}

#[test]
fn changelog_replays_to_the_final_state() {
    let dir = scratch("updating");
    let source = "CREATE SOURCE g (sensor_id TEXT, ts BIGINT, temperature DOUBLE)
        WITH (connector = 'generator', sensors = '10', rows = '30000', jitter = '300ms', event_time = 'ts', watermark_delay = '1s');";
    // The raw rows, to compute the expected state here.
    let raw = dir.join("raw.csv");
    let s = dir.join("raw.sql");
    std::fs::write(&s, format!("{source}\nCREATE SINK o WITH (connector = 'file', path = '{}', header = 'false');\nCREATE PIPELINE p AS INSERT INTO o SELECT sensor_id, temperature FROM g;", raw.display())).unwrap();
    run(&s, "1");
    let mut expected: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    for l in std::fs::read_to_string(&raw).unwrap().lines() {
        let (id, t) = l.split_once(',').unwrap();
        let t: f64 = t.parse().unwrap();
        let e = expected.entry(id.to_string()).or_insert((0, f64::MIN));
        e.0 += 1;
        e.1 = e.1.max(t);
    }
    assert_eq!(expected.len(), 10);
    for workers in ["1", "2"] {
        let out = dir.join(format!("changes{workers}.csv"));
        let s = dir.join(format!("view{workers}.sql"));
        std::fs::write(
            &s,
            format!(
                "{source}\nCREATE SINK o WITH (connector = 'file', path = '{}', header = 'false');
                 CREATE PIPELINE per_sensor AS INSERT INTO o
                 SELECT sensor_id, count(*) AS n, max(temperature) AS hottest FROM g GROUP BY sensor_id;",
                out.display()
            ),
        )
        .unwrap();
        run(&s, workers);
        let mut state: BTreeMap<String, String> = BTreeMap::new();
        let mut deletes = 0;
        for l in std::fs::read_to_string(&out).unwrap().lines() {
            let (row, op) = l.rsplit_once(',').unwrap();
            let key = row.split(',').next().unwrap().to_string();
            match op {
                "delete" => {
                    assert_eq!(
                        state.remove(&key).as_deref(),
                        Some(row),
                        "a delete retracts the current row"
                    );
                    deletes += 1;
                }
                "insert" => assert!(
                    state.insert(key, row.to_string()).is_none(),
                    "insert after delete: {l}"
                ),
                other => panic!("op {other}"),
            }
        }
        assert!(
            deletes > 0,
            "the groups changed over time, so there are retractions"
        );
        assert_eq!(state.len(), expected.len());
        for (k, (n, hottest)) in &expected {
            let f: Vec<&str> = state[k].split(',').collect();
            assert_eq!(f[1].parse::<u64>().unwrap(), *n, "{k}");
            assert_eq!(f[2].parse::<f64>().unwrap(), *hottest, "{k}");
        }
    }
}
