//! The dashboard in a real browser (Debian chromium driven by playwright-core,
//! `tests/browser/dashboard.mjs`): an operator signs in, sees the inbox, acknowledges,
//! dispatches (the work order arrives on the broker) and marks fixed by clicking; a
//! transition the state does not allow is refused with 409; cool readings verify the alert;
//! a viewer sees it with no actions; a reviewer's label shows in the event log; the operator
//! confirms it closed. Every page is screenshotted (`WEIR_SHOTS`, else the scratch dir).
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use weir_tests::plant::{Plant, PEOPLE};
use weir_tests::scratch;
use weir_tests::serve::ADMIN_PASSWORD;

/// Runs one phase of the browser driver as `user`; what it saw.
fn browse(base: &str, shots: &Path, phase: &str, user: &str, alert: u64) -> Value {
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

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// 2026-12-01 06:00 UTC (ms).
const T0: i64 = 1_796_104_800_000;

#[test]
fn an_operator_works_an_alert_in_the_browser() {
    let mut p = Plant::start("serve-dashboard");
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
    r.extend([("M2", t(1), 71.0), ("M2", t(3), 98.0), ("M7", t(2), 91.0)]);
    p.publish(&r);
    let list = p.alerts_until("three alerts", |l| l.len() == 3);
    let id = list
        .iter()
        .find(|a| a["key"] == "M1")
        .and_then(|a| a["id"].as_u64())
        .expect("M1's alert");
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
    let label = browse(&base, &shots, "label", "rita", id);
    assert!(
        strings(&label["events"]).contains(&"labelled".to_string()),
        "{label}"
    );
    assert_eq!(p.alert(id)["label"], "false_positive");

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
    ] {
        let png = shots.join(format!("{f}.png"));
        let len = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
        assert!(len > 10_000, "{} is {len} bytes", png.display());
    }
}
