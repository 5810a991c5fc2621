//! Synthetic anomalies from the generator, read through SQL: every kind appears at its
//! configured rate (episode starts per eligible reading, within 4 binomial standard deviations),
//! each label matches what was done to the value, and a seed reproduces the stream exactly.
use std::collections::BTreeMap;

use weir_tests::{sort_by_key_and_time, sql_rows};

const KINDS: [(&str, f64, usize); 6] = [
    ("spike", 0.004, 1),
    ("level_shift", 0.0005, 60),
    ("drift", 0.0003, 120),
    ("stuck", 0.0005, 30),
    ("dropout", 0.001, 10),
    ("noise", 0.0005, 20),
];

fn stream(seed: u64) -> Vec<Vec<String>> {
    let spec: Vec<String> = KINDS.iter().map(|(k, r, _)| format!("{k}:{r}")).collect();
    let sql = format!(
        "CREATE SOURCE g (sensor_id TEXT, seq BIGINT, ts BIGINT, temperature DOUBLE, anomaly TEXT)
           WITH (connector = 'generator', sensors = '50', rows = '200000', seed = '{seed}',
                 anomalies = '{}', event_time = 'ts');
         SELECT sensor_id, seq, temperature, anomaly FROM g;",
        spec.join(",")
    );
    let mut r = sql_rows(&sql, 1);
    sort_by_key_and_time(&mut r);
    r
}

#[test]
fn anomalies_of_each_kind_at_their_rates_with_labels() {
    let rows = stream(3);
    assert_eq!(rows.len(), 200_000);
    let mut by_sensor: BTreeMap<&str, Vec<&Vec<String>>> = BTreeMap::new();
    for r in &rows {
        by_sensor.entry(r[0].as_str()).or_default().push(r);
    }
    let mut starts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut eligible = 0usize;
    for list in by_sensor.values() {
        let mut i = 0;
        while i < list.len() {
            let label = list[i][3].as_str();
            if label == "none" {
                eligible += 1;
                assert_ne!(list[i][2], "NULL", "a clean reading has a value");
                i += 1;
                continue;
            }
            let (_, _, len) = KINDS
                .iter()
                .find(|k| k.0 == label)
                .unwrap_or_else(|| panic!("label {label}"));
            // One episode: `len` readings of this label (fewer only at the end of the stream).
            let end = (i + len).min(list.len());
            assert!(
                list[i..end].iter().all(|r| r[3] == label),
                "{label} episode at {:?}",
                list[i]
            );
            eligible += 1;
            *starts.entry(label).or_default() += 1;
            let value = |r: &Vec<String>| r[2].parse::<f64>().ok();
            match label {
                "dropout" => assert!(list[i..end].iter().all(|r| r[2] == "NULL")),
                "stuck" => assert!(list[i..end].iter().all(|r| r[2] == list[i][2])),
                "spike" => {
                    let before = (i > 0).then(|| value(list[i - 1])).flatten();
                    if let (Some(b), Some(v)) = (before, value(list[i])) {
                        if list[i - 1][3] == "none" {
                            assert!(v - b > 6.0, "spike {v} after {b}");
                        }
                    }
                }
                _ => {}
            }
            i = end;
        }
    }
    let mut free = 1.0;
    for (kind, rate, _) in KINDS {
        // A kind is drawn only when the ones before it were not.
        let p = rate * free;
        free *= 1.0 - rate;
        let expected = eligible as f64 * p;
        let got = *starts.get(kind).unwrap_or(&0) as f64;
        let sd = (eligible as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (got - expected).abs() <= 4.0 * sd + 1.0,
            "{kind}: {got} episodes, expected {expected:.1} ± {:.1}",
            4.0 * sd
        );
    }
}

#[test]
fn a_seed_reproduces_the_anomalies() {
    let (a, b, c) = (stream(5), stream(5), stream(6));
    assert_eq!(a, b);
    let labels = |s: &Vec<Vec<String>>| s.iter().map(|r| r[3].clone()).collect::<Vec<_>>();
    assert_ne!(labels(&a), labels(&c));
}
