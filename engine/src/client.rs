//! The thin command-line client of `weir serve`: `weir submit FILE`, `weir ls`, `weir status
//! NAME`, `weir stop NAME`, `weir start NAME`, `weir delete NAME`, each one REST call to
//! `--server URL` (or `$WEIR_SERVER`, default `http://127.0.0.1:8080`), with `$WEIR_TOKEN` as a
//! bearer token when set, else `$WEIR_USER` and `$WEIR_PASSWORD` as HTTP Basic.
use std::time::Duration;

use serde_json::{json, Value};

/// One REST call: status and JSON body (`Null` for an empty one).
fn call(
    server: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value), String> {
    let url = format!("{}{path}", server.trim_end_matches('/'));
    let mut req = ureq::request(method, &url).timeout(Duration::from_secs(60));
    if let Ok(t) = std::env::var("WEIR_TOKEN") {
        req = req.set("authorization", &format!("Bearer {t}"));
    } else if let (Ok(u), Ok(p)) = (std::env::var("WEIR_USER"), std::env::var("WEIR_PASSWORD")) {
        req = req.set(
            "authorization",
            &format!("Basic {}", base64(format!("{u}:{p}").as_bytes())),
        );
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
        Err(e) => return Err(format!("{url}: {e}")),
    };
    let status = r.status();
    let text = r.into_string().map_err(|e| format!("{url}: {e}"))?;
    let v = match text.is_empty() {
        true => Value::Null,
        false => serde_json::from_str(&text).unwrap_or(Value::String(text)),
    };
    Ok((status, v))
}

/// Standard padded base64 (for HTTP Basic).
pub fn base64(b: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            match i <= c.len() {
                true => out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char),
                false => out.push('='),
            }
        }
    }
    out
}

/// An error body as a line (with the SQL position and hint, for `file`).
fn error_text(file: &str, v: &Value) -> String {
    let msg = v["message"].as_str().unwrap_or("request failed");
    let mut s = match (v["line"].as_u64(), v["column"].as_u64()) {
        (Some(l), Some(c)) if l > 0 => format!("{file}:{l}:{c}: {msg}"),
        _ => msg.to_string(),
    };
    if let Some(h) = v["hint"].as_str() {
        s.push_str(&format!("\n  hint: {h}"));
    }
    s
}

fn ok(file: &str, (status, v): (u16, Value)) -> Result<Value, String> {
    match status {
        200..=299 => Ok(v),
        _ => Err(error_text(file, &v)),
    }
}

/// `weir submit FILE [--name NAME]`: creates pipeline NAME (the file's stem) from FILE.
pub fn submit(server: &str, file: &str, name: Option<String>) -> Result<String, String> {
    let sql = std::fs::read_to_string(file).map_err(|e| format!("reading {file}: {e}"))?;
    let name = name.unwrap_or_else(|| {
        std::path::Path::new(file)
            .file_stem()
            .map(|s| s.to_string_lossy().replace('.', "_"))
            .unwrap_or_else(|| "main".into())
    });
    let body = json!({"name": name, "sql": sql});
    let v = ok(file, call(server, "POST", "/api/v1/pipelines", Some(body))?)?;
    Ok(format!(
        "pipeline {} {}",
        name,
        v["state"].as_str().unwrap_or("submitted")
    ))
}

/// `weir ls`: one line per pipeline.
pub fn ls(server: &str) -> Result<String, String> {
    let v = ok("", call(server, "GET", "/api/v1/pipelines", None)?)?;
    let mut out = format!(
        "{:<24} {:<10} {:<8} {}\n",
        "NAME", "STATE", "DESIRED", "CHECKPOINTS"
    );
    for p in v.as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{:<24} {:<10} {:<8} {}\n",
            p["name"].as_str().unwrap_or(""),
            p["state"].as_str().unwrap_or(""),
            p["desired"].as_str().unwrap_or(""),
            if p["checkpoints"] == true {
                "on"
            } else {
                "off"
            }
        ));
    }
    Ok(out)
}

/// `weir status NAME`: the status as JSON.
pub fn status(server: &str, name: &str) -> Result<String, String> {
    let v = ok(
        "",
        call(
            server,
            "GET",
            &format!("/api/v1/pipelines/{name}/status"),
            None,
        )?,
    )?;
    serde_json::to_string_pretty(&v).map_err(|e| e.to_string())
}

/// `weir stop|start|restart NAME`.
pub fn act(server: &str, name: &str, action: &str) -> Result<String, String> {
    let path = format!("/api/v1/pipelines/{name}/{action}");
    let v = ok("", call(server, "POST", &path, None)?)?;
    Ok(format!(
        "pipeline {name} {}",
        v["state"].as_str().unwrap_or("")
    ))
}

/// `weir delete NAME`.
pub fn delete(server: &str, name: &str) -> Result<String, String> {
    ok(
        "",
        call(server, "DELETE", &format!("/api/v1/pipelines/{name}"), None)?,
    )?;
    Ok(format!("pipeline {name} deleted"))
}
