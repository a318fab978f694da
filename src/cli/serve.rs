//! `serve`: bootstrap an empty database, then the HTTP server with its key reloader, janitor, back-channel
//! logout worker and (with `LCA_METRICS_LISTEN`) the metrics listener.
//! With `LCA_TLS_CERT`/`LCA_TLS_KEY` it answers https itself (rustls); else plain http, for a
//! loopback run or behind a reverse proxy that ends TLS. The certificate and key are read by
//! [`tls_config`] before the database is opened (`cli::run`).

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};

use crate::config::{Config, TlsFiles};
use crate::db::Database;
use crate::identity::PasswordHasher;
use crate::master_key::MasterKey;
use crate::{AppState, bootstrap};

/// `serve`: bootstrap, then the HTTP server until SIGINT or SIGTERM; in-flight requests finish.
pub(super) async fn run(
    config: Arc<Config>,
    db: Database,
    master_key: Arc<MasterKey>,
    passwords: PasswordHasher,
    tls: Option<rustls::ServerConfig>,
) -> anyhow::Result<()> {
    if let Some(done) = bootstrap::run(&db, &passwords, &config).await? {
        let mut out = std::io::stdout().lock();
        writeln!(out, "Created the platform tenant and its admin {}.", done.admin_email)?;
        if let Some(password) = &done.generated_password {
            writeln!(out, "One-time password (shown only now): {}", password.expose())?;
        }
        out.flush()?;
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(listen = %config.listen, issuer = %config.issuer, scheme, "serving");
    eprintln!("LaventeCare Auth listening on {scheme}://{}", config.listen);
    // Bound before anything is served, so a taken metrics port stops the start.
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on LCA_METRICS_LISTEN {addr}"))?,
        ),
        None => None,
    };
    let state = AppState::new(config.clone(), db, master_key).await?;
    let state = AppState { passwords, ..state };
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics = match metrics_listener {
        Some(listener) => {
            let handle = crate::telemetry::metrics::install()?;
            tracing::info!(listen = %listener.local_addr()?, "serving /metrics");
            Some(tokio::spawn(crate::scrape::serve(listener, state.clone(), handle, async {
                let _ = metrics_stopped.await;
            })))
        }
        None => None,
    };
    let (stop_reloader, stopped) = tokio::sync::oneshot::channel::<()>();
    let reloader = crate::tokens::spawn_reloader(state.keys.clone(), config.key_reload, async {
        let _ = stopped.await;
    });
    let (stop_janitor, janitor_stopped) = tokio::sync::oneshot::channel::<()>();
    let janitor = config.janitor.interval.map(|interval| {
        crate::janitor::spawn(state.db.clone(), interval, config.janitor.batch_size, async move {
            let _ = janitor_stopped.await;
        })
    });
    let (stop_backchannel, backchannel_stopped) = tokio::sync::oneshot::channel::<()>();
    let backchannel = crate::backchannel::spawn(state.clone(), async move {
        let _ = backchannel_stopped.await;
    });
    let app = crate::app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    match tls {
        None => axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?,
        Some(tls) => serve_tls(listener, tls, app, config.request_timeout + SHUTDOWN_MARGIN).await?,
    }
    let _ = stop_reloader.send(());
    let _ = reloader.await;
    let _ = stop_backchannel.send(());
    let _ = backchannel.await;
    let _ = stop_janitor.send(());
    if let Some(janitor) = janitor {
        let _ = janitor.await;
    }
    let _ = stop_metrics.send(());
    if let Some(metrics) = metrics {
        let _ = metrics.await;
    }
    tracing::info!("server stopped");
    Ok(())
}

/// How long after the request timeout a stopping https server still waits for connections.
const SHUTDOWN_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves https on `listener` until SIGINT or SIGTERM. As `axum::serve`'s graceful shutdown:
/// no new connections, idle ones closed, in-flight requests finish; handshakes not yet done
/// are dropped. Unlike HTTP/1.1, an HTTP/2 connection closes only once the client answers the
/// GOAWAY's PING (RFC 9113 §6.8): `grace` (the request timeout, which bounds every request,
/// plus a margin) keeps a client that never answers from holding the process.
async fn serve_tls(
    listener: tokio::net::TcpListener,
    tls: rustls::ServerConfig,
    app: axum::extract::connect_info::IntoMakeServiceWithConnectInfo<axum::Router, std::net::SocketAddr>,
    grace: std::time::Duration,
) -> anyhow::Result<()> {
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        stopper.graceful_shutdown(Some(grace));
    });
    let tls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls));
    axum_server::from_tcp_rustls(listener.into_std()?, tls)?.handle(handle).serve(app).await?;
    Ok(())
}

/// The rustls configuration of the two PEM files: TLS 1.3 and 1.2 only (rustls has nothing
/// older), ALPN `h2` then `http/1.1` (RFC 7301), the ring provider named here so the process
/// never depends on a global default. Errors name the file, never its contents.
pub(super) fn tls_config(files: &TlsFiles) -> anyhow::Result<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (cert_path, key_path) = (files.cert.display(), files.key.display());
    let cert_pem = std::fs::read(&files.cert).with_context(|| format!("cannot read LCA_TLS_CERT {cert_path}"))?;
    let key_pem = std::fs::read(&files.key).with_context(|| format!("cannot read LCA_TLS_KEY {key_path}"))?;
    // The parsers' own errors may quote a line of the file: none of them is passed on.
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| anyhow!("LCA_TLS_CERT {cert_path} is not a valid PEM file"))?;
    if chain.is_empty() {
        bail!("LCA_TLS_CERT {cert_path} holds no certificate (expected PEM)");
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| anyhow!("LCA_TLS_KEY {key_path} holds no valid PEM private key (PKCS#8, PKCS#1 or SEC1)"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("the TLS provider does not support TLS 1.2 and 1.3")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| anyhow!("LCA_TLS_CERT {cert_path} and LCA_TLS_KEY {key_path} do not make a usable pair: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        tracing::error!("cannot install signal handlers; stop the server with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown requested");
}
