//! The dashboard in a real browser (Debian chromium driven by playwright-core,
//! `tests/browser/dashboard.mjs`): an ML engineer switches the model behind the alerts on the
//! models page (the next alert carries the new version); an operator signs in, sees the
//! inbox, acknowledges,
//! dispatches (the work order arrives on the broker) and marks fixed by clicking; a
//! transition the state does not allow is refused with 409; cool readings verify the alert;
//! a viewer sees it with no actions; a reviewer's label shows in the event log; another is
//! labelled from the review queue, and the models page's validation from review equals both
//! a count over the alerts and what a pipeline reading the label stream (MQTT) computes; the
//! operator confirms it closed. Every page is screenshotted (`WEIR_SHOTS`, else the scratch
//! dir).
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use weir_tests::plant::{Plant, PEOPLE};
use weir_tests::scratch;
use weir_tests::serve::ADMIN_PASSWORD;

/// Runs one phase of the browser driver as `user`; what it saw.
fn browse(base: &str, shots: &Path, phase: &str, user: &str, alert: u64) -> Value {
    browse_with(base, shots, phase, user, alert, &[])
}

/// [`browse`] with more environment.
fn browse_with(
    base: &str,
    shots: &Path,
    phase: &str,
    user: &str,
    alert: u64,
    env: &[(&str, &str)],
) -> Value {
    let password = PEOPLE
        .iter()
        .find(|p| p.0 == user)
        .map_or(ADMIN_PASSWORD, |p| p.1);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/dashboard.mjs");
    let out = Command::new("node")
        .arg(&script)
        .arg(phase)
        .env("BASE", base)
        .env("USER", user)
        .env("PASSWORD", password)
        .env("ALERT", alert.to_string())
        .env("SHOTS", shots)
        .envs(env.iter().copied())
        .output()
        .expect("node (install Node.js; .ci/run installs chromium and playwright-core)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{phase} as {user} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().unwrap_or("");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{phase}: not JSON ({e}): {stdout}"))
}

fn sorted(ids: &[u64]) -> Vec<u64> {
    let mut v = ids.to_vec();
    v.sort();
    v
}

