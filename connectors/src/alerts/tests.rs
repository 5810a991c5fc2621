//! The store over the lifecycle: raising, repeats, verification by the rows' time, people's
//! actions with their refusals, and the log replayed after a restart.
use super::*;

fn spec(verify_for_ms: i64) -> KindSpec {
    KindSpec {
        kind: "overheat".into(),
        verify: Some("avg_temp < 75".into()),
        verify_for_ms,
        ..KindSpec::default()
    }
}

fn obs(key: &str, raise: bool, verify: bool, t: i64) -> Observation {
    Observation {
        key: key.into(),
        site: "plant-a".into(),
        raise,
        verify: Some(verify),
        time_ms: t,
        severity: "major".into(),
        title: format!("hot {key}"),
        model_version: Some("v1".into()),
        evidence: raise.then(Evidence::default),
    }
}

fn kinds(a: &Alert) -> Vec<&str> {
    a.events.iter().map(|e| e.kind.as_str()).collect()
}

#[test]
fn repeats_are_counted_and_verification_waits_for_the_hold_time() {
    let s = Store::memory();
    let k = spec(30_000);
    s.observe(
        &k,
        vec![obs("M1", true, false, 1000), obs("M1", true, false, 2000)],
    )
    .unwrap();
    s.observe(&k, vec![obs("M2", true, false, 2500)]).unwrap();
    let all = s.list(None);
    assert_eq!(all.len(), 2);
    let m1 = s.get(1).unwrap();
    assert_eq!((m1.count, m1.first_ms, m1.last_ms), (2, 1000, 2000));
    let req = ActRequest {
        assignee: "anna".into(),
        ..ActRequest::default()
    };
    s.act(1, Action::Ack, "op", &req).unwrap();
    let e = s.act(1, Action::Ack, "op", &req).unwrap_err();
    assert!(matches!(e, ActError::Conflict(_)), "{e}");
    s.act(1, Action::Dispatch, "op", &req).unwrap();
    s.act(1, Action::Fixed, "op", &req).unwrap();
    // Holds from 10 s, fails at 20 s (reopened), holds again from 40 s to 70 s.
    s.observe(
        &k,
        vec![
            obs("M1", false, true, 10_000),
            obs("M1", false, false, 20_000),
        ],
    )
    .unwrap();
    assert_eq!(s.get(1).unwrap().state, State::Open);
    s.act(1, Action::Ack, "op", &req).unwrap();
    s.act(1, Action::Fixed, "op", &req).unwrap();
    s.observe(
        &k,
        vec![
            obs("M1", false, true, 40_000),
            obs("M1", false, true, 69_999),
        ],
    )
    .unwrap();
    assert_eq!(s.get(1).unwrap().state, State::Verifying);
    s.observe(&k, vec![obs("M1", false, true, 70_000)]).unwrap();
    let m1 = s.get(1).unwrap();
    assert_eq!(m1.state, State::Verified);
    s.act(1, Action::Confirm, "op", &req).unwrap();
    let m1 = s.get(1).unwrap();
    assert_eq!(
        kinds(&m1),
        [
            "raised",
            "acknowledged",
            "dispatched",
            "fixed",
            "verifying",
            "reopened",
            "acknowledged",
            "fixed",
            "verifying",
            "verified",
            "closed"
        ]
    );
    // The key fires again after closing: a new alert.
    s.observe(&k, vec![obs("M1", true, false, 80_000)]).unwrap();
    assert_eq!(s.get(3).unwrap().key, "M1");
    assert_eq!(s.get(1).unwrap().state, State::Closed);
}

#[test]
fn the_log_survives_a_restart_and_a_torn_line() {
    let dir = std::env::temp_dir().join(format!("weir-alerts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    {
        let s = Store::open(&dir).unwrap();
        let k = spec(0);
        s.observe(
            &k,
            vec![obs("M1", true, false, 1), obs("M1", true, false, 2)],
        )
        .unwrap();
        let req = ActRequest {
            assignee: "anna".into(),
            due: "tomorrow".into(),
            note: "on it".into(),
            ..ActRequest::default()
        };
        s.act(1, Action::Dispatch, "op", &req).unwrap();
        let bad = ActRequest {
            label: "maybe".into(),
            ..ActRequest::default()
        };
        assert!(matches!(
            s.act(1, Action::Label, "rev", &bad),
            Err(ActError::Invalid(_))
        ));
        let good = ActRequest {
            label: "false_positive".into(),
            ..ActRequest::default()
        };
        s.act(1, Action::Label, "rev", &good).unwrap();
    }
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("alerts.jsonl"))
        .unwrap();
    f.write_all(b"{\"t\":\"event\",\"ev").unwrap();
    let s = Store::open(&dir).unwrap();
    let a = s.get(1).unwrap();
    assert_eq!(a.state, State::Dispatched);
    assert_eq!(a.count, 2);
    assert_eq!(a.work_order.as_ref().unwrap().assignee, "anna");
    assert_eq!(a.label.as_deref(), Some("false_positive"));
    assert_eq!(kinds(&a), ["raised", "dispatched", "labelled"]);
    assert_eq!(a.events[1].note, "on it");
    let labels = std::fs::read_to_string(dir.join("labels.jsonl")).unwrap();
    assert!(labels.contains("\"label\":\"false_positive\""), "{labels}");
    // The next event continues the sequence.
    s.observe(&spec(0), vec![obs("M9", true, false, 5)])
        .unwrap();
    assert_eq!(s.get(2).unwrap().events[0].seq, 4);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A one-request HTTP server answering `status`; the request's body comes back on `rx`.
fn webhook(status: u16) -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/orders", l.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut len = 0;
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        tx.send(String::from_utf8(body).unwrap()).unwrap();
        let mut s = s;
        write!(s, "HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\nno").unwrap();
    });
    (url, rx)
}

#[test]
fn work_orders_go_to_a_webhook_and_a_refusal_changes_nothing() {
    let s = Store::memory();
    let (url, rx) = webhook(503);
    let mut k = spec(0);
    k.dispatch = Some(Dispatch::Http { url: url.clone() });
    s.declare(k.clone());
    s.observe(&k, vec![obs("M1", true, false, 1000)]).unwrap();
    let req = ActRequest {
        assignee: "anna".into(),
        instructions: "replace the bearing".into(),
        ..ActRequest::default()
    };
    let e = s.act(1, Action::Dispatch, "op", &req).unwrap_err();
    assert!(
        matches!(e, ActError::Delivery(ref m) if m.contains("503")),
        "{e}"
    );
    assert_eq!(s.get(1).unwrap().state, State::Open);
    assert!(rx.recv().unwrap().contains("replace the bearing"));

    let (url, rx) = webhook(201);
    k.dispatch = Some(Dispatch::Http { url });
    s.declare(k);
    let a = s.act(1, Action::Dispatch, "op", &req).unwrap();
    assert_eq!(a.state, State::Dispatched);
    let order: serde_json::Value = serde_json::from_str(&rx.recv().unwrap()).unwrap();
    assert_eq!(order["alert"], 1);
    assert_eq!(order["work_order"]["assignee"], "anna");
    assert_eq!(order["dispatched_by"], "op");
}
