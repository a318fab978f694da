//! Logs (tracing, JSON to stderr), error reports (Sentry, when a DSN is set) and metrics
//! (Prometheus, when `LCA_METRICS_LISTEN` is set: [`metrics`]).

pub mod metrics;

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
                .send_default_pii(false)
                .before_send(|mut event| {
                    scrub(&mut event);
                    Some(event)
                })
                .before_breadcrumb(|mut crumb| {
                    scrub_breadcrumb(&mut crumb);
                    Some(crumb)
                }),
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

/// Takes what may carry a secret out of an event before it leaves the process: query strings
/// hold recovery tokens, `id_token_hint`s, codes and `state`; cookies hold the session; and
/// `Authorization` holds client secrets and bearer tokens. The path stays, for triage.
fn scrub(event: &mut sentry::protocol::Event<'static>) {
    if let Some(request) = event.request.as_mut() {
        if let Some(url) = request.url.as_mut() {
            url.set_query(None);
            url.set_fragment(None);
        }
        request.query_string = None;
        request.cookies = None;
        request.data = None;
        request.headers.retain(|name, _| {
            let name = name.to_ascii_lowercase();
            ["user-agent", "content-type", "content-length", "accept", "x-request-id"].contains(&name.as_str())
        });
    }
}

/// Info lines become breadcrumbs of the next error event. A mail logged for a local run
/// (`mail`, without `LCA_SMTP_URL`) carries its body, one-time link and all: that field stays
/// in the log and never goes to Sentry.
fn scrub_breadcrumb(crumb: &mut sentry::protocol::Breadcrumb) {
    crumb.data.remove("body");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breadcrumbs_lose_mail_bodies() {
        let mut crumb = sentry::protocol::Breadcrumb::default();
        crumb.data.insert("body".into(), "https://id.example.com/reset?token=s3cret".into());
        crumb.data.insert("to".into(), "ann@example.com".into());
        scrub_breadcrumb(&mut crumb);
        assert_eq!(crumb.data.keys().collect::<Vec<_>>(), ["to"]);
    }

    /// A request's query, cookies and credentials never reach Sentry; its path does.
    #[test]
    fn events_lose_queries_cookies_and_credentials() {
        let mut event = sentry::protocol::Event::default();
        let mut headers = std::collections::BTreeMap::new();
        headers.insert("Authorization".to_owned(), "Basic c2VjcmV0".to_owned());
        headers.insert("Cookie".to_owned(), "lca_session=abc".to_owned());
        headers.insert("User-Agent".to_owned(), "test".to_owned());
        event.request = Some(sentry::protocol::Request {
            url: "https://id.example.com/recover?token=s3cret#frag".parse().ok(),
            query_string: Some("token=s3cret".into()),
            cookies: Some("lca_session=abc".into()),
            headers,
            ..Default::default()
        });
        scrub(&mut event);
        let request = event.request.unwrap();
        assert_eq!(request.url.unwrap().as_str(), "https://id.example.com/recover");
        assert_eq!((request.query_string, request.cookies), (None, None));
        assert_eq!(request.headers.keys().collect::<Vec<_>>(), ["User-Agent"]);
    }
}
