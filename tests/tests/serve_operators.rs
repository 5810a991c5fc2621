//! Rows in and out per operator for the stateful operators that run in adapters of their own —
//! a lookup join, an interval join and an updating aggregate — in a served pipeline's status:
//! each stage takes what the one before gave, the lookup join gives the readings of known
//! machines, the interval join takes both of its inputs (and only its query counts the
//! second) and gives what the sink wrote, and the updating aggregate takes every reading.
use std::fmt::Write;
use std::time::Duration;

use serde_json::{json, Value};
use weir_tests::scratch;
use weir_tests::serve::WeirServer;

const READINGS: usize = 1200;

fn inputs(dir: &std::path::Path) -> usize {
    let mut r = String::from("machine_id,ts,temp\n");
    for i in 0..READINGS {
        let _ = writeln!(r, "m{},{},{}", i % 4, i * 50, i % 90);
    }
    std::fs::write(dir.join("readings.csv"), r).expect("readings");
    let mut m = String::from("machine_id,line,valid_from,op\n");
    for k in 0..3 {
        let _ = writeln!(m, "m{k},line{k},0,upsert");
    }
    std::fs::write(dir.join("machines.csv"), m).expect("machines");
    let mut l = String::from("machine_id,lts,failed\n");
    let mut labels = 0;
    for k in 0..12 {
        for m in 0..4 {
            let _ = writeln!(l, "m{m},{},{}", k * 5000 + 100, k % 2);
            labels += 1;
        }
    }
    std::fs::write(dir.join("labels.csv"), l).expect("labels");
    labels
}

fn query<'a>(st: &'a Value, name: &str) -> &'a Value {
    let qs = st["queries"].as_array().expect("queries");
    qs.iter().find(|q| q["name"] == name).expect(name)
}

/// The operators of `q`, checked to take what the one before gave (the interval join
/// excepted: it has a second input, and the query's rows in count both); the one of `kind`.
fn operator<'a>(q: &'a Value, kind: &str) -> &'a Value {
    let ops = q["operators"].as_array().expect("operators");
    if kind != "interval_join" {
        assert_eq!(ops[0]["rows_in"], q["rows_in"], "{q}");
    }
    for w in ops.windows(2) {
        if w[1]["kind"] != "interval_join" {
            assert_eq!(w[1]["rows_in"], w[0]["rows_out"], "{q}");
        }
    }
    assert_eq!(
        ops.last().map(|o| &o["rows_out"]),
        Some(&q["rows_out"]),
        "{q}"
    );
    ops.iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("{kind}: {q}"))
}

#[test]
fn joins_and_updating_aggregates_are_counted_per_operator() {
    let dir = scratch("serve-operators");
    let labels = inputs(&dir);
    let d = dir.display();
    let sql = format!(
        "CREATE TABLE machines (machine_id TEXT, line TEXT, valid_from BIGINT, op TEXT, PRIMARY KEY (machine_id))
           WITH (connector = 'file', path = '{d}/machines.csv', event_time = 'valid_from', op_column = 'op');
         CREATE SOURCE readings (machine_id TEXT, ts BIGINT, temp BIGINT)
           WITH (connector = 'file', path = '{d}/readings.csv', event_time = 'ts', watermark_delay = '500ms');
         CREATE SOURCE labels (machine_id TEXT, lts BIGINT, failed BIGINT)
           WITH (connector = 'file', path = '{d}/labels.csv', event_time = 'lts', watermark_delay = '500ms');
         CREATE SINK known WITH (connector = 'file', path = '{d}/known.csv', format = 'csv');
         CREATE SINK paired WITH (connector = 'file', path = '{d}/pairs.csv', format = 'csv');
         CREATE SINK totals WITH (connector = 'table', key = 'machine_id');
         CREATE PIPELINE enrich AS INSERT INTO known
         SELECT r.machine_id, r.ts, m.line
         FROM readings r LEFT JOIN machines FOR SYSTEM_TIME AS OF r.ts AS m ON r.machine_id = m.machine_id
         WHERE m.line IS NOT NULL;
         CREATE PIPELINE validate AS INSERT INTO paired
         SELECT r.machine_id, r.ts, l.failed
         FROM readings r JOIN labels l ON r.machine_id = l.machine_id AND l.lts BETWEEN r.ts - 300 AND r.ts + 700;
         CREATE PIPELINE count_per_machine AS INSERT INTO totals
         SELECT machine_id, count(*) AS n FROM readings GROUP BY machine_id;"
    );
    let s = WeirServer::start(&dir.join("state"), &[]);
    let body = json!({"name": "ops", "sql": sql});
    let r = s.must("POST", "/api/v1/pipelines", Some(&body));
    assert_eq!(r.status, 201, "{r:?}");
    s.wait_state("ops", "finished", Duration::from_secs(60));
    let st = s.status("ops");
    let lines = |f: &str| {
        let text = std::fs::read_to_string(dir.join(f)).expect(f);
        text.lines().count() - 1
    };

    let enrich = query(&st, "enrich");
    // The filter on the joined column runs in the join: it gives the known machines' rows.
    assert_eq!(
        enrich["rows_in"].as_u64(),
        Some(READINGS as u64),
        "one input: {enrich}"
    );
    let join = operator(enrich, "lookup_join");
    let known = READINGS * 3 / 4;
    assert_eq!(join["rows_in"].as_u64(), Some(READINGS as u64), "{enrich}");
    assert_eq!(join["rows_out"].as_u64(), Some(known as u64), "{enrich}");
    assert_eq!(lines("known.csv"), known);
    assert_eq!(enrich["rows_out"].as_u64(), Some(known as u64), "{enrich}");

    let validate = query(&st, "validate");
    let pairs = operator(validate, "interval_join");
    let both = (READINGS + labels) as u64;
    assert_eq!(
        pairs["rows_in"].as_u64(),
        Some(both),
        "both inputs: {validate}"
    );
    assert_eq!(validate["rows_in"].as_u64(), Some(both), "{validate}");
    let paired = lines("pairs.csv") as u64;
    assert!(paired > 0);
    assert_eq!(pairs["rows_out"].as_u64(), Some(paired), "{validate}");

    let totals = query(&st, "count_per_machine");
    let agg = operator(totals, "updating_aggregate");
    assert_eq!(agg["rows_in"].as_u64(), Some(READINGS as u64), "{totals}");
    let out = agg["rows_out"].as_u64().unwrap_or(0);
    assert!(
        (4..=2 * READINGS as u64).contains(&out),
        "changes: {totals}"
    );
    let t = s.must(
        "POST",
        "/api/v1/query",
        Some(&json!({"sql": "SELECT sum(n) AS n FROM totals"})),
    );
    assert_eq!(
        t.json()["rows"][0]["n"].as_i64(),
        Some(READINGS as i64),
        "{t:?}"
    );
    s.terminate();
}
