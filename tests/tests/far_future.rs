//! Watermark poisoning: one row with a far-future event time must not make every later row
//! late. A row more than `max_future` ahead of the highest event time its source accepted (or,
//! for a live source, of the wall clock) is a dead letter; watermarks are per pipeline, so an
//! idle source never jumps to an unrelated source's watermark.
use std::collections::BTreeMap;
use std::time::Duration;

use weir_tests::{run_weir, scratch, Mosquitto, MqttPublisher, WeirProcess};

/// 2100-01-01, in epoch ms.
const YEAR_2100: i64 = 4_102_444_800_000;

/// The summary line of `pipeline`: (rows in, late, dead-letter).
fn counts(stderr: &str, pipeline: &str) -> (u64, u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&format!("pipeline {pipeline}:")))
        .unwrap_or_else(|| panic!("no summary for {pipeline}: {stderr}"));
    let num = |key: &str| -> u64 {
        let rest = &line[line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len()..];
        rest.trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {line}"))
    };
    (num("rows in"), num("late"), num("dead-letter"))
}

/// A file of 5,000 readings 100 ms apart with one from the year 2100 in the middle: with the
/// default `max_future` it is quarantined with its line, and the windows are exactly those of
/// the other rows; with `max_future = 'off'` it poisons the watermark (every later row late).
#[test]
fn a_far_future_row_in_a_file_is_quarantined() {
    let dir = scratch("far-future-file");
    let mut csv = String::from("sensor_id,ts,v\n");
    let mut want: BTreeMap<(String, i64), u64> = BTreeMap::new();
    for i in 0..5_000i64 {
        let sensor = format!("s{}", i % 3);
        if i == 2_500 {
            csv.push_str(&format!("{sensor},{YEAR_2100},1\n"));
            continue;
        }
        let ts = 1_700_000_000_000 + i * 100;
        csv.push_str(&format!("{sensor},{ts},1\n"));
        *want.entry((sensor, ts - ts % 1000)).or_default() += 1;
    }
    std::fs::write(dir.join("r.csv"), csv).unwrap();
    for future in ["", ", max_future = 'off'"] {
        let out = dir.join("out.csv");
        let dead = dir.join("dead.jsonl");
        let _ = std::fs::remove_file(&dead);
        let script = dir.join("p.sql");
        std::fs::write(
            &script,
            format!(
                "CREATE SOURCE r (sensor_id TEXT, ts BIGINT, v DOUBLE)
                   WITH (connector = 'file', path = '{}', event_time = 'ts', dead_letter = '{}'{future});
                 CREATE SINK out WITH (connector = 'file', path = '{}', header = 'false');
                 CREATE PIPELINE w AS INSERT INTO out
                 SELECT sensor_id, window_start, count(*) AS n FROM r
                 GROUP BY sensor_id, tumble(ts, INTERVAL '1' SECOND);",
                dir.join("r.csv").display(),
                dead.display(),
                out.display()
            ),
        )
        .unwrap();
        let run = run_weir(&script, &[]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{stderr}");
        let (rows, late, dl) = counts(&stderr, "w");
        if !future.is_empty() {
            assert_eq!(
                (rows, late, dl),
                (5_000, 2_499, 0),
                "'off' keeps the old rule: {stderr}"
            );
            continue;
        }
        assert_eq!((rows, late, dl), (4_999, 0, 1), "{stderr}");
        let d: serde_json::Value =
            serde_json::from_str(std::fs::read_to_string(&dead).unwrap().trim()).unwrap();
        let position = d["position"].as_str().unwrap();
        assert!(position.ends_with("r.csv:2502"), "{d}");
        assert!(
            d["payload"]
                .as_str()
                .unwrap()
                .contains(&YEAR_2100.to_string()),
            "{d}"
        );
        assert!(d["error"].as_str().unwrap().contains("max_future"), "{d}");
        let got: BTreeMap<(String, i64), u64> = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (
                    (f[0].to_string(), f[1].parse().unwrap()),
                    f[2].parse().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, want);
    }
}

/// A live source (MQTT) judges event times against the wall clock too: a device whose clock is
/// two days ahead is quarantined even as the first message. And the MQTT source, idle at the
/// start with `idle_timeout`, does not jump to the watermark of an unrelated file source in
/// the same script (poisoned on purpose with `max_future = 'off'`): none of its rows is late.
#[test]
fn a_live_source_is_bounded_by_the_wall_clock_and_keeps_its_own_watermark() {
    let broker = Mosquitto::start("far-future");
    let dir = scratch("far-future-mqtt");
    std::fs::write(dir.join("f.csv"), format!("ts,v\n1000,1\n{YEAR_2100},2\n")).unwrap();
    let (out, dead) = (dir.join("out.csv"), dir.join("dead.jsonl"));
    let script = dir.join("p.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE SOURCE f (ts BIGINT, v DOUBLE)
               WITH (connector = 'file', path = '{}', event_time = 'ts', max_future = 'off');
             CREATE SOURCE m (ts BIGINT, v DOUBLE)
               WITH (connector = 'mqtt', url = 'mqtt://127.0.0.1:{}', topic = 'plant/t', qos = '1',
                     event_time = 'ts', idle_timeout = '100ms', max_messages = '201', dead_letter = '{}');
             CREATE SINK out WITH (connector = 'file', path = '{}', header = 'false');
             CREATE SINK fout WITH (connector = 'file', path = '{}', header = 'false');
             CREATE PIPELINE pf AS INSERT INTO fout SELECT ts, v FROM f;
             CREATE PIPELINE pm AS INSERT INTO out SELECT ts, v FROM m;",
            dir.join("f.csv").display(),
            broker.port,
            dead.display(),
            out.display(),
            dir.join("fout.csv").display(),
        ),
    )
    .unwrap();
    let mut weir = WeirProcess::start(&script, &[]);
    weir.wait_for("subscribed to", 1);
    // Idle for longer than idle_timeout before anything arrives.
    std::thread::sleep(Duration::from_millis(600));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut publisher = MqttPublisher::connect("far-future", broker.port);
    let ahead = now + 2 * 86_400_000;
    publisher.publish("plant/t", format!("{{\"ts\":{ahead},\"v\":0}}"));
    for i in 0..200 {
        publisher.publish("plant/t", format!("{{\"ts\":{},\"v\":{i}}}", now + i));
    }
    publisher.wait_acks();
    let stderr = weir.finish().join("\n");
    assert_eq!(counts(&stderr, "pm"), (200, 0, 1), "{stderr}");
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 200);
    let d: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&dead).unwrap().trim()).unwrap();
    assert_eq!(d["position"], "plant/t#0", "{d}");
    assert!(d["error"].as_str().unwrap().contains("wall clock"), "{d}");
}

