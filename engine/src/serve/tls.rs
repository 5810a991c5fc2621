//! TLS for `weir serve` (`--tls-cert FILE --tls-key FILE`, PEM): rustls with the ring
//! provider. REST is served as HTTPS over hyper (axum's router as the service); the Postgres
//! protocol takes SSL requests through pgwire with the same certificate. With TLS, the server
//! may listen on any address.
use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::{Error, Result};

/// The server's certificate chain and key, read and checked.
pub fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>> {
    let bad = |what: &Path, e: String| Error::Request(format!("{}: {e}", what.display()));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, e.to_string()))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(cert, "no PEM certificate in it".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, e.to_string()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Request(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::Request(format!("--tls-cert/--tls-key: {e}")))?;
    Ok(Arc::new(config))
}

/// Serves `app` as HTTPS on `listener` until `stop` is notified.
pub async fn serve_https(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    config: Arc<ServerConfig>,
    stop: Arc<tokio::sync::Notify>,
) {
    let acceptor = TlsAcceptor::from(config);
    loop {
        let (socket, _) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(_) => continue,
            },
            _ = stop.notified() => return,
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            // A client that does not speak TLS, or gives up, ends its own connection only.
            let Ok(tls) = acceptor.accept(socket).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "an HTTPS connection ended with an error");
            }
        });
    }
}
