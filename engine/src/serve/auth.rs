//! Who is calling and whether they may: every routed request passes here. Credentials are
//! HTTP Basic (name and password) or `Authorization: Bearer TOKEN`; the route decides what is
//! needed (`need`); the signed-in [`User`] reaches the handler as an extension; and a request
//! that changes something is appended to the audit log with its outcome, allowed or not.
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State as AxState};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::audit::Entry;
use super::error::ApiError;
use super::pipeline::now_ms;
use super::server::Server;
use super::users::{Role, User};

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing: health, readiness, the OpenAPI document, metrics.
    Public,
    /// Any signed-in user.
    Signed,
    /// An analyst or engineer: validate and create pipelines.
    Author,
    /// An engineer, or the analyst who created the pipeline: stop, start, delete it.
    Manage,
    /// An ML engineer: switch model versions.
    Models,
    /// An operator or a reviewer: act on alerts (the action decides which of the two).
    Act,
    /// An admin: users, roles, the audit log.
    Admin,
}

/// What `method route` needs (`route` as the router matched it: `/api/v1/pipelines/:name`).
pub fn need(method: &Method, route: &str) -> Need {
    let pipelines = "/api/v1/pipelines";
    match route {
        "/healthz" | "/readyz" | "/metrics" | "/api/v1/openapi.json" => Need::Public,
        "/api/v1/tokens" | "/api/v1/tables" | "/api/v1/query" | "/api/v1/models" => Need::Signed,
        "/api/v1/models/:model/version" | "/api/v1/models/:model/versions/:version" => Need::Models,
        "/api/v1/pipelines/:name/dead_letters" => Need::Author,
        "/api/v1/alerts" | "/api/v1/alerts/:id" | "/api/v1/alerts/:id/inputs" => Need::Signed,
        "/api/v1/kpis" => Need::Signed,
        "/api/v1/alerts/:id/:action" => Need::Act,
        _ if route.starts_with(pipelines) && method == Method::GET => Need::Signed,
        r if r == pipelines || r == "/api/v1/pipelines/validate" => Need::Author,
        r if r.starts_with(pipelines) => Need::Manage,
        _ => Need::Admin,
    }
}

/// The user whose credentials `headers` carry (`None`: none, or wrong ones).
pub(crate) fn sign_in(app: &Server, headers: &HeaderMap) -> Option<User> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" => app.users.check_token(rest.trim()),
        "basic" => {
            let text = decode_base64(rest.trim())?;
            let (name, password) = text.split_once(':')?;
            app.users.check_password(name, password)
        }
        _ => None,
    }
}

/// Standard base64 (RFC 4648, padded or not) to text.
fn decode_base64(s: &str) -> Option<String> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        let keep = chunk.len().saturating_sub(1);
        out.extend_from_slice(&n.to_be_bytes()[1..1 + keep]);
    }
    String::from_utf8(out).ok()
}

