//! `weir serve`: one long-running process with a job runtime that takes pipelines over REST
//! (`api.rs`, its OpenAPI document in `openapi.rs`), keeps them in a catalog in the state
//! directory (`catalog.rs`), runs each as a chain of checkpointed jobs when its sources can
//! continue from a position (`pipeline.rs`, `server.rs`), reports their status (`status.rs`)
//! and Prometheus metrics (`prometheus.rs`); users, roles and tokens (`users.rs`, managed in
//! `admin.rs`), checked on every request (`auth.rs`), changes audited (`audit.rs`); `SELECT`
//! over the `table` sinks (`query.rs`, `tables_api.rs`) and their rows as server-sent events
//! (`output.rs`); model versions, switched and uploaded (`models_api.rs`, `uploads.rs`); the
//! newest dead letters (`dead_api.rs`); alerts and their lifecycle (`alerts_api.rs`,
//! `alert_tables.rs`; the inputs behind their evidence in `alert_inputs.rs`), business KPIs
//! against their baselines (`kpi_api.rs`) and the dashboard's pages (`ui/`). Started again on the same directory — after a clean
//! stop or kill -9 — it starts every pipeline recorded as running, each from its newest
//! checkpoint.
pub mod admin;
pub mod alert_inputs;
pub mod alert_tables;
pub mod alerts_api;
pub mod api;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod dead_api;
pub mod declarations;
pub mod error;
pub mod kpi_api;
pub mod models_api;
pub mod openapi;
pub mod output;
pub mod pg;
pub mod pipeline;
pub mod prometheus;
pub mod query;
pub mod server;
pub mod status;
pub mod tables_api;
pub mod tls;
pub mod ui;
pub mod uploads;
pub mod users;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::runtime::{Runtime, RuntimeOptions};
use crate::{Error, Result};

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The REST API's address.
    pub http: SocketAddr,
    /// The Postgres protocol's address, if any.
    pub pg: Option<SocketAddr>,
    /// The catalog's and the checkpoints' directory.
    pub state_dir: PathBuf,
    /// Worker threads of the runtime.
    pub workers: usize,
    /// Time between checkpoints.
    pub every: Duration,
    /// Listen on a non-loopback address without TLS.
    pub insecure: bool,
    /// TLS: the certificate chain's and the private key's PEM files.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The first admin's password (`WEIR_ADMIN_PASSWORD`), used when there are no users yet.
    pub admin_password: Option<String>,
}

/// Refuses to serve plain HTTP beyond this machine unless told to.
fn check_address(opts: &ServeOptions) -> Result<()> {
    if opts.tls.is_some() {
        return Ok(());
    }
    if !opts.http.ip().is_loopback() && !opts.insecure {
        return Err(Error::Request(format!(
            "--http {}: plain HTTP on a non-loopback address would send passwords and tokens in the clear; listen on 127.0.0.1, give --tls-cert and --tls-key, or pass --insecure",
            opts.http
        )));
    }
    if let Some(pg) = opts.pg.filter(|a| !a.ip().is_loopback() && !opts.insecure) {
        return Err(Error::Request(format!(
            "--pg {pg}: the Postgres protocol without TLS on a non-loopback address is refused; listen on 127.0.0.1, give --tls-cert and --tls-key, or pass --insecure"
        )));
    }
    Ok(())
}

/// Serves until SIGTERM or Ctrl-C; then stops every pipeline at a last checkpoint.
pub fn serve(opts: &ServeOptions) -> Result<()> {
    check_address(opts)?;
    let tls = match &opts.tls {
        Some((cert, key)) => Some(tls::load(cert, key)?),
        None => None,
    };
    std::fs::create_dir_all(&opts.state_dir).map_err(|e| Error::Io {
        context: format!("creating {}", opts.state_dir.display()),
        source: e,
    })?;
    let rt = Arc::new(Runtime::start(&RuntimeOptions {
        workers: opts.workers,
        cluster: None,
    })?);
    let server = Arc::new(
        server::Server::new(rt, &opts.state_dir, opts.every, opts.admin_password.clone())
            .map_err(|e| Error::Request(e.to_string()))?,
    );
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Request(format!("starting the HTTP runtime: {e}")))?;
    let listener = tokio
        .block_on(tokio::net::TcpListener::bind(opts.http))
        .map_err(|e| Error::Io {
            context: format!("--http {}", opts.http),
            source: e,
        })?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!("weir serve: REST on {scheme}://{}/api/v1", opts.http);
    if let Some(pg) = opts.pg {
        let l = tokio
            .block_on(tokio::net::TcpListener::bind(pg))
            .map_err(|e| Error::Io {
                context: format!("--pg {pg}"),
                source: e,
            })?;
        eprintln!("weir serve: Postgres protocol on {pg}");
        let acceptor = tls.clone().map(tokio_rustls::TlsAcceptor::from);
        tokio.spawn(pg::serve(l, server.clone(), acceptor));
    }
    let restore = server.clone();
    let restoring = std::thread::spawn(move || restore.restore());
    let app = api::routes(server.clone());
    let served = tokio.block_on(async move {
        let stop = Arc::new(tokio::sync::Notify::new());
        let (s1, s2) = (stop.clone(), stop.clone());
        tokio::spawn(async move {
            shutdown_signal().await;
            s1.notify_waiters();
        });
        // Requests in flight get 5 s after the signal; an open event stream does not hold the
        // server up.
        let deadline = async {
            stop.notified().await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        };
        match tls {
            Some(config) => {
                let serving = tls::serve_https(listener, app, config, s2);
                tokio::select! {
                    _ = serving => Ok(()),
                    _ = deadline => Ok(()),
                }
            }
            None => {
                let serving = axum::serve(listener, app)
                    .with_graceful_shutdown(async move { s2.notified().await });
                tokio::select! {
                    r = serving => r,
                    _ = deadline => Ok(()),
                }
            }
        }
    });
    if let Ok(Err(e)) = restoring.join() {
        eprintln!("weir serve: {e}");
    }
    eprintln!("weir serve: stopping every pipeline at a checkpoint");
    server.shutdown();
    served.map_err(|e| Error::Request(format!("serving HTTP: {e}")))
}

/// Resolves at SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
}
