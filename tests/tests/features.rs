//! Per-key features against a direct computation: 6000 readings of 20 machines whose rows
//! arrive out of order (up to 300 ms late, within the 1 s watermark delay), through `OVER`
//! features with ROWS, RANGE and unbounded frames, with 1 and 2 workers; every value compared
//! with the same features computed here over each machine's rows in event-time order.
use std::collections::BTreeMap;

use crate::correctness::Lcg;
use weir_engine::{run_sql, RunOptions};
use weir_tests::{rows, scratch};

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn sd(v: &[f64]) -> Option<f64> {
    (v.len() >= 2).then(|| {
        let m = mean(v);
        (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
    })
}

#[test]
fn features_match_direct_computation() {
    let dir = scratch("features");
    let mut rng = Lcg(11);
    let mut by_machine: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    let mut csv = String::from("machine_id,ts,temp\n");
    for i in 0..300i64 {
        for m in 0..20 {
            // Distinct times per machine; arrival order is shuffled by up to 300 ms.
            let ts = i * 100 + m;
            let temp = 50.0 + (rng.next() % 4000) as f64 / 100.0;
            by_machine
                .entry(format!("m{m:02}"))
                .or_default()
                .push((ts, temp));
        }
    }
    let mut arrival: Vec<(i64, String, i64, f64)> = by_machine
        .iter()
        .flat_map(|(m, v)| v.iter().map(move |(ts, t)| (*ts, m.clone(), *ts, *t)))
        .map(|(ts, m, t2, temp)| (ts + (rng.next() % 300) as i64, m, t2, temp))
        .collect();
    arrival.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    for (_, m, ts, temp) in &arrival {
        csv.push_str(&format!("{m},{ts},{temp}\n"));
    }
    std::fs::write(dir.join("r.csv"), csv).unwrap();

    // Expected, per machine in event-time order.
    let mut expected: BTreeMap<(String, i64), Vec<Option<f64>>> = BTreeMap::new();
    for (m, v) in &by_machine {
        let mut ewma: Option<f64> = None;
        for (i, (ts, x)) in v.iter().enumerate() {
            let rows4: Vec<f64> = v[i.saturating_sub(4)..=i].iter().map(|r| r.1).collect();
            let rows9: Vec<f64> = v[i.saturating_sub(9)..=i].iter().map(|r| r.1).collect();
            let range1s: Vec<f64> = v[..=i]
                .iter()
                .filter(|r| r.0 >= ts - 1000)
                .map(|r| r.1)
                .collect();
            let range500: Vec<f64> = v[..=i]
                .iter()
                .filter(|r| r.0 >= ts - 500)
                .map(|r| r.1)
                .collect();
            ewma = Some(match ewma {
                None => *x,
                Some(p) => 0.2 * x + 0.8 * p,
            });
            let z = sd(&rows9)
                .filter(|s| *s > 0.0)
                .map(|s| (x - mean(&rows9)) / s);
            expected.insert(
                (m.clone(), *ts),
                vec![
                    Some(mean(&rows4)),
                    range1s.iter().cloned().reduce(f64::max),
                    sd(&rows9),
                    i.checked_sub(2).map(|j| v[j].1),
                    i.checked_sub(1).map(|j| x - v[j].1),
                    ewma,
                    z,
                    Some((i + 1) as f64),
                    Some(range500.iter().sum()),
                ],
            );
        }
    }
    let sql = format!(
        "CREATE SOURCE r (machine_id TEXT, ts BIGINT, temp DOUBLE)
           WITH (connector = 'file', path = '{}/r.csv', event_time = 'ts', watermark_delay = '1s');
         SELECT machine_id, ts,
           avg(temp) OVER (PARTITION BY machine_id ORDER BY ts ROWS BETWEEN 4 PRECEDING AND CURRENT ROW),
           max(temp) OVER (PARTITION BY machine_id ORDER BY ts RANGE BETWEEN 1000 PRECEDING AND CURRENT ROW),
           stddev(temp) OVER (PARTITION BY machine_id ORDER BY ts ROWS BETWEEN 9 PRECEDING AND CURRENT ROW),
           lag(temp, 2) OVER (PARTITION BY machine_id ORDER BY ts),
           delta(temp) OVER (PARTITION BY machine_id ORDER BY ts),
           ewma(temp, 0.2) OVER (PARTITION BY machine_id ORDER BY ts),
           zscore(temp) OVER (PARTITION BY machine_id ORDER BY ts ROWS BETWEEN 9 PRECEDING AND CURRENT ROW),
           count(temp) OVER (PARTITION BY machine_id ORDER BY ts),
           sum(temp) OVER (PARTITION BY machine_id ORDER BY ts RANGE BETWEEN 500 PRECEDING AND CURRENT ROW)
         FROM r;",
        dir.display()
    );
    for workers in [1, 2] {
        let opts = RunOptions {
            workers,
            ..RunOptions::default()
        };
        let report = run_sql(&sql, &opts).unwrap();
        assert_eq!(report.pipelines[0].late, 0);
        let got = rows(&report.pipelines[0].results);
        assert_eq!(got.len(), expected.len(), "workers {workers}");
        // Per machine, rows come out in event-time order.
        let mut last: BTreeMap<String, i64> = BTreeMap::new();
        for r in &got {
            let ts: i64 = r[1].parse().unwrap();
            let prev = last.insert(r[0].clone(), ts);
            assert!(
                prev.map(|p| p < ts).unwrap_or(true),
                "{} out of order at {ts}",
                r[0]
            );
            let want = &expected[&(r[0].clone(), ts)];
            for (k, w) in want.iter().enumerate() {
                let have: Option<f64> = (r[2 + k] != "NULL").then(|| r[2 + k].parse().unwrap());
                match (w, have) {
                    (None, None) => {}
                    (Some(a), Some(b)) => assert!(
                        (a - b).abs() <= 1e-9 * a.abs().max(1.0),
                        "{r:?}: feature {k}: {a} vs {b}"
                    ),
                    _ => panic!("{r:?}: feature {k}: expected {w:?}"),
                }
            }
        }
    }
}
