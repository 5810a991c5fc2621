//! `weir serve --tls-cert F --tls-key F`: REST over HTTPS and the Postgres protocol over SSL
//! with a certificate made by `openssl` for this test, on a non-loopback address (allowed
//! with TLS, refused without). `curl` checks the certificate against it and signs in; plain
//! HTTP to the same port gets no answer; `psql` with `sslmode=verify-full` runs statements,
//! and with another CA it refuses the server.
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use weir_tests::serve::{free_port, ADMIN_PASSWORD};
use weir_tests::{scratch, weir_bin};

/// A self-signed certificate for localhost and 127.0.0.1: (cert, key).
fn certificate(dir: &Path, name: &str) -> (String, String) {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (Debian package openssl; .ci/run installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert.display().to_string(), key.display().to_string())
}

/// `curl` with the CA `ca`: (HTTP status or 0 when there was no HTTP answer, body).
fn curl(ca: &str, args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "5",
            "--cacert",
            ca,
            "-w",
            "\n%{http_code}",
        ])
        .args(args)
        .output()
        .expect("curl (Debian package curl; .ci/run installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn psql(port: u16, ca: &str, sql: &str) -> (String, String, bool) {
    let conn = format!(
        "host=localhost port={port} user=admin dbname=weir sslmode=verify-full sslrootcert={ca}"
    );
    let out = Command::new("psql")
        .args([&conn, "-X", "-At", "-c", sql])
        .env("PGPASSWORD", ADMIN_PASSWORD)
        .output()
        .expect("psql (Debian package postgresql-client)");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

#[test]
fn rest_and_postgres_over_tls_on_any_address() {
    let dir = scratch("serve-tls");
    let (cert, key) = certificate(&dir, "server");
    let (other_ca, _) = certificate(&dir, "other");
    let (http, pg) = (free_port(), free_port());
    let log = std::fs::File::create(dir.join("serve.log")).expect("log");
    let mut child = Command::new(weir_bin())
        .args(["serve", "--http", &format!("0.0.0.0:{http}")])
        .args([
            "--pg",
            &format!("0.0.0.0:{pg}"),
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ])
        .arg("--state-dir")
        .arg(dir.join("state"))
        .env("WEIR_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stderr(log)
        .spawn()
        .expect("weir serve");
    let base = format!("https://localhost:{http}");
    let t0 = Instant::now();
    while curl(&cert, &[&format!("{base}/readyz")]).0 != 200 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "not ready over HTTPS"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let user = format!("admin:{ADMIN_PASSWORD}");
    let (code, body) = curl(&cert, &["-u", &user, &format!("{base}/api/v1/pipelines")]);
    assert_eq!((code, body.trim()), (200, "[]"));
    assert_eq!(
        curl(
            &cert,
            &["-u", "admin:wrong", &format!("{base}/api/v1/pipelines")]
        )
        .0,
        401
    );
    // The certificate is checked: another CA does not vouch for it.
    assert_eq!(curl(&other_ca, &[&format!("{base}/healthz")]).0, 0);
    // Plain HTTP to the TLS port gets no HTTP answer.
    assert_eq!(
        curl(&cert, &[&format!("http://127.0.0.1:{http}/healthz")]).0,
        0
    );

    let (out, err, ok) = psql(pg, &cert, "CREATE USER tls_user PASSWORD 'tls-user-pw-1'");
    assert!(ok, "psql over SSL: {err}");
    assert_eq!(out.trim(), "CREATE ROLE");
    let (out, err, ok) = psql(pg, &cert, "SHOW USERS");
    assert!(ok && out.contains("tls_user"), "{out} {err}");
    let (_, err, ok) = psql(pg, &other_ca, "SHOW USERS");
    assert!(!ok && err.contains("certificate"), "{err}");
    let _ = child.kill();
    let _ = child.wait();

    // A key that is not a key is refused at start, naming the file.
    let out = Command::new(weir_bin())
        .args(["serve", "--http", &format!("127.0.0.1:{}", free_port())])
        .args(["--tls-cert", &cert, "--tls-key", &cert, "--state-dir"])
        .arg(dir.join("state2"))
        .env("WEIR_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .output()
        .expect("weir serve");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("server.pem"), "{err}");
}
