//! `SUBSCRIBE` over the Postgres protocol while a pipeline runs, with three real clients at
//! once: the Rust driver's `COPY (SUBSCRIBE live) TO STDOUT` on a log table, its extended
//! protocol `SUBSCRIBE latest` (typed rows, streamed) on a keyed table, and `psql`'s COPY on
//! the log table. Every change is applied as it comes: the rows that came are exactly the
//! rows an uninterrupted `weir run` of the same generator gives, every `-1` removes a row that
//! was there (a replaced row goes before its successor comes), each subscriber saw rows while
//! the pipeline was running, and what the changes add up to equals `SELECT` over the table
//! once the pipeline has finished (which ends the subscriptions). A user without a grant is
//! refused.
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use weir_tests::serve::{free_port, WeirServer, ADMIN_PASSWORD};
use weir_tests::{scratch, WeirProcess};

/// (sensor, seq) → temperature as text.
type Rows = BTreeMap<(String, i64), String>;

const ROWS: u32 = 4000;

fn source(rate: u32) -> String {
    format!(
        "CREATE SOURCE g (sensor_id TEXT, seq BIGINT, ts BIGINT, temperature DOUBLE)
           WITH (connector = 'generator', sensors = '3', rows = '{ROWS}', rate = '{rate}', event_time = 'ts');"
    )
}

/// The generator's rows from an uninterrupted `weir run`.
fn reference(dir: &std::path::Path) -> Rows {
    let out = dir.join("want.csv");
    let script = dir.join("want.sql");
    let sql = format!(
        "{} CREATE SINK out WITH (connector = 'file', path = '{}', format = 'csv');
         CREATE PIPELINE p AS INSERT INTO out SELECT sensor_id, seq, temperature FROM g;",
        source(0),
        out.display()
    );
    std::fs::write(&script, sql).expect("script");
    WeirProcess::start(&script, &[]).finish();
    std::fs::read_to_string(&out)
        .expect("reference")
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                (f[0].to_string(), f[1].parse().expect("seq")),
                f[2].to_string(),
            )
        })
        .collect()
}

/// What a subscriber saw: every row that came, the rows the changes add up to, and whether
/// the pipeline was running when the first change arrived.
#[derive(Default, Debug)]
struct Seen {
    came: Rows,
    now: BTreeMap<(String, i64), (String, i64)>,
    live: bool,
}

impl Seen {
    /// Applies one change; `key` picks the table's key out of (sensor, seq).
    fn apply(&mut self, sensor: &str, seq: i64, temp: String, diff: i64) {
        let k = (sensor.to_string(), seq);
        match diff {
            1 => {
                assert!(
                    self.came.insert(k.clone(), temp.clone()).is_none(),
                    "{k:?} came twice"
                );
                let had = self.now.insert(k.clone(), (temp, 1));
                assert!(had.is_none(), "{k:?} came while there");
            }
            -1 => {
                let had = self.now.remove(&k);
                assert_eq!(had.map(|h| h.0), Some(temp), "{k:?} went but was not there");
            }
            d => panic!("diff {d}"),
        }
    }

    fn sensors_now(&self) -> BTreeMap<String, i64> {
        let mut m = BTreeMap::new();
        for (s, seq) in self.now.keys() {
            assert!(
                m.insert(s.clone(), *seq).is_none(),
                "two rows of {s} in a keyed table"
            );
        }
        m
    }
}

fn running(s: &WeirServer) -> bool {
    s.status("p")["state"] == "running"
}

/// A COPY line: ts, diff, sensor, seq, temperature.
fn copy_line(line: &str) -> (i64, i64, String, i64, String) {
    let f: Vec<&str> = line.trim_end_matches('\n').split('\t').collect();
    assert_eq!(f.len(), 5, "{line:?}");
    let ts: i64 = f[0].parse().expect("weir_ts");
    assert!(ts > 1_700_000_000_000, "{line:?}");
    (
        ts,
        f[1].parse().expect("diff"),
        f[2].into(),
        f[3].parse().expect("seq"),
        f[4].into(),
    )
}

fn driver_copy(url: String, s: &WeirServer) -> Seen {
    let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    let reader = c
        .copy_out("COPY (SUBSCRIBE live) TO STDOUT")
        .expect("COPY out");
    let mut seen = Seen::default();
    for line in BufReader::new(reader).lines() {
        let line = line.expect("line");
        if seen.came.is_empty() {
            seen.live = running(s);
        }
        let (_, diff, sensor, seq, temp) = copy_line(&line);
        seen.apply(&sensor, seq, temp, diff);
    }
    seen
}