/// The value of `:name` in `route` for `path` (the pipeline or user a request is about).
fn target(route: &str, path: &str) -> String {
    route
        .split('/')
        .zip(path.split('/'))
        .filter(|(r, _)| r.starts_with(':'))
        .map(|(_, p)| p.to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// `route` with its `:param` segments written `{param}`, as the OpenAPI document has them.
fn braces(route: &str) -> String {
    route
        .split('/')
        .map(|seg| match seg.strip_prefix(':') {
            Some(p) => format!("{{{p}}}"),
            None => seg.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether `user` may do what `need` asks, on pipeline `name` for [`Need::Manage`].
fn allowed(app: &Server, user: &User, need: Need, name: &str) -> bool {
    match need {
        Need::Public | Need::Signed => true,
        Need::Author => user.any(&[Role::Analyst, Role::Engineer]),
        Need::Manage => {
            user.any(&[Role::Engineer])
                || (user.any(&[Role::Analyst])
                    && app
                        .get(name)
                        .is_ok_and(|p| p.record.lock().is_ok_and(|r| r.owner == user.name)))
        }
        Need::Models => user.any(&[Role::MlEngineer]),
        Need::Act => user.any(&[Role::Operator, Role::Reviewer]),
        Need::Admin => user.any(&[]),
    }
}

fn unauthorized() -> Response {
    let mut r = ApiError::Unauthorized("sign in: HTTP Basic with a user's password, or Authorization: Bearer with a token from POST /api/v1/tokens".into()).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Basic realm=\"weir\""),
    );
    r
}

/// The middleware: signs in, checks, audits.
pub async fn guard(AxState(app): AxState<Arc<Server>>, mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let method = req.method().clone();
    let need = need(&method, &route);
    if need == Need::Public {
        return next.run(req).await;
    }
    let name = target(&route, req.uri().path());
    let user = sign_in(&app, req.headers());
    let reads = ["/api/v1/pipelines/validate", "/api/v1/query"];
    let audited = method != Method::GET && !reads.contains(&route.as_str());
    let response = match &user {
        None => unauthorized(),
        Some(u) if !allowed(&app, u, need, &name) => ApiError::Forbidden(format!(
            "user '{}' ({}) may not {method} {route}",
            u.name,
            u.roles
                .iter()
                .map(|r| r.name())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into_response(),
        Some(u) => {
            req.extensions_mut().insert(u.clone());
            next.run(req).await
        }
    };
    if audited {
        let status = response.status();
        app.audit.append(&Entry {
            ts_ms: now_ms(),
            user: user.map_or_else(|| "-".into(), |u| u.name),
            action: format!("{method} {}", braces(&route)),
            target: name,
            status: status.as_u16(),
            outcome: super::audit::outcome(status.as_u16()).into(),
        });
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_basic_credentials() {
        assert_eq!(
            decode_base64("YWRtaW46c2VjcmV0").as_deref(),
            Some("admin:secret")
        );
        assert_eq!(decode_base64("YTpi").as_deref(), Some("a:b"));
        assert_eq!(decode_base64("YTpiYw==").as_deref(), Some("a:bc"));
        assert_eq!(decode_base64("YTpiYw").as_deref(), Some("a:bc"));
        assert_eq!(decode_base64("!!"), None);
    }

    #[test]
    fn routes_need_what_they_should() {
        let p = "/api/v1/pipelines";
        assert_eq!(need(&Method::GET, "/metrics"), Need::Public);
        assert_eq!(need(&Method::GET, p), Need::Signed);
        assert_eq!(need(&Method::POST, p), Need::Author);
        assert_eq!(
            need(&Method::POST, "/api/v1/pipelines/:name/stop"),
            Need::Manage
        );
        assert_eq!(
            need(&Method::DELETE, "/api/v1/pipelines/:name"),
            Need::Manage
        );
        assert_eq!(need(&Method::GET, "/api/v1/users"), Need::Admin);
        assert_eq!(need(&Method::GET, "/api/v1/audit"), Need::Admin);
        assert_eq!(need(&Method::POST, "/api/v1/query"), Need::Signed);
        assert_eq!(
            need(&Method::POST, "/api/v1/models/:model/version"),
            Need::Models
        );
        assert_eq!(
            need(&Method::PUT, "/api/v1/models/:model/versions/:version"),
            Need::Models
        );
        assert_eq!(
            need(&Method::GET, "/api/v1/pipelines/:name/dead_letters"),
            Need::Author
        );
        assert_eq!(
            need(&Method::POST, "/api/v1/tables/:table/grants"),
            Need::Admin
        );
        assert_eq!(
            target("/api/v1/pipelines/:name/stop", "/api/v1/pipelines/gen/stop"),
            "gen"
        );
        assert_eq!(
            braces("/api/v1/users/:user/roles/:role"),
            "/api/v1/users/{user}/roles/{role}"
        );
    }
}
