//! Correctness against an independent computation: 100k readings (1000 sensors, ms timestamps
//! with up to 200 ms of jitter, so rows arrive out of order) through `weir run` with a 1-second
//! tumbling count/avg/min/max per sensor, compared with the same aggregate computed here
//! directly; with 1 and 2 workers, and as two processes exchanging rows over TCP.
use std::collections::BTreeMap;
use std::process::Command;

use weir_tests::{run_weir_ok, scratch, weir_bin};

pub(crate) struct Lcg(pub(crate) u64);
impl Lcg {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[derive(Default, Debug, Clone, Copy)]
struct Agg {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

/// How `weir run` is started.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode {
    /// One process with N worker threads.
    Workers(usize),
    /// Two processes with one worker each, exchanging rows over TCP (timely cluster mode).
    Cluster,
}

/// Runs the script; returns process 0's stderr.
pub(crate) fn run_weir(dir: &std::path::Path, script: &std::path::Path, mode: Mode) -> String {
    let script = script.to_str().unwrap();
    match mode {
        Mode::Workers(n) => {
            run_weir_ok(std::path::Path::new(script), &["--workers", &n.to_string()])
        }
        Mode::Cluster => {
            let ports: Vec<u16> = (0..2)
                .map(|_| {
                    std::net::TcpListener::bind("127.0.0.1:0")
                        .unwrap()
                        .local_addr()
                        .unwrap()
                        .port()
                })
                .collect();
            let hosts = dir.join("hosts");
            std::fs::write(
                &hosts,
                ports
                    .iter()
                    .map(|p| format!("127.0.0.1:{p}\n"))
                    .collect::<String>(),
            )
            .unwrap();
            let hosts = hosts.to_str().unwrap().to_string();
            let one = Command::new(weir_bin())
                .args([
                    "run",
                    script,
                    "--processes",
                    "2",
                    "--process",
                    "1",
                    "--hosts",
                    &hosts,
                    "--progress",
                    "0",
                ])
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let zero = Command::new(weir_bin())
                .args([
                    "run",
                    script,
                    "--processes",
                    "2",
                    "--process",
                    "0",
                    "--hosts",
                    &hosts,
                    "--progress",
                    "0",
                ])
                .output()
                .unwrap();
            let one = one.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&zero.stderr).to_string();
            assert!(zero.status.success(), "process 0: {stderr}");
            assert!(
                one.status.success(),
                "process 1: {}",
                String::from_utf8_lossy(&one.stderr)
            );
            stderr
        }
    }
}

#[test]
fn tumbling_aggregate_matches_direct_computation() {
    let dir = scratch("correctness");
    let mut rng = Lcg(2024);
    let mut csv = String::from("sensor_id,ts,temperature\n");
    let mut expected: BTreeMap<(String, i64), Agg> = BTreeMap::new();
    let base = 1_700_000_000_000i64;
    for tick in 0..100i64 {
        for s in 0..1000 {
            let ts = base + tick * 1000 + (rng.next() % 200) as i64;
            let temp = 20.0 + (rng.next() % 60_000) as f64 / 1000.0;
            let id = format!("s{s:04}");
            csv.push_str(&format!("{id},{ts},{temp}\n"));
            let e = expected
                .entry((id, ts - ts.rem_euclid(1000)))
                .or_insert(Agg {
                    count: 0,
                    sum: 0.0,
                    min: f64::MAX,
                    max: f64::MIN,
                });
            e.count += 1;
            e.sum += temp;
            e.min = e.min.min(temp);
            e.max = e.max.max(temp);
        }
    }
    let input = dir.join("readings.csv");
    std::fs::write(&input, csv).unwrap();
    for mode in [Mode::Workers(1), Mode::Workers(2), Mode::Cluster] {
        let out = dir.join(format!("out-{mode:?}.csv"));
        let sql = format!(
            "CREATE SOURCE readings (sensor_id TEXT, ts BIGINT, temperature DOUBLE)
               WITH (connector = 'file', path = '{}', event_time = 'ts', watermark_delay = '250ms');
             CREATE SINK out WITH (connector = 'file', path = '{}', format = 'csv');
             CREATE PIPELINE per_second AS INSERT INTO out
             SELECT sensor_id, window_start, count(*) AS n, avg(temperature) AS avg_t,
                    min(temperature) AS min_t, max(temperature) AS max_t
             FROM readings GROUP BY sensor_id, tumble(ts, INTERVAL '1' SECOND);",
            input.display(),
            out.display()
        );
        let script = dir.join("p.sql");
        std::fs::write(&script, sql).unwrap();
        let stderr = run_weir(&dir, &script, mode);
        assert!(
            stderr.contains("rows in 100000") && stderr.contains("late 0"),
            "{stderr}"
        );
        let text = std::fs::read_to_string(&out).unwrap();
        let mut got: BTreeMap<(String, i64), Agg> = BTreeMap::new();
        let mut avgs = BTreeMap::new();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 6, "{line}");
            let key = (f[0].to_string(), f[1].parse::<i64>().unwrap());
            let n: u64 = f[2].parse().unwrap();
            let avg: f64 = f[3].parse().unwrap();
            let prev = got.insert(
                key.clone(),
                Agg {
                    count: n,
                    sum: 0.0,
                    min: f[4].parse().unwrap(),
                    max: f[5].parse().unwrap(),
                },
            );
            assert!(prev.is_none(), "duplicate window {key:?}");
            avgs.insert(key, avg);
        }
        assert_eq!(got.len(), expected.len(), "number of windows, {mode:?}");
        for (k, e) in &expected {
            let g = got.get(k).unwrap_or_else(|| panic!("missing window {k:?}"));
            assert_eq!(g.count, e.count, "{k:?}");
            assert_eq!(g.min, e.min, "{k:?}");
            assert_eq!(g.max, e.max, "{k:?}");
            let want = e.sum / e.count as f64;
            assert!(
                (avgs[k] - want).abs() < 1e-9,
                "{k:?}: {} vs {want}",
                avgs[k]
            );
        }
    }
}
