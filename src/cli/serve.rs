//! `serve`: bootstrap an empty database, then the HTTP server with its key reloader and janitor.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;

use crate::config::Config;
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
    tracing::info!(listen = %config.listen, issuer = %config.issuer, "serving");
    eprintln!("LaventeCare Auth listening on http://{}", config.listen);
    let state = AppState::new(config.clone(), db, master_key).await?;
    let state = AppState { passwords, ..state };
    let (stop_reloader, stopped) = tokio::sync::oneshot::channel::<()>();
    let reloader = crate::tokens::spawn_reloader(state.keys.clone(), crate::tokens::DEFAULT_RELOAD_INTERVAL, async {
        let _ = stopped.await;
    });
    let (stop_janitor, janitor_stopped) = tokio::sync::oneshot::channel::<()>();
    let janitor = config.janitor.interval.map(|interval| {
        crate::janitor::spawn(state.db.clone(), interval, config.janitor.batch_size, async move {
            let _ = janitor_stopped.await;
        })
    });
    let app = crate::app(state);
    axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    let _ = stop_reloader.send(());
    let _ = reloader.await;
    let _ = stop_janitor.send(());
    if let Some(janitor) = janitor {
        let _ = janitor.await;
    }
    tracing::info!("server stopped");
    Ok(())
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
