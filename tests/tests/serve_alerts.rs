//! Alerts over REST, the incident loop end to end: MQTT readings raise an `overheat` alert
//! per machine (repeats counted, the readings kept as evidence); a viewer may not act and a
//! refused transition changes nothing; an operator acknowledges, dispatches (the work order
//! arrives on the broker) and marks it fixed; cool readings verify it after 30 s of their own
//! time; a reviewer labels it; it is confirmed closed; `weir_alerts` and `weir_alert_events`
//! answer SQL; everything holds across a server restart; the machine firing again raises a
//! new alert.
use std::time::Duration;

use serde_json::{json, Value};
use weir_tests::plant::{person, Plant};
use weir_tests::serve::{Auth, WeirServer};

fn act(p: &Plant, who: &Auth, id: u64, action: &str, body: Value) -> (u16, Value) {
    let r = p
        .server
        .call_as(
            who,
            "POST",
            &format!("/api/v1/alerts/{id}/{action}"),
            Some(&body),
        )
        .expect("an answer");
    let v = serde_json::from_str(&r.text).unwrap_or(Value::Null);
    (r.status, v)
}

fn kinds(a: &Value) -> Vec<String> {
    a["events"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|e| e["kind"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn query(s: &WeirServer, who: &Auth, sql: &str) -> Vec<Value> {
    let r = s
        .call_as(who, "POST", "/api/v1/query", Some(&json!({ "sql": sql })))
        .expect("an answer");
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["rows"].as_array().cloned().unwrap_or_default()
}

#[test]
fn the_incident_loop_over_rest() {
    let mut p = Plant::start("serve-alerts");
    let mut readings = vec![("M1", 0, 70.0), ("M1", 1000, 71.5), ("M2", 1000, 72.0)];
    readings.extend([("M1", 2000, 95.0), ("M1", 3000, 96.5), ("M1", 4000, 97.0)]);
    readings.push(("M3", 4000, 99.0));
    p.publish(&readings);
    let list = p.alerts_until("two alerts, M1 raised 3 times", |l| {
        l.len() == 2 && l.iter().any(|a| a["key"] == "M1" && a["count"] == 3)
    });
    let m1 = list.iter().find(|a| a["key"] == "M1").expect("M1's alert");
    // Filtered by site: M3 is the only machine at `north`.
    let north = p
        .server
        .must("GET", "/api/v1/alerts?site=north", None)
        .json();
    let keys: Vec<&str> = north
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["key"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(keys, ["M3"], "{north}");
    assert_eq!(m1["site"], "south");
    let id = m1["id"].as_u64().expect("id");
    let a = p.alert(id);
    assert_eq!(
        (&a["state"], &a["severity"], &a["title"], &a["kind"]),
        (
            &json!("open"),
            &json!("major"),
            &json!("compressor overheating"),
            &json!("overheat")
        )
    );
    assert_eq!(
        (a["first_ms"].as_i64(), a["last_ms"].as_i64()),
        (Some(2000), Some(4000))
    );
    assert_eq!(a["playbook"], "Check the cooling fan and the oil level.");
    assert_eq!(a["model_version"], "v1");
    // The evidence: M1's readings up to the last raising one, oldest first.
    let temps: Vec<f64> = a["evidence"]["rows"]
        .as_array()
        .expect("evidence")
        .iter()
        .filter_map(|r| r[2].as_f64())
        .collect();
    assert_eq!(temps, [70.0, 71.5, 95.0, 96.5, 97.0], "{a}");
    assert_eq!(a["evidence"]["times"], json!([0, 1000, 2000, 3000, 4000]));
    // Each evidence row names the MQTT message behind it (provenance over the source's
    // archive); read back, they are the readings published.
    let traced = p
        .server
        .must("GET", &format!("/api/v1/alerts/{id}/inputs"), None);
    assert_eq!(traced.status, 200, "{traced:?}");
    let traced = traced.json();
    assert_eq!(traced["pipeline"], "watch", "{traced}");
    let sent: Vec<(i64, f64)> = traced["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let inputs = r["inputs"].as_array().expect("inputs");
            assert_eq!(inputs.len(), 1, "one message per row: {r}");
            let m: Value = serde_json::from_str(inputs[0].as_str().unwrap_or("")).expect("JSON");
            assert_eq!(
                (&m["machine_id"], &m["ts"]),
                (&json!("M1"), &r["ts_ms"]),
                "{r}"
            );
            (
                m["ts"].as_i64().unwrap_or(-1),
                m["temp"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect();
    let published: Vec<(i64, f64)> = readings
        .iter()
        .filter(|r| r.0 == "M1")
        .map(|r| (r.1, r.2))
        .collect();
    assert_eq!(sent, published, "{traced}");

    let (olga, vic, rita) = (person("olga"), person("vic"), person("rita"));
    let (code, body) = act(&p, &vic, id, "ack", json!({}));
    assert_eq!(code, 403, "{body}");
    let (code, body) = act(&p, &olga, id, "confirm", json!({}));
    assert_eq!(code, 409, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("allowed now: ack, dispatch, shelve"),
        "{body}"
    );
    let (code, _) = act(&p, &olga, id, "label", json!({"label": "true_positive"}));
    assert_eq!(code, 403);
    assert_eq!(kinds(&p.alert(id)), ["raised"], "refusals change nothing");

    let (code, a) = act(&p, &olga, id, "ack", json!({"note": "looking at the fan"}));
    assert_eq!((code, &a["state"]), (200, &json!("acknowledged")), "{a}");
    let (code, _) = act(&p, &olga, id, "dispatch", json!({"due": "tomorrow"}));
    assert_eq!(code, 400, "a dispatch needs an assignee");
    let order = json!({"assignee": "tech-anna", "due": "2026-12-04 08:00", "instructions": "replace the fan bearing"});
    let (code, a) = act(&p, &olga, id, "dispatch", order);
    assert_eq!((code, &a["state"]), (200, &json!("dispatched")), "{a}");
    let wo = p
        .orders
        .recv_timeout(Duration::from_secs(10))
        .expect("the work order");
    assert_eq!(
        (
            &wo["alert"],
            &wo["key"],
            &wo["work_order"]["assignee"],
            &wo["dispatched_by"]
        ),
        (
            &json!(id),
            &json!("M1"),
            &json!("tech-anna"),
            &json!("olga")
        ),
        "{wo}"
    );
    assert_eq!(wo["work_order"]["instructions"], "replace the fan bearing");
    let (code, a) = act(&p, &olga, id, "fixed", json!({"note": "bearing replaced"}));
    assert_eq!((code, &a["state"]), (200, &json!("fixed")), "{a}");
    let (code, body) = act(&p, &olga, id, "confirm", json!({}));
    assert_eq!(code, 409, "not verified yet: {body}");

    // Cool readings from 10 s to 45 s: verifying at 10 s, verified once 30 s have held.
    let cool: Vec<(&str, i64, f64)> = (0..8).map(|i| ("M1", 10_000 + 5_000 * i, 68.0)).collect();
    p.publish(&cool);
    p.alerts_until("M1 verified", |l| {
        l.iter().any(|a| a["id"] == id && a["state"] == "verified")
    });
    let (code, a) = act(
        &p,
        &rita,
        id,
        "label",
        json!({"label": "false_positive", "note": "calibration"}),
    );
    assert_eq!((code, &a["label"]), (200, &json!("false_positive")), "{a}");
    let (code, a) = act(&p, &olga, id, "confirm", json!({"note": "healthy again"}));
    assert_eq!((code, &a["state"]), (200, &json!("closed")), "{a}");
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
    assert_eq!(kinds(&a), steps);
    let users: Vec<&str> = a["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["user"].as_str())
        .collect();
    assert_eq!(
        users,
        ["weir", "olga", "olga", "olga", "weir", "weir", "rita", "olga"]
    );

    // SQL over the alerts, as any signed-in user.
    let rows = query(
        &p.server,
        &vic,
        "SELECT key, site, state, count FROM weir_alerts ORDER BY id",
    );
    assert_eq!(
        rows,
        [
            json!({"key": "M1", "site": "south", "state": "closed", "count": 3}),
            json!({"key": "M3", "site": "north", "state": "open", "count": 1})
        ]
    );
    let sql = format!("SELECT kind FROM weir_alert_events WHERE alert = {id} ORDER BY seq");
    let rows = query(&p.server, &vic, &sql);
    let got: Vec<&str> = rows.iter().filter_map(|r| r["kind"].as_str()).collect();
    assert_eq!(got, steps);
    let open = p
        .server
        .must("GET", "/api/v1/alerts?state=open", None)
        .json();
    assert_eq!(open.as_array().map(Vec::len), Some(1), "{open}");
    let bad = p.server.must("GET", "/api/v1/alerts?state=burning", None);
    assert_eq!(bad.status, 400);

    // kill -9 and a restart keep every alert and event; M1 firing again raises a new alert.
    let dir = p.server.state_dir.clone();
    let pid = p.server.pid().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status();
    assert!(killed.is_ok_and(|s| s.success()), "kill -9 {pid}");
    let dead = |pid: &str| {
        let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        st.is_empty() || st.contains(") Z ")
    };
    while !dead(&pid) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let log = p.server.log();
    assert!(!log.contains("panicked"), "{log}");
    // The old server is reaped (its drop waits for it) before the new one opens the store.
    drop(std::mem::replace(
        &mut p.server,
        WeirServer::start(&dir, &[]),
    ));
    assert_eq!(kinds(&p.alert(id)), steps);
    assert_eq!(p.alert(id)["work_order"]["assignee"], "tech-anna");
    p.server
        .wait_state("watch", "running", Duration::from_secs(30));
    let start = std::time::Instant::now();
    loop {
        p.publish(&[("M1", 60_000, 93.0)]);
        let l = p
            .server
            .must("GET", "/api/v1/alerts?state=open&key=M1", None)
            .json();
        if let Some(n) = l.as_array().and_then(|a| a.first()) {
            assert!(n["id"].as_u64() > Some(id), "{n}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no new alert for M1"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let labels = std::fs::read_to_string(dir.join("server/labels.jsonl")).expect("labels");
    let label: Value = serde_json::from_str(labels.trim()).expect("one label");
    assert_eq!(
        (
            &label["alert"],
            &label["label"],
            &label["user"],
            &label["model_version"]
        ),
        (
            &json!(id),
            &json!("false_positive"),
            &json!("rita"),
            &json!("v1")
        )
    );
}
