//! Users, roles and the audit log of `weir serve`, over REST with real clients: every role
//! (and a user with none, and nobody signed in) against every class of route, allowed and
//! denied; tokens; an analyst who may manage only their own pipelines and may not set
//! secrets; a revoked role that stops working at once; users, tokens and the audit log
//! surviving a restart; every change in the audit log with its outcome.
use std::path::Path;

use serde_json::{json, Value};
use weir_tests::scratch;
use weir_tests::serve::{Auth, WeirServer};

const ROLES: [&str; 7] = [
    "viewer",
    "operator",
    "reviewer",
    "analyst",
    "engineer",
    "ml_engineer",
    "admin",
];

fn sql(out: &Path, rows: u32, rate: u32) -> String {
    format!(
        "CREATE SOURCE g (sensor_id TEXT, ts BIGINT, temperature DOUBLE)
           WITH (connector = 'generator', sensors = '2', rows = '{rows}', rate = '{rate}', event_time = 'ts');
         CREATE SINK out WITH (connector = 'file', path = '{}', format = 'csv');
         CREATE PIPELINE p AS INSERT INTO out SELECT sensor_id, ts FROM g;",
        out.display()
    )
}

fn user(name: &str) -> Auth {
    Auth::Basic(name.into(), format!("{name}-password"))
}

/// The status `auth` gets for `method path`.
fn code(s: &WeirServer, auth: &Auth, method: &str, path: &str, body: Option<Value>) -> u16 {
    s.call_as(auth, method, path, body.as_ref())
        .unwrap_or_else(|| panic!("{method} {path}: no answer"))
        .status
}

