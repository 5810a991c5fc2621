//! `weir serve --pg` with real Postgres clients: `psql` (simple protocol, SCRAM) declares a
//! source and a `table` sink one statement at a time and creates a pipeline; its latest rows
//! per sensor, read back with `SELECT` by psql, by the Rust `postgres` driver (extended
//! protocol, typed values) and over REST, equal a direct computation; errors carry their
//! position; a user reads a table only once it is granted; the changes are in `weir_audit`.
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use weir_tests::scratch;
use weir_tests::serve::{free_port, Auth, WeirServer, ADMIN_PASSWORD};

/// 2,400 readings of 4 sensors over 60 s; each sensor's last 10 s window (start, count, max).
fn readings(path: &Path) -> BTreeMap<String, (i64, i64, i64)> {
    let mut csv = String::from("sensor_id,ts,v\n");
    let mut last: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    for i in 0..2400i64 {
        let (s, ts, v) = (format!("s{}", i % 4), i * 25, (i * 53) % 97);
        csv.push_str(&format!("{s},{ts},{v}\n"));
        let start = ts - ts % 10_000;
        let e = last.entry(s).or_insert((start, 0, i64::MIN));
        if e.0 != start {
            *e = (start, 0, i64::MIN);
        }
        e.1 += 1;
        e.2 = e.2.max(v);
    }
    std::fs::write(path, csv).expect("input");
    last
}

/// `psql` as `user` with `args`; its stdout, stderr and success.
fn psql(port: u16, user: &str, password: &str, args: &[&str]) -> (String, String, bool) {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            user,
            "-d",
            "weir",
            "-X",
            "-At",
            "-F",
            ",",
        ])
        .args(args)
        .env("PGPASSWORD", password)
        .output()
        .expect("psql (Debian package postgresql-client; .ci/run installs it)");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

fn admin_psql(port: u16, args: &[&str]) -> String {
    let (out, err, ok) = psql(port, "admin", ADMIN_PASSWORD, args);
    assert!(ok, "psql {args:?}: {err}");
    out
}

