//! Record provenance of a windowed aggregate over a file source: every output row's
//! `provenance` names its input lines; reading them back (`weir trace`) gives exactly the rows
//! of that sensor and window, and recomputing the aggregate from them gives the same values.
//! Rows arrive out of order, and a malformed line (a dead letter) is never named.
use std::collections::BTreeSet;

use crate::correctness::Lcg;
use weir_tests::{run_weir_ok, scratch, weir_ok};

const MODELS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/models");

/// The `(partition, position)` pairs a partitioned provenance value names under `key`
/// (`offsets`, `sequences`).
fn named_positions(v: &serde_json::Value, key: &str) -> Vec<(i32, i64)> {
    let mut out = Vec::new();
    for (part, ranges) in v[key].as_object().unwrap() {
        for rg in ranges.as_array().unwrap() {
            for o in rg[0].as_i64().unwrap()..=rg[1].as_i64().unwrap() {
                out.push((part.parse::<i32>().unwrap(), o));
            }
        }
    }
    out
}

/// Checks that the JSON `records` are readings of output row `r`'s machine and 1-second
/// window, and that their count and sum are the row's.
fn check_window_records(r: &serde_json::Value, records: &[String]) {
    let start = r["window_start"].as_i64().unwrap();
    let mut sum = 0.0;
    for t in records {
        let rec: serde_json::Value = serde_json::from_str(t).unwrap();
        assert_eq!(rec["machine_id"], r["machine_id"], "{r}: {t}");
        let ts = rec["ts"].as_i64().unwrap();
        assert!(ts >= start && ts < start + 1000, "{r}: {t}");
        sum += rec["v"].as_f64().unwrap();
    }
    assert_eq!(records.len() as u64, r["n"].as_u64().unwrap(), "{r}");
    assert!((sum - r["total"].as_f64().unwrap()).abs() < 1e-6, "{r}");
}

/// Writes `sql` to `dir/p{workers}.sql` after a sink `out` that writes JSON lines to
/// `dir/w{workers}.jsonl`, runs it with `workers`; returns its plan and the rows it wrote.
fn run_script(
    dir: &std::path::Path,
    workers: &str,
    sql: &str,
) -> (weir_queries::plan::ScriptPlan, Vec<serde_json::Value>) {
    let out = dir.join(format!("w{workers}.jsonl"));
    let script = dir.join(format!("p{workers}.sql"));
    let sink = format!(
        "CREATE SINK out WITH (connector = 'file', path = '{}', format = 'json');\n",
        out.display()
    );
    std::fs::write(&script, sink + sql).unwrap();
    run_weir_ok(&script, &["--workers", workers]);
    let plan = weir_queries::compile(&std::fs::read_to_string(&script).unwrap()).unwrap();
    (plan, json_lines(&out))
}