fn driver_rows(url: String, s: &WeirServer) -> Seen {
    use postgres::fallible_iterator::FallibleIterator;
    let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    let mut rows = c
        .query_raw("SUBSCRIBE latest", Vec::<String>::new())
        .expect("SUBSCRIBE");
    let mut seen = Seen::default();
    while let Some(r) = rows.next().expect("row") {
        if seen.came.is_empty() {
            seen.live = running(s);
        }
        let (diff, sensor, seq, temp): (i64, String, i64, f64) =
            (r.get(1), r.get(2), r.get(3), r.get(4));
        assert!(r.get::<_, i64>(0) > 1_700_000_000_000);
        // A key's old row goes before its successor comes.
        let there = seen.now.keys().any(|(k, _)| *k == sensor);
        assert!(
            diff < 0 || !there,
            "{sensor}/{seq} came before its key's old row went"
        );
        seen.apply(&sensor, seq, temp.to_string(), diff);
    }
    seen
}

fn psql_copy(port: u16, s: &WeirServer) -> Seen {
    // psql writes COPY data through stdio: line-buffered, each line arrives as it is written.
    let mut child = Command::new("stdbuf")
        .args([
            "-oL",
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "admin",
        ])
        .args(["-d", "weir", "-X", "-c", "COPY (SUBSCRIBE live) TO STDOUT"])
        .env("PGPASSWORD", ADMIN_PASSWORD)
        .stdout(Stdio::piped())
        .spawn()
        .expect("psql (Debian package postgresql-client)");
    let out = child.stdout.take().expect("stdout");
    let mut seen = Seen::default();
    for line in BufReader::new(out).lines() {
        let line = line.expect("line");
        if seen.came.is_empty() {
            seen.live = running(s);
        }
        let (_, diff, sensor, seq, temp) = copy_line(&line);
        seen.apply(&sensor, seq, temp, diff);
    }
    assert!(child.wait().expect("psql").success());
    seen
}

#[test]
fn subscribers_see_every_change_while_the_pipeline_runs() {
    let dir = scratch("serve-subscribe");
    let want = reference(&dir);
    assert_eq!(want.len(), ROWS as usize);
    let port = free_port();
    let s = WeirServer::start(&dir.join("state"), &["--pg", &format!("127.0.0.1:{port}")]);
    let url =
        format!("host=127.0.0.1 port={port} user=admin password={ADMIN_PASSWORD} dbname=weir");
    let sql = format!(
        "{} CREATE SINK live WITH (connector = 'table');
         CREATE SINK latest WITH (connector = 'table', key = 'sensor_id');
         CREATE PIPELINE p AS INSERT INTO live SELECT sensor_id, seq, temperature FROM g;
         CREATE PIPELINE q AS INSERT INTO latest SELECT sensor_id, seq, temperature FROM g;",
        source(800)
    );
    let r = s.must(
        "POST",
        "/api/v1/pipelines",
        Some(&serde_json::json!({"name": "p", "sql": sql})),
    );
    assert_eq!(r.status, 201, "{r:?}");

    let (copy, rows, psql) = std::thread::scope(|sc| {
        let a = sc.spawn(|| driver_copy(url.clone(), &s));
        let b = sc.spawn(|| driver_rows(url.clone(), &s));
        let c = sc.spawn(|| psql_copy(port, &s));
        (
            a.join().expect("copy"),
            b.join().expect("rows"),
            c.join().expect("psql"),
        )
    });
    s.wait_state("p", "finished", Duration::from_secs(30));

    // The log table: every generated row came, once, to both COPY subscribers; nothing went.
    for (who, seen) in [("driver COPY", &copy), ("psql COPY", &psql)] {
        assert!(
            seen.live,
            "{who}: the first change came after the pipeline ended"
        );
        assert_eq!(seen.came, want, "{who}");
        assert_eq!(seen.now.len(), want.len(), "{who}");
    }
    // The keyed table: what the changes add up to is each sensor's last row.
    assert!(
        rows.live,
        "SUBSCRIBE: the first change came after the pipeline ended"
    );
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for (sensor, seq) in want.keys() {
        let e = last.entry(sensor.clone()).or_insert(*seq);
        *e = (*e).max(*seq);
    }
    assert_eq!(rows.sensors_now(), last);
    assert!(
        rows.came.len() > last.len(),
        "no row was ever replaced: {}",
        rows.came.len()
    );
    for (k, t) in &rows.came {
        assert_eq!(
            want.get(k).and_then(|w| w.parse::<f64>().ok()),
            t.parse().ok(),
            "{k:?}"
        );
    }
    // …and equals SELECT over the table.
    let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    let selected: BTreeMap<String, i64> = c
        .query("SELECT sensor_id, seq FROM latest", &[])
        .expect("select")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(selected, last);

    // A user without a grant may not subscribe.
    c.batch_execute("CREATE USER eve PASSWORD 'eve-pw-123456'")
        .expect("user");
    let eve = format!("host=127.0.0.1 port={port} user=eve password=eve-pw-123456 dbname=weir");
    let mut e = postgres::Client::connect(&eve, postgres::NoTls).expect("connect as eve");
    let err = e
        .copy_out("COPY (SUBSCRIBE live) TO STDOUT")
        .err()
        .expect("refused");
    assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{err}");
    s.terminate();
}