/// The id of `key`'s alert in `list`.
fn key_id(list: &[Value], key: &str) -> u64 {
    list.iter()
        .find(|a| a["key"] == key)
        .and_then(|a| a["id"].as_u64())
        .unwrap_or_else(|| panic!("{key}'s alert"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// A pipeline reading the review labels the alerts sink publishes, as delayed ground truth,
/// into the table `truth` (the latest label per alert).
fn truth_pipeline(port: u16) -> String {
    format!(
        "CREATE SOURCE review (alert BIGINT, model_version TEXT, label TEXT, ts_ms BIGINT)
           WITH (connector = 'mqtt', url = 'mqtt://127.0.0.1:{port}', topic = 'plant/labels',
                 qos = '1', format = 'json', event_time = 'ts_ms');
         CREATE SINK truth WITH (connector = 'table', key = 'alert');
         CREATE PIPELINE ground_truth AS INSERT INTO truth
         SELECT alert, model_version, label, ts_ms FROM review;"
    )
}

/// Starts [`truth_pipeline`] and waits until it has read a probe label (version `probe`).
fn start_truth(p: &mut Plant) {
    let body = json!({"name": "truth", "sql": truth_pipeline(p.broker.port)});
    let r = p.server.must("POST", "/api/v1/pipelines", Some(&body));
    assert_eq!(r.status, 201, "{r:?}");
    p.server
        .wait_state("truth", "running", Duration::from_secs(30));
    let probe = json!({"alert": 0, "model_version": "probe", "label": "x", "ts_ms": 0});
    let start = std::time::Instant::now();
    while p.server.status("truth")["queries"][0]["rows_in"].as_u64() < Some(1) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "truth read nothing"
        );
        p.publisher.publish("plant/labels", probe.to_string());
        p.publisher.wait_acks();
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// (labelled, true positives) per model version, counted over the alerts REST lists.
fn counted(p: &Plant) -> Vec<(String, u64, u64)> {
    let all = p.alerts_until("alerts", |_| true);
    let mut by = std::collections::BTreeMap::<String, (u64, u64)>::new();
    for a in &all {
        let (Some(v), Some(l)) = (a["model_version"].as_str(), a["label"].as_str()) else {
            continue;
        };
        let e = by.entry(v.to_string()).or_default();
        e.0 += 1;
        e.1 += (l == "true_positive") as u64;
    }
    by.into_iter().map(|(v, (n, tp))| (v, n, tp)).collect()
}

/// The same figures, by SQL over what the `truth` pipeline read from the label stream.
fn streamed(p: &Plant, want: &[(String, u64, u64)]) -> Vec<(String, u64, u64)> {
    let sql = "SELECT model_version, count(*) AS labelled, \
               sum(CASE WHEN label = 'true_positive' THEN 1 ELSE 0 END) AS tp \
               FROM truth WHERE model_version NOT LIKE 'probe%' \
               GROUP BY model_version ORDER BY model_version";
    let read = |s: &weir_tests::serve::WeirServer| -> Vec<(String, u64, u64)> {
        let r = s.must("POST", "/api/v1/query", Some(&json!({ "sql": sql })));
        r.json()["rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|r| {
                        let n = |k: &str| r[k].as_u64().unwrap_or(u64::MAX);
                        let v = r["model_version"].as_str().unwrap_or("?");
                        (v.to_string(), n("labelled"), n("tp"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    p.server
        .wait_until("the truth table", Duration::from_secs(30), |s| {
            read(s) == want
        });
    read(&p.server)
}

/// The `truth` pipeline's page while labels keep arriving: its operators, its counters and
/// the live output rows (as the admin sees them: a viewer reads only the tables granted).
fn pipeline_page(p: &Plant, base: &str, shots: &Path) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (flag, port) = (stop.clone(), p.broker.port);
    let feeder = std::thread::spawn(move || {
        let mut publisher = weir_tests::MqttPublisher::connect("serve-dashboard-live", port);
        let mut n = 0u64;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) && n < 300 {
            n += 1;
            // Labels of now: the watermark follows the real labels' times.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let probe = json!({"alert": 1000 + n, "model_version": "probe-live",
                               "label": "true_positive", "ts_ms": now});
            publisher.publish("plant/labels", probe.to_string());
            publisher.wait_acks();
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let seen = browse_with(
        base,
        shots,
        "pipeline",
        "admin",
        0,
        &[("PIPELINE", "truth")],
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    feeder.join().expect("the feeder");
    assert_eq!(seen["state"], "running", "{seen}");
    assert!(seen["rows_in"].as_u64() >= Some(3), "{seen}");
    let ops = strings(&seen["operators"]);
    assert_eq!(
        (ops.first(), ops.last()),
        (Some(&"source".to_string()), Some(&"sink".to_string())),
        "{seen}"
    );
    let columns = strings(&seen["columns"]);
    assert_eq!(
        columns,
        ["alert", "model_version", "label", "ts_ms"],
        "{seen}"
    );
    let row = strings(&seen["row"]);
    assert_eq!(row[1..3], ["probe-live", "true_positive"], "{seen}");
    assert!(row[0].parse::<u64>().is_ok_and(|a| a > 1000), "{seen}");
    assert!(
        seen["sql"].as_str().unwrap_or("").contains("plant/labels"),
        "{seen}"
    );
}

/// An ML engineer makes `risk` v2 current on the models page.
fn switch_model(base: &str, shots: &Path) {
    let seen = browse(base, shots, "models", "mia", 0);
    let rows = |k: &str| -> Vec<(String, u64, bool)> {
        seen[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| {
                        let v = r["version"].as_str().unwrap_or("?").to_string();
                        let current = r["current"].as_u64().unwrap_or(9);
                        (v, current, r["switchable"] == true)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        rows("before"),
        [("v1".into(), 1, false), ("v2".into(), 0, true)],
        "{seen}"
    );
    assert_eq!(
        rows("after"),
        [("v1".into(), 0, true), ("v2".into(), 1, false)],
        "{seen}"
    );
}

/// 2026-12-01 06:00 UTC (ms).
const T0: i64 = 1_796_104_800_000;

#[test]
fn an_operator_works_an_alert_in_the_browser() {
    let mut p = Plant::start("serve-dashboard");
    start_truth(&mut p);
    let shots: PathBuf = std::env::var_os("WEIR_SHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| scratch("serve-dashboard-shots"));
    // Readings of 2026-12-01 from 06:00 UTC, 5 s apart.
    let t = |s: i64| T0 + 5_000 * s;
    let mut r: Vec<(&str, i64, f64)> = [71.0, 72.5, 71.8, 73.0, 86.0, 93.0, 94.5]
        .iter()
        .enumerate()
        .map(|(i, &temp)| ("M1", t(i as i64), temp))
        .collect();
    r.extend([("M2", t(1), 71.0), ("M2", t(3), 98.0)]);
    p.publish(&r);
    let two = p.alerts_until("two alerts", |l| l.len() == 2);
    assert!(two.iter().all(|a| a["model_version"] == "v1"), "{two:?}");
    switch_model(&p.server.base, &shots);
    p.publish(&[("M7", t(2), 91.0)]);
    let list = p.alerts_until("three alerts", |l| l.len() == 3);
    let m7 = list.iter().find(|a| a["key"] == "M7");
    assert_eq!(
        m7.map(|a| &a["model_version"]),
        Some(&json!("v2")),
        "{list:?}"
    );
    let id = key_id(&list, "M1");
    let base = p.server.base.clone();

    let inbox = browse(&base, &shots, "inbox", "olga", id);
    let rows = inbox["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 3, "{inbox}");
    assert!(
        rows.iter()
            .all(|r| r["state"] == "open" && r["severity"] == "major"),
        "{inbox}"
    );

    let op = browse(&base, &shots, "operate", "olga", id);
    assert_eq!(
        strings(&op["states"]),
        ["open", "acknowledged", "dispatched", "fixed"],
        "{op}"
    );
    assert_eq!(op["late_ack_status"], 409, "{op}");
    let wo = p
        .orders
        .recv_timeout(Duration::from_secs(10))
        .expect("the work order");
    assert_eq!(
        (
            &wo["alert"],
            &wo["work_order"]["assignee"],
            &wo["work_order"]["instructions"]
        ),
        (&json!(id), &json!("tech-anna"), &json!("replace bearing")),
        "{wo}"
    );

    let cool: Vec<(&str, i64, f64)> = (0..8).map(|i| ("M1", t(10 + i), 66.0 - i as f64)).collect();
    p.publish(&cool);
    p.alerts_until("verified", |l| {
        l.iter().any(|a| a["id"] == id && a["state"] == "verified")
    });

    let view = browse(&base, &shots, "view", "vic", id);
    assert_eq!(
        (&view["state"], &view["forms"]),
        (&json!("verified"), &json!([])),
        "{view}"
    );
    // The input messages behind the newest evidence rows, read back from the archive.
    let inputs = strings(&view["inputs"]);
    assert!((1..=5).contains(&inputs.len()), "{view}");
    for i in &inputs {
        let m: Value = serde_json::from_str(i).unwrap_or(Value::Null);
        assert_eq!(m["machine_id"], "M1", "{view}");
    }
    let label = browse(&base, &shots, "label", "rita", id);
    assert!(
        strings(&label["events"]).contains(&"labelled".to_string()),
        "{label}"
    );
    assert_eq!(p.alert(id)["label"], "false_positive");

    let (m2, m7) = (key_id(&list, "M2"), key_id(&list, "M7"));
    let rev = browse(&base, &shots, "review", "rita", m2);
    let ids = |v: &Value| -> Vec<u64> {
        let mut out: Vec<u64> = strings(v).iter().filter_map(|s| s.parse().ok()).collect();
        out.sort();
        out
    };
    assert_eq!(ids(&rev["queued"]), sorted(&[m2, m7]), "{rev}");
    assert_eq!(ids(&rev["after"]), [m7], "{rev}");
    let want = counted(&p);
    assert_eq!(
        want,
        [("v1".to_string(), 2, 1)],
        "M1 false and M2 true positive"
    );
    let page: Vec<(String, u64, u64, u64, String)> = rev["reviews"]
        .as_array()
        .expect("reviews")
        .iter()
        .map(|r| {
            let n = |k: &str| r[k].as_u64().unwrap_or(u64::MAX);
            let v = r["version"].as_str().unwrap_or("?").to_string();
            let precision = r["precision"].as_str().unwrap_or("?").to_string();
            (v, n("alerts"), n("labelled"), n("tp"), precision)
        })
        .collect();
    assert_eq!(
        page,
        [
            ("v1".into(), 2, 2, 1, "0.500".into()),
            ("v2".into(), 1, 0, 0, "–".into())
        ],
        "{rev}"
    );
    assert_eq!(streamed(&p, &want), want);
    pipeline_page(&p, &base, &shots);

    let done = browse(&base, &shots, "confirm", "olga", id);
    assert_eq!(done["state"], "closed", "{done}");
    let mut events = strings(&done["events"]);
    events.reverse();
    let steps = [
        "raised",
        "acknowledged",
        "dispatched",
        "fixed",
        "verifying",
        "verified",
        "labelled",
        "closed",
    ];
    assert_eq!(events, steps, "{done}");
    browse(&base, &shots, "shots", "admin", id);
    for f in [
        "inbox",
        "alert-open",
        "alert-fixed",
        "alert-viewer",
        "alert-closed",
        "overview",
        "pipelines",
        "review",
        "models",
        "pipeline",
    ] {
        let png = shots.join(format!("{f}.png"));
        let len = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
        assert!(len > 10_000, "{} is {len} bytes", png.display());
    }
}
