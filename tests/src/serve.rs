//! `weir serve` in tests: the server started as its own process on a free port and a state
//! directory, spoken to over HTTP with a real client (ureq), stopped with SIGTERM or killed.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::weir_bin;

/// The admin's password the tests start servers with (`WEIR_ADMIN_PASSWORD`).
pub const ADMIN_PASSWORD: &str = "admin-test-pw";

/// Credentials for a request.
#[derive(Debug, Clone)]
pub enum Auth {
    /// None.
    Anonymous,
    /// HTTP Basic.
    Basic(String, String),
    /// A bearer token.
    Bearer(String),
}

impl Auth {
    /// The admin, by password.
    pub fn admin() -> Auth {
        Auth::Basic("admin".into(), ADMIN_PASSWORD.into())
    }

    /// The `authorization` header's value (`None`: anonymous).
    pub fn header_value(&self) -> Option<String> {
        self.header()
    }

    fn header(&self) -> Option<String> {
        match self {
            Auth::Anonymous => None,
            Auth::Basic(u, p) => Some(format!(
                "Basic {}",
                weir_engine::client::base64(format!("{u}:{p}").as_bytes())
            )),
            Auth::Bearer(t) => Some(format!("Bearer {t}")),
        }
    }
}

/// A running `weir serve`.
pub struct WeirServer {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its state directory.
    pub state_dir: PathBuf,
    log: PathBuf,
}

/// An HTTP response: status and body.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The body as text.
    pub text: String,
}

impl Reply {
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl WeirServer {
    /// Starts `weir serve` on `state_dir` with `args`, and waits until it is ready.
    pub fn start(state_dir: &Path, args: &[&str]) -> WeirServer {
        let port = free_port();
        let log = state_dir.with_extension(format!("{port}.log"));
        let err = std::fs::File::create(&log).expect("log file");
        let child = std::process::Command::new(weir_bin())
            .args([
                "serve",
                "--http",
                &format!("127.0.0.1:{port}"),
                "--state-dir",
            ])
            .arg(state_dir)
            .args(args)
            .env("WEIR_LOG", "info")
            .env("WEIR_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stderr(err)
            .spawn()
            .expect("starting weir serve");
        let s = WeirServer {
            child,
            base: format!("http://127.0.0.1:{port}"),
            state_dir: state_dir.to_path_buf(),
            log,
        };
        s.wait_until("ready", Duration::from_secs(30), |s| {
            s.get("/readyz").map(|r| r.status == 200).unwrap_or(false)
        });
        s
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a request as the admin; `None` when the server did not answer.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Option<Reply> {
        self.call_as(&Auth::admin(), method, path, body)
    }

    /// Sends a request with `auth`; `None` when the server did not answer.
    pub fn call_as(
        &self,
        auth: &Auth,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Option<Reply> {
        let mut req =
            ureq::request(method, &format!("{}{path}", self.base)).timeout(Duration::from_secs(30));
        if let Some(h) = auth.header() {
            req = req.set("authorization", &h);
        }
        let res = match body {
            Some(b) => req
                .set("content-type", "application/json")
                .send_string(&b.to_string()),
            None => req.call(),
        };
        let r = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(_) => return None,
        };
        let status = r.status();
        Some(Reply {
            status,
            text: r.into_string().unwrap_or_default(),
        })
    }

    /// `PUT path` with `bytes` as an `application/octet-stream` body, with `auth`.
    pub fn put_bytes(&self, auth: &Auth, path: &str, bytes: &[u8]) -> Reply {
        let mut req = ureq::request("PUT", &format!("{}{path}", self.base))
            .timeout(Duration::from_secs(30))
            .set("content-type", "application/octet-stream");
        if let Some(h) = auth.header() {
            req = req.set("authorization", &h);
        }
        let r = match req.send_bytes(bytes) {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("PUT {path}: no answer ({e}); log:\n{}", self.log()),
        };
        Reply {
            status: r.status(),
            text: r.into_string().unwrap_or_default(),
        }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Option<Reply> {
        self.call("GET", path, None)
    }

    /// A request that must be answered.
    pub fn must(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        self.call(method, path, body)
            .unwrap_or_else(|| panic!("{method} {path}: no answer; log:\n{}", self.log()))
    }

    /// A pipeline's status.
    pub fn status(&self, name: &str) -> Value {
        self.must("GET", &format!("/api/v1/pipelines/{name}/status"), None)
            .json()
    }

    /// Waits (up to `timeout`) until `ok` holds.
    pub fn wait_until(&self, what: &str, timeout: Duration, ok: impl Fn(&Self) -> bool) {
        let start = Instant::now();
        while !ok(self) {
            assert!(
                start.elapsed() < timeout,
                "waited {timeout:?} for {what}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until pipeline `name` is in `state`.
    pub fn wait_state(&self, name: &str, state: &str, timeout: Duration) {
        self.wait_until(&format!("{name} {state}"), timeout, |s| {
            s.status(name)["state"] == state
        });
    }

    /// SIGTERM, then waits (up to 30 s) for a clean exit.
    pub fn terminate(mut self) -> String {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        let status = loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no exit after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "exit {status:?}:\n{}", self.log());
        self.log()
    }

    /// SIGKILL.
    pub fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log()
    }
}

impl Drop for WeirServer {
    /// A failing test leaves no server behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
