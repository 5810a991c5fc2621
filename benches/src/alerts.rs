//! `weir-bench alerts [ALERTS]`: the alert store and the inbox at scale. A file of ALERTS
//! machines (default 10,000) with three readings each, all hot, runs through an `alerts`
//! sink under `weir serve`, raising one alert per machine (each repeated twice, 3 evidence
//! rows). Prints the server's RSS before and after (the memory of the open alerts), and the
//! time to answer the inbox page (`/ui/alerts`: the newest 1,000; `?limit=N`: all of them)
//! and `GET /api/v1/alerts`, median of 20 requests each.
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use weir_tests::serve::{Auth, WeirServer};

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn input(dir: &Path, n: usize) -> std::path::PathBuf {
    let mut text = String::from("machine_id,ts,temp\n");
    for r in 0..3 {
        for m in 0..n {
            let _ = writeln!(
                text,
                "M{m:05},{},{}",
                1_796_104_800_000i64 + 1000 * r,
                91 + r
            );
        }
    }
    let path = dir.join("hot.csv");
    std::fs::write(&path, text).expect("input");
    path
}

fn median_ms(agent: &ureq::Agent, url: &str, auth: &str) -> (f64, usize) {
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..20 {
        let t = Instant::now();
        let reply = agent
            .get(url)
            .set("authorization", auth)
            .call()
            .expect("page");
        let body = reply.into_string().expect("page body");
        times.push(t.elapsed().as_secs_f64() * 1e3);
        bytes = body.len();
    }
    times.sort_by(|a, b| a.total_cmp(b));
    (times[times.len() / 2], bytes)
}

/// The bench.
pub fn run(n: usize) {
    let dir = std::env::temp_dir().join(format!("weir-bench-alerts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let path = input(&dir, n);
    let s = WeirServer::start(&dir.join("state"), &[]);
    let before = rss_kb(s.pid());
    let sql = format!(
        "CREATE SOURCE r (machine_id TEXT, ts BIGINT, temp DOUBLE)
           WITH (connector = 'file', path = '{}', format = 'csv', event_time = 'ts');
         CREATE SINK hot WITH (connector = 'alerts', key = 'machine_id', raise = 'temp > 90',
           verify = 'temp < 75', time = 'ts');
         CREATE PIPELINE p AS INSERT INTO hot SELECT machine_id, ts, temp FROM r;",
        path.display()
    );
    let t = Instant::now();
    let r = s.must(
        "POST",
        "/api/v1/pipelines",
        Some(&json!({"name": "p", "sql": sql})),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    s.wait_state("p", "finished", Duration::from_secs(600));
    let took = t.elapsed().as_secs_f64();
    let count = s
        .must("GET", &format!("/api/v1/alerts?limit={}", n + 1), None)
        .json();
    let count = count.as_array().map_or(0, Vec::len);
    let after = rss_kb(s.pid());
    println!(
        "alerts: {count} alerts from {} rows in {took:.2}s; RSS {:.1} MB before, {:.1} MB after ({:.2} KB per alert)",
        3 * n,
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        after.saturating_sub(before) as f64 / count.max(1) as f64
    );
    let auth = Auth::admin().header_value().unwrap_or_default();
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build();
    for path in [
        "/ui/alerts".to_string(),
        format!("/ui/alerts?limit={n}"),
        "/api/v1/alerts".to_string(),
        format!("/api/v1/alerts?limit={n}"),
    ] {
        let (ms, bytes) = median_ms(&agent, &format!("{}{path}", s.base), &auth);
        println!(
            "alerts: GET {path}: median {ms:.1} ms, {:.0} KB",
            bytes as f64 / 1024.0
        );
    }
    s.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}
