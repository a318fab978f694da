//! Logs (tracing, JSON to stderr) and error reports (Sentry, when a DSN is set).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::Config;

/// Starts Sentry (when configured) and the log subscriber. Keep the returned guard alive for
/// the life of the process: dropping it flushes pending events.
pub fn init(config: &Config, default_filter: &str) -> Option<sentry::ClientInitGuard> {
    let guard = config.sentry_dsn.as_deref().map(|dsn| {
        sentry::init(
            sentry::ClientOptions::new()
                .dsn(dsn)
                .maybe_release(sentry::release_name!())
                // No request bodies, cookies or IP addresses leave the process.
                .send_default_pii(false),
        )
    });
    let filter = config
        .log
        .as_deref()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default_filter));
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().json().flatten_event(true).with_writer(std::io::stderr));
    // Error-level events become Sentry events; info and warn become their breadcrumbs.
    if guard.is_some() {
        use sentry::integrations::tracing::{BreadcrumbLayer, ErrorLayer};
        use tracing_subscriber::Layer as _;
        use tracing_subscriber::filter::LevelFilter;
        registry
            .with(ErrorLayer::new().with_filter(LevelFilter::ERROR))
            .with(BreadcrumbLayer::new().with_filter(LevelFilter::INFO))
            .try_init()
            .ok();
    } else {
        registry.try_init().ok();
    }
    guard
}
