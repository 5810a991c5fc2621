//! Joins against an independent computation through the `weir` binary: 40k readings (200
//! machines, out of order within the watermark delay) lookup-joined with a machine table whose
//! rows are updated and deleted over event time, and interval-joined with a stream of labels;
//! every output row compared with the join computed here, with 1 and 2 workers and as two
//! processes.
use std::collections::BTreeMap;

use crate::correctness::{run_weir, Lcg, Mode};
use weir_tests::scratch;

/// A machine-table version: (valid_from, Some((line, rated)) or None for a delete).
type Version = (i64, Option<(String, i64)>);

fn csv_rows(path: &std::path::Path) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .map(|f| f.trim_end_matches(".0").to_string())
                .collect()
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn joins_match_direct_computation() {
    let dir = scratch("joins");
    let mut rng = Lcg(7);
    let machines = 200;
    // Table: a first version at 0, two updates at random times, and a delete at 40 s for every
    // 17th machine.
    let mut versions: BTreeMap<String, Vec<Version>> = BTreeMap::new();
    let mut table_rows = Vec::new();
    for m in 0..machines {
        let id = format!("m{m}");
        let mut vs: Vec<Version> = vec![(0, Some((format!("L{}", m % 4), 60 + m % 30)))];
        for _ in 0..2 {
            let t = (rng.next() % 60_000) as i64;
            vs.push((
                t,
                Some((
                    format!("L{}", rng.next() % 4),
                    50 + (rng.next() % 40) as i64,
                )),
            ));
        }
        if m % 17 == 0 {
            vs.push((40_000, None));
        }
        vs.sort_by_key(|v| v.0);
        vs.dedup_by_key(|v| v.0);
        for v in &vs {
            table_rows.push((v.0, id.clone(), v.1.clone()));
        }
        versions.insert(id, vs);
    }
    table_rows.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let mut table = String::from("machine_id,line,rated,valid_from,op\n");
    for (t, id, v) in &table_rows {
        match v {
            Some((line, rated)) => table.push_str(&format!("{id},{line},{rated},{t},\n")),
            None => table.push_str(&format!("{id},,,{t},delete\n")),
        }
    }
    std::fs::write(dir.join("machines.csv"), table).unwrap();

    // Readings: ts ≈ 1.5 ms apart with up to 200 ms of jitter; labels every ~12 ms.
    let mut readings = Vec::new();
    let mut csv = String::from("machine_id,ts,temp\n");
    for i in 0..40_000i64 {
        let ts = i * 3 / 2 + (rng.next() % 200) as i64;
        let m = format!("m{}", rng.next() % machines as u64);
        let temp = 40 + (rng.next() % 60) as i64;
        csv.push_str(&format!("{m},{ts},{temp}\n"));
        readings.push((m, ts, temp));
    }
    std::fs::write(dir.join("readings.csv"), csv).unwrap();
    let mut labels = Vec::new();
    let mut csv = String::from("machine_id,lts,failed\n");
    for i in 0..5_000i64 {
        let lts = i * 12 + (rng.next() % 200) as i64;
        let m = format!("m{}", rng.next() % machines as u64);
        let failed = (rng.next() % 2) as i64;
        csv.push_str(&format!("{m},{lts},{failed}\n"));
        labels.push((m, lts, failed));
    }
    std::fs::write(dir.join("labels.csv"), csv).unwrap();

    // Expected lookup: the last version with valid_from <= ts; a delete or nothing gives NULLs.
    let mut lookup: Vec<Vec<String>> = readings
        .iter()
        .map(|(m, ts, temp)| {
            let v = versions[m]
                .iter()
                .rev()
                .find(|v| v.0 <= *ts)
                .and_then(|v| v.1.clone());
            let (line, rated) = match v {
                Some((l, r)) => (l, r.to_string()),
                None => (String::new(), String::new()),
            };
            vec![m.clone(), ts.to_string(), temp.to_string(), line, rated]
        })
        .collect();
    lookup.sort();
    // Expected interval join: l.lts in [r.ts - 300, r.ts + 700].
    let mut by_machine: BTreeMap<&str, Vec<&(String, i64, i64)>> = BTreeMap::new();
    for l in &labels {
        by_machine.entry(l.0.as_str()).or_default().push(l);
    }
    let mut pairs: Vec<Vec<String>> = Vec::new();
    for (m, ts, temp) in &readings {
        for l in by_machine.get(m.as_str()).into_iter().flatten() {
            if l.1 >= ts - 300 && l.1 <= ts + 700 {
                pairs.push(vec![
                    m.clone(),
                    ts.to_string(),
                    temp.to_string(),
                    l.1.to_string(),
                    l.2.to_string(),
                ]);
            }
        }
    }
    pairs.sort();
    assert!(pairs.len() > 1000 && lookup.iter().any(|r| r[4].is_empty()));

    let script = dir.join("joins.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE TABLE machines (machine_id TEXT, line TEXT, rated BIGINT, valid_from BIGINT, op TEXT, PRIMARY KEY (machine_id))
               WITH (connector = 'file', path = '{d}/machines.csv', event_time = 'valid_from', op_column = 'op');
             CREATE SOURCE readings (machine_id TEXT, ts BIGINT, temp BIGINT)
               WITH (connector = 'file', path = '{d}/readings.csv', event_time = 'ts', watermark_delay = '500ms');
             CREATE SOURCE labels (machine_id TEXT, lts BIGINT, failed BIGINT)
               WITH (connector = 'file', path = '{d}/labels.csv', event_time = 'lts', watermark_delay = '500ms');
             CREATE SINK looked_up WITH (connector = 'file', path = '{d}/lookup.csv', format = 'csv');
             CREATE SINK paired WITH (connector = 'file', path = '{d}/pairs.csv', format = 'csv');
             CREATE PIPELINE enrich AS INSERT INTO looked_up
             SELECT r.machine_id, r.ts, r.temp, m.line, m.rated
             FROM readings r LEFT JOIN machines FOR SYSTEM_TIME AS OF r.ts AS m ON r.machine_id = m.machine_id;
             CREATE PIPELINE validate AS INSERT INTO paired
             SELECT r.machine_id, r.ts, r.temp, l.lts, l.failed
             FROM readings r JOIN labels l ON r.machine_id = l.machine_id AND l.lts BETWEEN r.ts - 300 AND r.ts + 700;",
            d = dir.display()
        ),
    )
    .unwrap();
    for mode in [Mode::Workers(1), Mode::Workers(2), Mode::Cluster] {
        let stderr = run_weir(&dir, &script, mode);
        assert!(stderr.contains("late 0"), "{mode:?}: {stderr}");
        let got = csv_rows(&dir.join("lookup.csv"));
        assert_eq!(got.len(), lookup.len(), "{mode:?}");
        assert!(got == lookup, "{mode:?}: lookup join differs");
        let got = csv_rows(&dir.join("pairs.csv"));
        assert_eq!(got.len(), pairs.len(), "{mode:?}");
        assert!(got == pairs, "{mode:?}: interval join differs");
    }
}