#[test]
fn every_role_against_every_route_class() {
    let dir = scratch("serve-roles");
    let s = WeirServer::start(&dir.join("state"), &[]);
    let admin = Auth::admin();
    for r in ROLES {
        let body =
            json!({"name": format!("u_{r}"), "password": format!("u_{r}-password"), "roles": [r]});
        assert_eq!(code(&s, &admin, "POST", "/api/v1/users", Some(body)), 201);
    }
    let body = json!({"name": "u_none", "password": "u_none-password"});
    assert_eq!(code(&s, &admin, "POST", "/api/v1/users", Some(body)), 201);
    let base = json!({"name": "base", "sql": sql(&dir.join("base.csv"), 1_000_000, 5)});
    assert_eq!(
        code(&s, &admin, "POST", "/api/v1/pipelines", Some(base)),
        201
    );

    // Nobody signed in, or a wrong password: 401 with a Basic challenge.
    let r = s
        .call_as(&Auth::Anonymous, "GET", "/api/v1/pipelines", None)
        .expect("answer");
    assert_eq!(r.status, 401, "{r:?}");
    let wrong = Auth::Basic("u_admin".into(), "not-it-at-all".into());
    assert_eq!(code(&s, &wrong, "GET", "/api/v1/pipelines", None), 401);
    assert_eq!(code(&s, &Auth::Anonymous, "GET", "/healthz", None), 200);
    assert_eq!(code(&s, &Auth::Anonymous, "GET", "/metrics", None), 200);

    let valid = sql(&dir.join("v.csv"), 10, 0);
    for r in ROLES.iter().copied().chain(["none"]) {
        let u = user(&format!("u_{r}"));
        let author = ["analyst", "engineer", "admin"].contains(&r);
        let manager = ["engineer", "admin"].contains(&r);
        let want = |yes: bool, ok: u16| if yes { ok } else { 403 };
        assert_eq!(code(&s, &u, "GET", "/api/v1/pipelines", None), 200, "{r}");
        assert_eq!(
            code(&s, &u, "GET", "/api/v1/pipelines/base/status", None),
            200,
            "{r}"
        );
        let dead = code(&s, &u, "GET", "/api/v1/pipelines/base/dead_letters", None);
        assert_eq!(
            dead,
            want(author, 200),
            "{r}: dead letters are raw source data"
        );
        let v = json!({"sql": valid});
        assert_eq!(
            code(&s, &u, "POST", "/api/v1/pipelines/validate", Some(v)),
            want(author, 200),
            "{r}"
        );
        let mine = format!("p_{r}");
        let p = json!({"name": mine, "sql": sql(&dir.join(format!("{mine}.csv")), 1_000_000, 5)});
        assert_eq!(
            code(&s, &u, "POST", "/api/v1/pipelines", Some(p)),
            want(author, 201),
            "{r}"
        );
        if author {
            // Their own pipeline, whatever their role.
            let stop = format!("/api/v1/pipelines/{mine}/stop");
            assert_eq!(code(&s, &u, "POST", &stop, None), 200, "{r}");
        }
        let stop = code(&s, &u, "POST", "/api/v1/pipelines/base/stop", None);
        assert_eq!(stop, want(manager, 200), "{r}");
        if manager {
            assert_eq!(
                code(&s, &u, "POST", "/api/v1/pipelines/base/start", None),
                200,
                "{r}"
            );
        }
        let is_admin = r == "admin";
        assert_eq!(
            code(&s, &u, "GET", "/api/v1/users", None),
            want(is_admin, 200),
            "{r}"
        );
        assert_eq!(
            code(&s, &u, "GET", "/api/v1/audit", None),
            want(is_admin, 200),
            "{r}"
        );
        let g = json!({"role": "viewer"});
        let grant = code(&s, &u, "POST", "/api/v1/users/u_none/roles", Some(g));
        assert_eq!(grant, want(is_admin, 204), "{r}");
        // A token of one's own, which then signs in.
        let t = s
            .call_as(&u, "POST", "/api/v1/tokens", None)
            .expect("answer");
        assert_eq!(t.status, 201, "{r}: {t:?}");
        let token = Auth::Bearer(t.json()["token"].as_str().expect("token").into());
        assert_eq!(
            code(&s, &token, "GET", "/api/v1/pipelines", None),
            200,
            "{r}"
        );
    }

    // An analyst may not set connector secrets, nor manage another analyst's pipeline.
    let secret = format!(
        "CREATE SOURCE m (v DOUBLE) WITH (connector = 'mqtt', url = 'mqtt://127.0.0.1:1', topic = 't', username = 'a', password = 'xyz-secret');
         CREATE SINK out WITH (connector = 'file', path = '{}', format = 'csv');
         CREATE PIPELINE p AS INSERT INTO out SELECT v FROM m;",
        dir.join("m.csv").display()
    );
    let analyst = user("u_analyst");
    let p = json!({"name": "with_secret", "sql": secret});
    assert_eq!(
        code(&s, &analyst, "POST", "/api/v1/pipelines", Some(p)),
        403
    );
    assert_eq!(
        code(&s, &analyst, "DELETE", "/api/v1/pipelines/p_engineer", None),
        403
    );
    assert_eq!(
        code(&s, &analyst, "DELETE", "/api/v1/pipelines/p_analyst", None),
        204
    );

    // A revoked role stops working at once.
    assert_eq!(
        code(
            &s,
            &admin,
            "DELETE",
            "/api/v1/users/u_analyst/roles/analyst",
            None
        ),
        204
    );
    let v = json!({"sql": valid});
    assert_eq!(
        code(&s, &analyst, "POST", "/api/v1/pipelines/validate", Some(v)),
        403
    );

    // The audit log holds every change, allowed and denied, and no secret.
    let audit = s.must("GET", "/api/v1/audit", None);
    assert!(!audit.text.contains("xyz-secret"), "{}", audit.text);
    let entries = audit.json();
    let has = |user: &str, action: &str, target: &str, outcome: &str| {
        entries.as_array().expect("entries").iter().any(|e| {
            e["user"] == user
                && e["action"] == action
                && e["target"] == target
                && e["outcome"] == outcome
        })
    };
    assert!(
        has(
            "u_viewer",
            "POST /api/v1/pipelines/{name}/stop",
            "base",
            "denied"
        ),
        "{entries}"
    );
    assert!(
        has(
            "u_engineer",
            "POST /api/v1/pipelines/{name}/stop",
            "base",
            "ok"
        ),
        "{entries}"
    );
    assert!(
        has("u_analyst", "POST /api/v1/pipelines", "", "denied"),
        "{entries}"
    );
    assert!(
        has(
            "admin",
            "DELETE /api/v1/users/{user}/roles/{role}",
            "u_analyst/analyst",
            "ok"
        ),
        "{entries}"
    );
    assert!(
        has("u_viewer", "POST /api/v1/tokens", "", "ok"),
        "{entries}"
    );
    assert!(
        !has("-", "GET /api/v1/pipelines", "", "denied"),
        "reads are not audited"
    );
    let changes = entries.as_array().map_or(0, |a| a.len());

    // Users, tokens and the log survive a restart.
    let t = s
        .call_as(&user("u_viewer"), "POST", "/api/v1/tokens", None)
        .expect("answer");
    let token = Auth::Bearer(t.json()["token"].as_str().expect("token").into());
    s.terminate();
    let s = WeirServer::start(&dir.join("state"), &[]);
    assert_eq!(code(&s, &token, "GET", "/api/v1/pipelines", None), 200);
    assert_eq!(
        code(
            &s,
            &user("u_engineer"),
            "GET",
            "/api/v1/pipelines/base/status",
            None
        ),
        200
    );
    let after = s.must("GET", "/api/v1/audit", None).json();
    assert!(after.as_array().map_or(0, |a| a.len()) > changes, "{after}");
    s.terminate();
}