/// The JSON rows of a file sink.
fn json_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn provenance_recovers_the_rows_behind_each_window() {
    let dir = scratch("provenance");
    let mut rng = Lcg(5);
    let mut csv = String::from("sensor_id,ts,v\n");
    let mut good = BTreeSet::new();
    for i in 0..3000u64 {
        let line = i + 2;
        if i == 1234 {
            csv.push_str("s1,not-a-number,3\n");
            continue;
        }
        let ts = i as i64 * 7 + (rng.next() % 300) as i64;
        csv.push_str(&format!(
            "s{},{ts},{}\n",
            rng.next() % 10,
            (rng.next() % 1000) as f64 / 10.0
        ));
        good.insert(line);
    }
    std::fs::write(dir.join("r.csv"), &csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    for workers in ["1", "2"] {
        let sql = format!(
            "CREATE SOURCE readings (sensor_id TEXT, ts BIGINT, v DOUBLE)
               WITH (connector = 'file', path = '{d}/r.csv', event_time = 'ts', watermark_delay = '1s',
                     dead_letter = '{d}/dead{workers}.jsonl');
             CREATE MODEL risk FROM '{m}/linear.onnx' WITH (version = 'v3');
             CREATE PIPELINE per_second WITH (provenance = 'true') AS INSERT INTO out
             SELECT sensor_id, window_start, count(*) AS n, sum(v) AS total,
                    avg(predict('risk', v, v, v, 0.0)) AS mean_risk
             FROM readings GROUP BY sensor_id, tumble(ts, INTERVAL '1' SECOND);",
            d = dir.display(),
            m = MODELS
        );
        let (plan, rows) = run_script(&dir, workers, &sql);
        let mut covered = BTreeSet::new();
        assert!(rows.len() > 100);
        for r in &rows {
            let p = r["provenance"].as_str().unwrap();
            let traced = weir_engine::trace::trace(&plan, p).unwrap();
            assert_eq!(traced[0], "sensor_id,ts,v");
            let (start, sensor) = (
                r["window_start"].as_i64().unwrap(),
                r["sensor_id"].as_str().unwrap(),
            );
            let mut sum = 0.0;
            for t in &traced[1..] {
                let f: Vec<&str> = t.split(',').collect();
                assert_eq!(f[0], sensor, "{p}");
                let ts: i64 = f[1].parse().unwrap();
                assert!(ts >= start && ts < start + 1000, "{p}: {t}");
                sum += f[2].parse::<f64>().unwrap();
            }
            let v: serde_json::Value = serde_json::from_str(p).unwrap();
            // The value names the window and the model version too.
            assert_eq!(v["window_start"], start, "{p}");
            assert_eq!(v["window_end"], start + 1000, "{p}");
            assert_eq!(v["models"]["risk"], "v3", "{p}");
            for r in v["lines"].as_array().unwrap() {
                for n in r[0].as_u64().unwrap()..=r[1].as_u64().unwrap() {
                    assert!(covered.insert(n), "line {n} in two windows");
                    assert!(lines[n as usize - 1].starts_with(&format!("{sensor},")));
                }
            }
            assert_eq!(traced.len() - 1, r["n"].as_u64().unwrap() as usize, "{p}");
            assert!((sum - r["total"].as_f64().unwrap()).abs() < 1e-6, "{p}");
        }
        assert_eq!(covered, good, "every good line in exactly one window");
    }
    // The CLI form.
    let rows = std::fs::read_to_string(dir.join("w1.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(rows.lines().next().unwrap()).unwrap();
    let text = weir_ok(&[
        "trace",
        dir.join("p1.sql").to_str().unwrap(),
        first["provenance"].as_str().unwrap(),
    ]);
    assert_eq!(
        text.lines().count() as u64,
        first["n"].as_u64().unwrap() + 1
    );
}

/// Provenance over a Kafka source: each window's value names partitions and offset ranges,
/// which hold exactly the window's readings (recomputing count and sum from them gives the
/// window's values); every good record is named once, the malformed one never; reading the
/// offsets back from the broker (`weir trace`) gives those records.
#[test]
fn provenance_names_kafka_offsets() {
    use rdkafka::producer::{BaseRecord, Producer};
    use std::collections::BTreeMap;
    use std::time::Duration;

    let broker = weir_tests::Tansu::start();
    let dir = scratch("provenance-kafka");
    let topic = format!("prov{}", std::process::id());
    broker.create_topic(&topic, 3);
    let producer = broker.producer();
    let mut rng = Lcg(11);
    // Offsets per partition follow the order of sends: recorded here to know each record's.
    let mut next = [0i64; 3];
    let mut good = BTreeSet::new();
    let mut payloads = BTreeMap::new();
    for i in 0..600i64 {
        let p = (rng.next() % 3) as i32;
        let payload = if i == 300 {
            "{\"machine_id\":\"m1\",\"ts\":".to_string()
        } else {
            let ts = 1_700_000_000_000 + i * 20 + (rng.next() % 200) as i64;
            let v = (rng.next() % 1000) as f64 / 10.0;
            format!(
                "{{\"machine_id\":\"m{}\",\"ts\":{ts},\"v\":{v}}}",
                rng.next() % 4
            )
        };
        producer
            .send(
                BaseRecord::<(), String>::to(&topic)
                    .partition(p)
                    .payload(&payload),
            )
            .unwrap();
        if i != 300 {
            good.insert((p, next[p as usize]));
        }
        payloads.insert((p, next[p as usize]), payload);
        next[p as usize] += 1;
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    for workers in ["1", "2"] {
        let sql = format!(
            "CREATE SOURCE readings (machine_id TEXT, ts BIGINT, v DOUBLE)
               WITH (connector = 'kafka', brokers = '{b}', topic = '{topic}', bounded = 'true',
                     commit = 'false', format = 'json', event_time = 'ts', watermark_delay = '1s');
             CREATE PIPELINE per_second WITH (provenance = 'true') AS INSERT INTO out
             SELECT machine_id, window_start, count(*) AS n, sum(v) AS total
             FROM readings GROUP BY machine_id, tumble(ts, INTERVAL '1' SECOND);",
            b = broker.brokers,
        );
        let (plan, rows) = run_script(&dir, workers, &sql);
        let mut covered = BTreeSet::new();
        assert!(rows.len() > 20, "{}", rows.len());
        for (i, r) in rows.iter().enumerate() {
            let p = r["provenance"].as_str().unwrap();
            let v: serde_json::Value = serde_json::from_str(p).unwrap();
            assert_eq!(v["topic"], topic.as_str());
            let mut named = Vec::new();
            for at in named_positions(&v, "offsets") {
                assert!(covered.insert(at), "{at:?} in two windows");
                named.push(payloads[&at].clone());
            }
            // Every fifth window is read back from the broker; the rest from what was sent.
            if i % 5 == 0 {
                assert_eq!(weir_engine::trace::trace(&plan, p).unwrap(), named, "{p}");
            }
            check_window_records(r, &named);
        }
        assert_eq!(covered, good, "every good record in exactly one window");
    }
    // The CLI form prints the payloads themselves.
    let rows = std::fs::read_to_string(dir.join("w1.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(rows.lines().next().unwrap()).unwrap();
    let p: serde_json::Value = serde_json::from_str(first["provenance"].as_str().unwrap()).unwrap();
    let (part, ranges) = p["offsets"].as_object().unwrap().iter().next().unwrap();
    let at = (part.parse::<i32>().unwrap(), ranges[0][0].as_i64().unwrap());
    let text = weir_ok(&[
        "trace",
        dir.join("p1.sql").to_str().unwrap(),
        first["provenance"].as_str().unwrap(),
    ]);
    assert!(text.lines().any(|l| l == payloads[&at]), "{text}");
}

/// Without an aggregate, each output row names its own input row, and the version of the model
/// that scored it.
#[test]
fn provenance_of_unaggregated_rows() {
    let dir = scratch("provenance-rows");
    let mut csv = String::from("sensor_id,ts,v\n");
    for i in 0..200 {
        csv.push_str(&format!("s{},{},{}\n", i % 3, i * 10, (i * 37) % 100));
    }
    std::fs::write(dir.join("r.csv"), &csv).unwrap();
    let (plan, rows) = run_script(
        &dir,
        "2",
        &format!(
            "CREATE SOURCE readings (sensor_id TEXT, ts BIGINT, v DOUBLE)
               WITH (connector = 'file', path = '{d}/r.csv', event_time = 'ts');
             CREATE MODEL risk FROM '{m}/linear.onnx' WITH (version = 'v1');
             CREATE MODEL risk FROM '{m}/linear_v2.onnx' WITH (version = 'v2');
             ALTER MODEL risk SET VERSION 'v2';
             CREATE PIPELINE high WITH (provenance = 'true') AS INSERT INTO out
             SELECT sensor_id, ts, v * 2 AS doubled, predict('risk', v, v, v, 0.0) AS risk
             FROM readings WHERE v > 60;",
            d = dir.display(),
            m = MODELS
        ),
    );
    let expected = csv
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(2).unwrap().parse::<f64>().unwrap() > 60.0)
        .count();
    assert_eq!(rows.len(), expected);
    for r in &rows {
        let p: serde_json::Value = serde_json::from_str(r["provenance"].as_str().unwrap()).unwrap();
        assert_eq!(p["models"]["risk"], "v2", "{r}");
        assert!(p.get("window_start").is_none(), "{r}");
        let traced = weir_engine::trace::trace(&plan, r["provenance"].as_str().unwrap()).unwrap();
        assert_eq!(traced.len(), 2, "{r}");
        let f: Vec<&str> = traced[1].split(',').collect();
        assert_eq!(f[0], r["sensor_id"].as_str().unwrap());
        assert_eq!(f[1].parse::<i64>().unwrap(), r["ts"].as_i64().unwrap());
        assert_eq!(
            f[2].parse::<f64>().unwrap() * 2.0,
            r["doubled"].as_f64().unwrap()
        );
    }
}

/// Through a lookup join: a window per production line names the readings of that line's
/// machines (the table maps machine to line); readings of a machine the table lacks are
/// dropped by the inner join and never named.
#[test]
fn provenance_through_a_lookup_join() {
    let dir = scratch("provenance-join");
    let mut rng = Lcg(23);
    let line_of = |m: u64| if m.is_multiple_of(3) { "L1" } else { "L2" };
    let mut machines = String::from("machine_id,line\n");
    for m in 0..8 {
        machines.push_str(&format!("m{m},{}\n", line_of(m)));
    }
    std::fs::write(dir.join("machines.csv"), machines).unwrap();
    let mut csv = String::from("machine_id,ts,v\n");
    let mut joined = BTreeSet::new();
    for i in 0..1500u64 {
        // m8 and m9 are not in the table.
        let m = rng.next() % 10;
        let ts = i * 9 + rng.next() % 100;
        csv.push_str(&format!("m{m},{ts},{}\n", rng.next() % 500));
        if m < 8 {
            joined.insert(i as i64 + 2);
        }
    }
    std::fs::write(dir.join("r.csv"), &csv).unwrap();
    let sql = format!(
        "CREATE SOURCE readings (machine_id TEXT, ts BIGINT, v DOUBLE)
           WITH (connector = 'file', path = '{d}/r.csv', event_time = 'ts', watermark_delay = '1s');
         CREATE TABLE machines (machine_id TEXT, line TEXT, PRIMARY KEY (machine_id))
           WITH (connector = 'file', path = '{d}/machines.csv');
         CREATE PIPELINE per_line WITH (provenance = 'true') AS INSERT INTO out
         SELECT m.line, window_start, count(*) AS n, sum(r.v) AS total
         FROM readings r JOIN machines m ON r.machine_id = m.machine_id
         GROUP BY m.line, tumble(r.ts, INTERVAL '1' SECOND);",
        d = dir.display(),
    );
    let (plan, rows) = run_script(&dir, "2", &sql);
    let mut covered = BTreeSet::new();
    for r in &rows {
        let p = r["provenance"].as_str().unwrap();
        let v: serde_json::Value = serde_json::from_str(p).unwrap();
        for rg in v["lines"].as_array().unwrap() {
            for n in rg[0].as_i64().unwrap()..=rg[1].as_i64().unwrap() {
                assert!(covered.insert(n), "line {n} in two windows");
            }
        }
        let start = r["window_start"].as_i64().unwrap();
        let traced = weir_engine::trace::trace(&plan, p).unwrap();
        let mut sum = 0.0;
        for t in &traced[1..] {
            let f: Vec<&str> = t.split(',').collect();
            let m: u64 = f[0][1..].parse().unwrap();
            assert_eq!(line_of(m), r["line"].as_str().unwrap(), "{p}: {t}");
            let ts: i64 = f[1].parse().unwrap();
            assert!(ts >= start && ts < start + 1000, "{p}: {t}");
            sum += f[2].parse::<f64>().unwrap();
        }
        assert_eq!(traced.len() as u64 - 1, r["n"].as_u64().unwrap(), "{p}");
        assert!((sum - r["total"].as_f64().unwrap()).abs() < 1e-6, "{p}");
    }
    assert_eq!(
        covered, joined,
        "every joined reading in exactly one window"
    );
}

/// Provenance over MQTT: with `archive`, every received message is kept and numbered per
/// worker; each window's value names worker and sequence ranges, which hold exactly the
/// window's readings; every good message is named once, the malformed one never; `weir trace`
/// reads them back from the archive.
#[test]
fn provenance_names_archived_mqtt_messages() {
    let broker = weir_tests::Mosquitto::start("provenance");
    let dir = scratch("provenance-mqtt");
    let topic = format!("weir{}/prov", std::process::id());
    let archive = dir.join("archive");
    let out = dir.join("out.jsonl");
    let script = dir.join("p.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE SOURCE live (machine_id TEXT, ts BIGINT, v DOUBLE)
               WITH (connector = 'mqtt', url = 'mqtt://127.0.0.1:{port}', topic = '{topic}', qos = '1',
                     format = 'json', shared_group = 'g', stop_after_idle = '1s', archive = '{a}',
                     event_time = 'ts', watermark_delay = '1s');
             CREATE SINK out WITH (connector = 'file', path = '{o}', format = 'json');
             CREATE PIPELINE per_second WITH (provenance = 'true') AS INSERT INTO out
             SELECT machine_id, window_start, count(*) AS n, sum(v) AS total
             FROM live GROUP BY machine_id, tumble(ts, INTERVAL '1' SECOND);",
            port = broker.port,
            a = archive.display(),
            o = out.display()
        ),
    )
    .unwrap();
    let mut weir = weir_tests::WeirProcess::start(&script, &["--workers", "2"]);
    weir.wait_for("subscribed to", 2);
    let mut publisher = weir_tests::MqttPublisher::connect("prov-publisher", broker.port);
    let mut rng = Lcg(31);
    for i in 0..400i64 {
        if i == 200 {
            publisher.publish(&topic, "{\"machine_id\":\"m1\",\"ts\":");
        }
        let ts = 1_700_000_000_000 + i * 20 + (rng.next() % 200) as i64;
        let payload = format!(
            "{{\"machine_id\":\"m{}\",\"ts\":{ts},\"v\":{}}}",
            rng.next() % 3,
            (rng.next() % 1000) as f64 / 10.0
        );
        publisher.publish(&topic, payload);
    }
    publisher.wait_acks();
    weir.finish();
    // What each worker archived: (worker, sequence) → payload.
    let mut archived = std::collections::BTreeMap::new();
    for w in 0..2 {
        let path = archive.join(format!("live-w{w}.jsonl"));
        for (i, l) in std::fs::read_to_string(&path).unwrap().lines().enumerate() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["topic"], topic.as_str());
            archived.insert(
                (w, i as i64 + 1),
                v["payload"].as_str().unwrap().to_string(),
            );
        }
    }
    assert_eq!(archived.len(), 401, "every message archived once");
    let good: BTreeSet<(i32, i64)> = archived
        .iter()
        .filter(|(_, p)| serde_json::from_str::<serde_json::Value>(p).is_ok())
        .map(|(k, _)| *k)
        .collect();
    assert_eq!(good.len(), 400);
    let plan = weir_queries::compile(&std::fs::read_to_string(&script).unwrap()).unwrap();
    let rows = json_lines(&out);
    let mut covered = BTreeSet::new();
    for r in &rows {
        let p = r["provenance"].as_str().unwrap();
        let v: serde_json::Value = serde_json::from_str(p).unwrap();
        assert_eq!(v["archive"], archive.display().to_string());
        let mut named = Vec::new();
        for at in named_positions(&v, "sequences") {
            assert!(covered.insert(at), "{at:?} in two windows");
            named.push(archived[&at].clone());
        }
        assert_eq!(weir_engine::trace::trace(&plan, p).unwrap(), named, "{p}");
        check_window_records(r, &named);
    }
    assert_eq!(covered, good, "every good message in exactly one window");
}

/// Through an interval join of two streams: a window of alarms names its alarms and, under
/// `joined`, the readings they met; re-running the join on the traced rows alone gives the
/// window's count and sum, and no traced reading is without a partner.
#[test]
fn provenance_through_an_interval_join() {
    let dir = scratch("provenance-interval");
    let mut rng = Lcg(41);
    let mut alarms = String::from("machine_id,ts,code\n");
    for i in 0..200u64 {
        alarms.push_str(&format!(
            "m{},{},{}\n",
            rng.next() % 5,
            i * 50 + rng.next() % 40,
            i % 7
        ));
    }
    let mut readings = String::from("machine_id,ts,v\n");
    for i in 0..2000u64 {
        readings.push_str(&format!(
            "m{},{},{}\n",
            rng.next() % 5,
            i * 5 + rng.next() % 40,
            rng.next() % 100
        ));
    }
    std::fs::write(dir.join("alarms.csv"), &alarms).unwrap();
    std::fs::write(dir.join("readings.csv"), &readings).unwrap();
    for workers in ["1", "2"] {
        let sql = format!(
            "CREATE SOURCE alarms (machine_id TEXT, ts BIGINT, code BIGINT)
               WITH (connector = 'file', path = '{d}/alarms.csv', event_time = 'ts', watermark_delay = '1s');
             CREATE SOURCE readings (machine_id TEXT, ts BIGINT, v DOUBLE)
               WITH (connector = 'file', path = '{d}/readings.csv', event_time = 'ts', watermark_delay = '1s');
             CREATE PIPELINE context WITH (provenance = 'true') AS INSERT INTO out
             SELECT a.machine_id, window_start, count(*) AS n, sum(r.v) AS total
             FROM alarms a JOIN readings r
               ON a.machine_id = r.machine_id AND r.ts BETWEEN a.ts - 500 AND a.ts + 500
             GROUP BY a.machine_id, tumble(a.ts, INTERVAL '1' SECOND);",
            d = dir.display(),
        );
        let (plan, rows) = run_script(&dir, workers, &sql);
        assert!(rows.len() > 30, "{}", rows.len());
        let parse = |l: &str| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].to_string(),
                f[1].parse::<i64>().unwrap(),
                f[2].parse::<f64>().unwrap(),
            )
        };
        for row in &rows {
            let p = row["provenance"].as_str().unwrap();
            let mut v: serde_json::Value = serde_json::from_str(p).unwrap();
            let joined = v.as_object_mut().unwrap().remove("joined").unwrap();
            assert_eq!(joined["source"], "readings", "{p}");
            let left = weir_engine::trace::trace(&plan, &v.to_string()).unwrap();
            let right = weir_engine::trace::trace(&plan, &joined.to_string()).unwrap();
            let all = weir_engine::trace::trace(&plan, p).unwrap();
            assert_eq!(all, [left.clone(), right.clone()].concat());
            let a: Vec<_> = left[1..].iter().map(|l| parse(l)).collect();
            let r: Vec<_> = right[1..].iter().map(|l| parse(l)).collect();
            let start = row["window_start"].as_i64().unwrap();
            let (mut n, mut total) = (0u64, 0.0);
            for x in &a {
                assert_eq!(x.0, row["machine_id"].as_str().unwrap(), "{p}");
                assert!(x.1 >= start && x.1 < start + 1000, "{p}");
                for y in r
                    .iter()
                    .filter(|y| y.0 == x.0 && (x.1 - 500..=x.1 + 500).contains(&y.1))
                {
                    n += 1;
                    total += y.2;
                }
            }
            for y in &r {
                assert!(
                    a.iter()
                        .any(|x| y.0 == x.0 && (x.1 - 500..=x.1 + 500).contains(&y.1)),
                    "{p}: reading {y:?} met no alarm"
                );
            }
            assert_eq!(n, row["n"].as_u64().unwrap(), "{p}");
            assert!((total - row["total"].as_f64().unwrap()).abs() < 1e-6, "{p}");
        }
    }
}
