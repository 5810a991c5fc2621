//! Dashboard sessions: a random token in the `weir_session` cookie, known only to this
//! process (kept by its hash, in memory). A session ends at sign-out or [`LIFETIME_MS`] after
//! sign-in (12 hours: a shift), whichever comes first; a server restart signs everyone out.
//! The user behind a session is looked up at each request, so a removed role or user is
//! refused at once.
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use super::super::server::Server;
use super::super::users::{hex_hash, random_token, User};

/// How long a session lasts (ms).
pub const LIFETIME_MS: u64 = 12 * 3600 * 1000;

/// The sessions by token hash: (user name, expiry in ms since the Unix epoch).
fn table() -> &'static Mutex<HashMap<String, (String, u64)>> {
    static T: OnceLock<Mutex<HashMap<String, (String, u64)>>> = OnceLock::new();
    T.get_or_init(Default::default)
}

fn lock() -> std::sync::MutexGuard<'static, HashMap<String, (String, u64)>> {
    table().lock().unwrap_or_else(|p| p.into_inner())
}

/// Opens a session for `user` at `now` (ms); its token.
pub fn open(user: &str, now: u64) -> String {
    let token = random_token();
    let mut t = lock();
    t.retain(|_, (_, until)| *until > now);
    t.insert(
        hex_hash(&[token.as_bytes()]),
        (user.into(), now + LIFETIME_MS),
    );
    token
}

/// The name behind `token` at `now`, while its session lasts.
pub fn name_of(token: &str, now: u64) -> Option<String> {
    let key = hex_hash(&[token.as_bytes()]);
    let mut t = lock();
    match t.get(&key) {
        Some((name, until)) if *until > now => Some(name.clone()),
        Some(_) => {
            t.remove(&key);
            None
        }
        None => None,
    }
}

/// The user behind `token` now.
pub fn user_of(app: &Server, token: &str, now: u64) -> Option<User> {
    name_of(token, now).and_then(|n| app.users.get(&n))
}

/// Ends the session of `token`.
pub fn close(token: &str) {
    lock().remove(&hex_hash(&[token.as_bytes()]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_at_its_lifetime_or_at_sign_out() {
        let t0 = 1_000_000;
        let a = open("olga", t0);
        let b = open("vic", t0);
        assert_eq!(name_of(&a, t0 + 1).as_deref(), Some("olga"));
        assert_eq!(name_of(&a, t0 + LIFETIME_MS - 1).as_deref(), Some("olga"));
        assert_eq!(name_of(&a, t0 + LIFETIME_MS), None);
        assert_eq!(name_of(&a, t0 + 1), None, "gone once expired");
        close(&b);
        assert_eq!(name_of(&b, t0 + 1), None);
        assert_eq!(name_of("weir_forged", t0), None);
    }
}
