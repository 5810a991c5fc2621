//! Signing in to the dashboard: the login form, the session cookie (a session of
//! `sessions.rs`: HttpOnly, SameSite=Strict, ending with the session), and the middleware that
//! sends a person without a live session to the login page. HTTP Basic and bearer tokens work
//! too, as on the API.
use std::sync::Arc;

use askama::Template;
use axum::extract::{Request, State as AxState};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use super::super::audit::Entry;
use super::super::pipeline::now_ms;
use super::super::server::Server;
use super::super::users::User;

/// The cookie's name.
const COOKIE: &str = "weir_session";

/// The login page.
#[derive(Template)]
#[template(path = "login.html")]
struct Login {
    flash: String,
}

/// A page's HTML, or a plain error if a template fails.
pub fn html(t: &impl Template, status: StatusCode) -> Response {
    match t.render() {
        Ok(s) => (status, Html(s)).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("rendering the page: {e}"),
        )
            .into_response(),
    }
}

/// The session token a request's cookie carries.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The signed-in user of a request, by cookie or by API credentials.
pub fn user_of(app: &Server, headers: &HeaderMap) -> Option<User> {
    match cookie_token(headers) {
        Some(t) => super::sessions::user_of(app, &t, now_ms()),
        None => super::super::auth::sign_in(app, headers),
    }
}

/// The middleware: the user reaches the page as an extension, or the login page is shown.
pub async fn require(AxState(app): AxState<Arc<Server>>, mut req: Request, next: Next) -> Response {
    match user_of(&app, req.headers()) {
        Some(u) => {
            req.extensions_mut().insert(u);
            next.run(req).await
        }
        None => Redirect::to("/ui/login").into_response(),
    }
}

/// `GET /ui/login`.
pub async fn login_form() -> Response {
    html(
        &Login {
            flash: String::new(),
        },
        StatusCode::OK,
    )
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct Credentials {
    user: String,
    password: String,
}

/// `POST /ui/login`: a session cookie and the inbox, or the form again.
pub async fn login(AxState(app): AxState<Arc<Server>>, Form(c): Form<Credentials>) -> Response {
    let name = c.user.trim().to_string();
    let app2 = app.clone();
    let checked = tokio::task::spawn_blocking(move || {
        app2.users
            .check_password(&name, &c.password)
            .map(|u| (super::sessions::open(&u.name, now_ms()), u))
    })
    .await
    .ok()
    .flatten();
    let (status, user) = match &checked {
        Some((_, u)) => (200, u.name.clone()),
        _ => (401, c.user.trim().to_string()),
    };
    app.audit.append(&Entry {
        ts_ms: now_ms(),
        user,
        action: "POST /ui/login".into(),
        target: String::new(),
        status,
        outcome: super::super::audit::outcome(status).into(),
    });
    match checked {
        Some((token, _)) => {
            let age = super::sessions::LIFETIME_MS / 1000;
            let cookie =
                format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={age}");
            ([(header::SET_COOKIE, cookie)], Redirect::to("/ui/alerts")).into_response()
        }
        _ => html(
            &Login {
                flash: "wrong user name or password".into(),
            },
            StatusCode::UNAUTHORIZED,
        ),
    }
}

/// `POST /ui/logout`: the session ends and the cookie is cleared.
pub async fn logout(headers: HeaderMap) -> Response {
    if let Some(t) = cookie_token(&headers) {
        super::sessions::close(&t);
    }
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/ui/login")).into_response()
}
