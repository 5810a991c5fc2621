//! `weir-bench serve-load [CALLS] [CONCURRENCY] [ROWS]`: API calls against a running `weir
//! serve` while it runs a pipeline. A 1 s window per sensor over ROWS readings (default 10M,
//! the windowed bench's file) into a `table` sink keyed by sensor runs twice back to back:
//! once alone, once while CONCURRENCY clients (default 50) make CALLS calls (default 1000),
//! half `GET …/status`, half `POST /api/v1/query` with a `SELECT` on the table. Prints the
//! pipeline's rows/s both times, the calls' errors and their p50/p99 latency.
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use weir_tests::serve::{Auth, WeirServer};

fn sql(input: &Path, table: &str) -> String {
    format!(
        "CREATE SOURCE readings (sensor_id TEXT, ts BIGINT, temperature DOUBLE)
           WITH (connector = 'file', path = '{}', event_time = 'ts', watermark_delay = '250ms');
         CREATE SINK {table} WITH (connector = 'table', key = 'sensor_id');
         CREATE PIPELINE per_second AS INSERT INTO {table}
         SELECT sensor_id, window_start, count(*) AS n, max(temperature) AS hi
         FROM readings GROUP BY sensor_id, tumble(ts, INTERVAL '1' SECOND);",
        std::fs::canonicalize(input)
            .unwrap_or(input.to_path_buf())
            .display()
    )
}

/// Creates pipeline `name` and waits until it finished; its rows in and seconds.
fn run_pipeline(s: &WeirServer, auth: &Auth, name: &str, input: &Path) -> (u64, f64) {
    let body = json!({"name": name, "sql": sql(input, &format!("{name}_t"))});
    let r = s
        .call_as(auth, "POST", "/api/v1/pipelines", Some(&body))
        .expect("answer");
    assert_eq!(r.status, 201, "{r:?}");
    let t = Instant::now();
    loop {
        let st = s
            .call_as(
                auth,
                "GET",
                &format!("/api/v1/pipelines/{name}/status"),
                None,
            )
            .expect("status")
            .json();
        if st["state"] == "finished" {
            return (
                st["queries"][0]["rows_in"].as_u64().unwrap_or(0),
                t.elapsed().as_secs_f64(),
            );
        }
        assert!(st["state"] != "failed", "{st}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `calls` calls from `clients` threads; latencies (ms) and errors.
fn load(base: &str, token: &str, name: &str, calls: usize, clients: usize) -> (Vec<f64>, usize) {
    let per = calls.div_ceil(clients.max(1));
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let (base, token, name) = (base.to_string(), token.to_string(), name.to_string());
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
                let (mut lat, mut errors) = (Vec::new(), 0);
                for i in 0..per {
                    let t = Instant::now();
                    let auth = format!("Bearer {token}");
                    let r = match (c + i) % 2 {
                        0 => agent.get(&format!("{base}/api/v1/pipelines/{name}/status")).set("authorization", &auth).call(),
                        _ => agent
                            .post(&format!("{base}/api/v1/query"))
                            .set("authorization", &auth)
                            .set("content-type", "application/json")
                            .send_string(&json!({"sql": format!("SELECT count(*) AS n, max(hi) AS hi FROM {name}_t")}).to_string()),
                    };
                    match r.map(|r| r.into_string()) {
                        Ok(Ok(_)) => lat.push(t.elapsed().as_secs_f64() * 1e3),
                        _ => errors += 1,
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let (mut lat, mut errors) = (Vec::new(), 0);
    for t in threads {
        let (l, e) = t.join().expect("client thread");
        lat.extend(l);
        errors += e;
    }
    (lat, errors)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

/// The bench.
pub fn run(calls: usize, clients: usize, input: &Path) {
    let state = std::env::temp_dir().join(format!("weir-serve-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state).expect("state dir");
    let s = WeirServer::start(&state, &[]);
    let admin = Auth::admin();
    let token = s
        .call_as(&admin, "POST", "/api/v1/tokens", None)
        .expect("token")
        .json()["token"]
        .as_str()
        .expect("token")
        .to_string();
    let (rows, alone) = run_pipeline(&s, &admin, "alone", input);
    println!(
        "serve-load: pipeline alone: {rows} rows in {alone:.2}s, {:.0} rows/s",
        rows as f64 / alone
    );
    let (base, tok) = (s.base.clone(), token.clone());
    let loader = std::thread::spawn(move || {
        // Let the pipeline start before the calls begin.
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        let (lat, errors) = load(&base, &tok, "loaded", calls, clients);
        (lat, errors, t.elapsed().as_secs_f64())
    });
    let (rows2, loaded) = run_pipeline(&s, &admin, "loaded", input);
    let (mut lat, errors, took) = loader.join().expect("loader");
    lat.sort_by(|a, b| a.total_cmp(b));
    println!(
        "serve-load: pipeline under load: {rows2} rows in {loaded:.2}s, {:.0} rows/s",
        rows2 as f64 / loaded
    );
    println!(
        "serve-load: {} calls ({clients} clients) in {took:.2}s: {errors} errors, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lat.len() + errors,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );
    s.terminate();
    let _ = std::fs::remove_dir_all(&state);
}