/// Event times at the ends of i64 and of TIMESTAMP (the years 1677 and 2262), and a generator
/// started at i64::MAX, are dead letters — not a panic, not a wrapped window — and the other
/// rows' windows are exact.
#[test]
fn event_time_extremes_are_dead_letters_not_overflows() {
    let dir = scratch("event-time-extremes");
    let mut csv = format!("sensor_id,ts,v\ns0,{},1\ns0,{},1\n", i64::MAX, i64::MIN);
    let mut tcsv =
        String::from("sensor_id,ts,v\ns0,2262-04-11T23:47:16.854,1\ns0,1677-09-21T00:12:44,1\n");
    for i in 0..100i64 {
        csv.push_str(&format!("s0,{},1\n", 1_700_000_000_000 + i * 100));
        tcsv.push_str(&format!(
            "s0,2023-11-14T22:13:{:02}.{}00,1\n",
            20 + i / 10,
            i % 10
        ));
    }
    csv.push_str(&format!("s0,{},1\n", i64::MAX - 1));
    std::fs::write(dir.join("i.csv"), csv).unwrap();
    std::fs::write(dir.join("t.csv"), tcsv).unwrap();
    for (file, ty, dead) in [("i.csv", "BIGINT", 3), ("t.csv", "TIMESTAMP", 2)] {
        let out = dir.join(format!("out-{file}"));
        let script = dir.join("p.sql");
        std::fs::write(
            &script,
            format!(
                "CREATE SOURCE r (sensor_id TEXT, ts {ty}, v DOUBLE)
                   WITH (connector = 'file', path = '{}', event_time = 'ts');
                 CREATE SINK out WITH (connector = 'file', path = '{}', header = 'false');
                 CREATE PIPELINE w AS INSERT INTO out
                 SELECT sensor_id, count(*) AS n FROM r
                 GROUP BY sensor_id, tumble(ts, INTERVAL '1' SECOND);",
                dir.join(file).display(),
                out.display()
            ),
        )
        .unwrap();
        let run = run_weir(&script, &[]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{file}: {stderr}");
        assert_eq!(counts(&stderr, "w"), (100, 0, dead), "{file}: {stderr}");
        let mut n: Vec<u64> = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
            .collect();
        n.sort();
        assert_eq!(n, vec![10; 10], "{file}: ten windows of ten rows");
    }
    let script = dir.join("g.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE SOURCE g (sensor_id TEXT, ts BIGINT, temperature DOUBLE)
               WITH (connector = 'generator', rows = '50', start = '{}', event_time = 'ts');
             CREATE SINK out WITH (connector = 'file', path = '{}', header = 'false');
             CREATE PIPELINE w AS INSERT INTO out
             SELECT sensor_id, count(*) AS n FROM g GROUP BY sensor_id, tumble(ts, INTERVAL '1' SECOND);",
            i64::MAX,
            dir.join("g.csv").display()
        ),
    )
    .unwrap();
    let run = run_weir(&script, &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert_eq!(counts(&stderr, "w"), (0, 0, 50), "{stderr}");
}

/// Sparse data is not an outlier: readings three hours apart and a five-day gap are rows
/// (the stream does not come back after the jump), while a first row from the year 2100 is
/// quarantined (the rows after it are back in 2023).
#[test]
fn gaps_in_sparse_data_are_rows_and_a_first_outlier_is_not() {
    let dir = scratch("far-future-sparse");
    let mut csv = format!("sensor_id,ts,v\ns0,{YEAR_2100},1\n");
    let mut t = 1_700_000_000_000i64;
    for i in 0..150 {
        t += if i == 100 {
            5 * 86_400_000
        } else {
            3 * 3_600_000
        };
        csv.push_str(&format!("s{},{t},1\n", i % 2));
    }
    std::fs::write(dir.join("s.csv"), csv).unwrap();
    let script = dir.join("p.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE SOURCE r (sensor_id TEXT, ts BIGINT, v DOUBLE)
               WITH (connector = 'file', path = '{}', event_time = 'ts');
             CREATE SINK out WITH (connector = 'file', path = '{}', header = 'false');
             CREATE PIPELINE w AS INSERT INTO out
             SELECT sensor_id, count(*) AS n FROM r GROUP BY sensor_id, tumble(ts, INTERVAL '1' HOUR);",
            dir.join("s.csv").display(),
            dir.join("out.csv").display()
        ),
    )
    .unwrap();
    let run = run_weir(&script, &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert_eq!(counts(&stderr, "w"), (150, 0, 1), "{stderr}");
    let out = std::fs::read_to_string(dir.join("out.csv")).unwrap();
    assert_eq!(out.lines().count(), 150, "one window per reading: {out}");
}