#[test]
fn psql_and_a_driver_declare_run_and_select() {
    let dir = scratch("serve-pg");
    let input = dir.join("readings.csv");
    let want = readings(&input);
    let port = free_port();
    let s = WeirServer::start(&dir.join("state"), &["--pg", &format!("127.0.0.1:{port}")]);

    let script = dir.join("declare.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE SOURCE r (sensor_id TEXT, ts BIGINT, v BIGINT)
               WITH (connector = 'file', path = '{}', event_time = 'ts');
             CREATE SINK latest WITH (connector = 'table', key = 'sensor_id');
             CREATE PIPELINE per_sensor AS INSERT INTO latest
             SELECT sensor_id, window_start, count(*) AS n, max(v) AS hi
             FROM r GROUP BY sensor_id, tumble(ts, INTERVAL '10' SECOND);",
            input.display()
        ),
    )
    .expect("script");
    let out = admin_psql(
        port,
        &["-v", "ON_ERROR_STOP=1", "-f", &script.display().to_string()],
    );
    assert!(out.contains("CREATE PIPELINE"), "{out}");
    s.wait_state("per_sensor", "finished", Duration::from_secs(60));
    assert!(admin_psql(port, &["-c", "SHOW PIPELINES"])
        .starts_with("per_sensor,finished,running,admin,on"));

    // psql: text rows.
    let got = admin_psql(
        port,
        &[
            "-c",
            "SELECT sensor_id, window_start, n, hi FROM latest ORDER BY sensor_id",
        ],
    );
    let rows: Vec<String> = want
        .iter()
        .map(|(k, (w, n, hi))| format!("{k},{w},{n},{hi}"))
        .collect();
    assert_eq!(got.lines().collect::<Vec<_>>(), rows);

    // The Rust driver: SCRAM, the extended protocol, typed values.
    let url =
        format!("host=127.0.0.1 port={port} user=admin password={ADMIN_PASSWORD} dbname=weir");
    let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    let typed: BTreeMap<String, (i64, i64, i64)> = c
        .query("SELECT sensor_id, window_start, n, hi FROM latest", &[])
        .expect("query")
        .iter()
        .map(|r| (r.get::<_, String>(0), (r.get(1), r.get(2), r.get(3))))
        .collect();
    assert_eq!(typed, want);
    statement_parameters(&mut c, &want);
    let e = c
        .query("SELECT nope FROM latest", &[])
        .expect_err("an unknown column");
    let msg = e
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    assert!(msg.contains("nope"), "{e:?}");

    // Errors carry their position; a bad statement changes nothing.
    let (_, err, ok) = psql(
        port,
        "admin",
        ADMIN_PASSWORD,
        &[
            "-c",
            "CREATE PIPELINE q AS INSERT INTO latest SELECT sensor_id FROM nowhere",
        ],
    );
    assert!(
        !ok && err.contains("line 1") && err.contains("nowhere"),
        "{err}"
    );
    let (_, err, ok) = psql(port, "admin", "not-the-password", &["-c", "SHOW PIPELINES"]);
    assert!(!ok && err.contains("authentication failed"), "{err}");

    // A viewer reads the table once it is granted (psql and REST alike).
    admin_psql(
        port,
        &[
            "-c",
            "CREATE USER vic PASSWORD 'vic-password'",
            "-c",
            "GRANT viewer TO vic",
        ],
    );
    let (_, err, ok) = psql(
        port,
        "vic",
        "vic-password",
        &["-c", "SELECT count(*) FROM latest"],
    );
    assert!(!ok && err.contains("latest"), "{err}");
    let (_, err, ok) = psql(
        port,
        "vic",
        "vic-password",
        &["-c", "DROP PIPELINE per_sensor"],
    );
    assert!(!ok && err.contains("may not"), "{err}");
    admin_psql(port, &["-c", "GRANT SELECT ON latest TO viewer"]);
    let (out, err, ok) = psql(
        port,
        "vic",
        "vic-password",
        &["-c", "SELECT count(*) FROM latest"],
    );
    assert!(ok && out.trim() == want.len().to_string(), "{out} {err}");
    let vic = Auth::Basic("vic".into(), "vic-password".into());
    let r = s
        .call_as(
            &vic,
            "POST",
            "/api/v1/query",
            Some(&json!({"sql": "SELECT sum(n) AS total FROM latest"})),
        )
        .expect("answer");
    let total: i64 = want.values().map(|v| v.1).sum();
    assert_eq!(r.json()["rows"][0]["total"], total, "{r:?}");

    let audit = admin_psql(
        port,
        &[
            "-c",
            "SELECT user, action, outcome FROM weir_audit ORDER BY ts_ms",
        ],
    );
    for line in [
        "admin,pg CREATE SOURCE,ok",
        "admin,pg CREATE PIPELINE,ok",
        "vic,pg DROP PIPELINE,denied",
        "admin,pg GRANT SELECT,ok",
    ] {
        assert!(audit.lines().any(|l| l == line), "{line} not in:\n{audit}");
    }
    s.terminate();
}

/// Statement parameters over the extended protocol: types the server infers (told in the
/// statement's description), a prepared statement run once per sensor, a type given by the
/// client and cast to the column's, and a timestamp.
fn statement_parameters(c: &mut postgres::Client, want: &BTreeMap<String, (i64, i64, i64)>) {
    use postgres::types::Type;
    let st = c
        .prepare("SELECT window_start, n, hi FROM latest WHERE sensor_id = $1 AND hi >= $2")
        .expect("prepare");
    assert_eq!(st.params(), &[Type::TEXT, Type::INT8]);
    for (sensor, (w, n, hi)) in want {
        let rows = c.query(&st, &[sensor, &0i64]).expect("query");
        let got: Vec<(i64, i64, i64)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        assert_eq!(got, vec![(*w, *n, *hi)], "{sensor}");
        let none = c.query(&st, &[sensor, &(hi + 1)]).expect("query");
        assert!(none.is_empty(), "{sensor}: nothing is above its max");
    }
    let as_text = c
        .prepare_typed(
            "SELECT count(*) FROM latest WHERE window_start >= $1",
            &[Type::TEXT],
        )
        .expect("prepare");
    let at = want.values().map(|v| v.0).max().unwrap_or(0);
    let n: i64 = c
        .query_one(&as_text, &[&at.to_string()])
        .expect("query")
        .get(0);
    let expected = want.values().filter(|v| v.0 >= at).count() as i64;
    assert_eq!(n, expected);
    let when = std::time::UNIX_EPOCH + Duration::from_millis(at as u64);
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM latest WHERE to_timestamp_millis(window_start) >= $1",
            &[&when],
        )
        .expect("a timestamp parameter")
        .get(0);
    assert_eq!(n, expected);
}
