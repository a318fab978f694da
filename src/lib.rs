//! LaventeCare Auth: a security-first, multi-tenant OpenID Connect provider on PostgreSQL.
//!
//! `main.rs` parses the command line, reads the configuration, opens the database (embedded or
//! external), migrates, and serves [`app`]; the tests drive the same router.

pub mod admin;
pub mod api;
pub mod backchannel;
pub mod bootstrap;
pub mod cli;
pub mod clients;
pub mod config;
pub mod db;
pub mod error;
pub mod extract;
pub mod health;
pub mod html;
pub mod identity;
pub mod janitor;
pub mod mail;
pub mod master_key;
pub mod notify;
pub mod outbound;
pub mod pages;
pub mod protocol;
pub mod render;
pub mod scrape;
pub mod secrets;
pub mod service_error;
pub mod session;
pub mod state;
pub mod telemetry;
pub mod tenancy;
pub mod tokens;

pub mod vocabulary;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::config::Config;
use crate::db::Database;
use crate::error::{AppError, REQUEST_ID_HEADER};
use crate::identity::PasswordHasher;

pub use crate::state::AppState;

/// The application builds its state: the discovery document is the protocol surface's, which
/// `state` (the HTTP edge) may not import.
impl AppState {
    /// Loads the signing keys (creating them on an empty database) and builds the state.
    pub async fn new(
        config: Arc<Config>,
        db: Database,
        master_key: Arc<master_key::MasterKey>,
    ) -> anyhow::Result<Self> {
        // Derived once per state; every transaction carries it to `audit::append`. Set before
        // the key store loads, which audits the keys it creates on an empty database.
        let db = db.with_audit_key(Arc::new(master_key.audit_key()));
        let keys = tokens::KeyStore::load(db.clone(), master_key.clone()).await?;
        let discovery = serde_json::to_vec(&protocol::discovery::metadata(&config.issuer))?.into();
        // The first unknown-email sign-in must not be slower than the rest.
        tokio::task::spawn_blocking(identity::password::warm_up);
        let mailer = mail::Mailer::from_config(&config)?;
        let dpop_nonces = Arc::new(tokens::dpop::Nonces::new(master_key.dpop_nonce_key()));
        let passkeys = identity::passkeys::RelyingParty::for_issuer(&config.issuer, html::text::EN.product)?;
        let client_metadata = clients::metadata_document::Fetcher::new(config.client_metadata_allow_private);
        Ok(Self {
            config,
            db,
            passwords: PasswordHasher::new(),
            mailer,
            master_key,
            keys,
            dpop_nonces,
            passkeys,
            client_metadata,
            discovery,
            handler_checks: admin::HandlerChecks::Enforced,
        })
    }
}

/// The HTTP application: one flat route list, then the layers every request passes.
pub fn app(state: AppState) -> Router {
    use protocol::discovery::paths;
    use protocol::{authorize, discovery, introspect, logout, revoke, token, userinfo};
    let config = state.config.clone();

    // Browser routes: they carry the session cookie.
    let sessions =
        SessionManagerLayer::new(db::browser_sessions::PgSessionStore::new(state.db.clone(), config.ttl.session_max))
            .with_name(if config.secure_cookies { "__Host-lca_session" } else { "lca_session" })
            .with_secure(config.secure_cookies)
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_path("/")
            .with_expiry(Expiry::OnInactivity(time::Duration::seconds(
                i64::try_from(config.ttl.session.as_secs()).unwrap_or(43200),
            )));
    let browser = Router::new()
        .route("/", get(pages::home))
        .route(paths::AUTHORIZE, get(authorize::authorize_get).post(authorize::authorize_post))
        .route("/authorize/continue", get(authorize::resume))
        .route("/login", get(pages::login::show).post(pages::login::submit))
        .route("/login/mfa", get(pages::mfa::step::show).post(pages::mfa::step::submit))
        .route("/login/passkey/begin", post(pages::passkeys::sign_in::begin_passwordless))
        .route("/login/mfa/passkey/begin", post(pages::passkeys::sign_in::begin_second_factor))
        .route("/login/passkey/finish", post(pages::passkeys::sign_in::finish))
        .route("/account/passkeys/begin", post(pages::passkeys::manage::begin))
        .route("/account/passkeys/finish", post(pages::passkeys::manage::finish))
        .route("/account/passkeys/remove", post(pages::passkeys::manage::remove))
        .route("/mfa/enrol", get(pages::mfa::enrol::enrol_show).post(pages::mfa::enrol::enrol_submit))
        .route("/account", get(pages::account::show))
        .route("/account/profile", post(pages::account::change_profile))
        .route("/account/password", post(pages::account::change_password))
        .route("/account/backup-codes", post(pages::account::regenerate_backup_codes))
        .route("/account/sessions/end", post(pages::account::end_session))
        .route("/account/sign-out-everywhere", post(pages::account::sign_out_everywhere))
        .route("/account/verify-email", post(pages::verify::send))
        .route("/verify-email", get(pages::verify::show).post(pages::verify::confirm))
        .route("/invite", get(pages::invite::show).post(pages::invite::accept))
        .route("/invite/continue", get(pages::invite::resume))
        // The admin pages: every route a line of `pages::admin::ROUTES`.
        .merge(pages::admin::router())
        .route("/recover", get(pages::recover::show).post(pages::recover::submit))
        .route("/forgot", get(pages::reset::forgot_show).post(pages::reset::forgot_submit))
        .route("/reset", get(pages::reset::reset_show).post(pages::reset::reset_submit))
        .route("/consent", get(pages::consent::show).post(pages::consent::submit))
        .route(paths::DEVICE, get(pages::device::show).post(pages::device::submit))
        .route("/device/decide", post(pages::device::decide))
        .route("/account/devices/revoke", post(pages::account::revoke_device))
        .route("/select-tenant", get(pages::tenant::show).post(pages::tenant::submit))
        .route(paths::END_SESSION, get(logout::logout_get).post(logout::logout_post))
        .layer(axum::middleware::from_fn(session::language::mark_errors))
        .layer(sessions)
        .layer(axum::middleware::from_fn(error::browser_outage));

    let routes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/.well-known/openid-configuration", get(discovery::openid_configuration))
        .route("/.well-known/oauth-authorization-server", get(discovery::openid_configuration))
        .route(paths::JWKS, get(discovery::jwks))
        .route(paths::TOKEN, post(token::token))
        .route(paths::USERINFO, get(userinfo::userinfo).post(userinfo::userinfo))
        .route(paths::INTROSPECT, post(introspect::introspect))
        .route(paths::REVOKE, post(revoke::revoke))
        .route(paths::DEVICE_AUTHORIZATION, post(protocol::device::device_authorization))
        .route(paths::PUSHED_AUTHORIZATION_REQUEST, post(protocol::authorize::pushed::par))
        .route(paths::REGISTRATION, post(protocol::registration::register))
        .route("/register/{client_id}", get(protocol::registration::read).delete(protocol::registration::delete))
        .route("/static/app.css", get(pages::stylesheet))
        .route("/static/form_post.js", get(pages::form_post_script))
        .route("/static/passkey.js", get(pages::passkey_script))
        .merge(browser)
        .merge(api::router())
        .fallback(|| async { AppError::NotFound })
        .with_state(state);
    with_common_layers(routes, &config)
}

/// Wraps routes in the layers every request passes: metrics (when on), Sentry, request id,
/// tracing, security headers, the error finisher, head bounds, panic catching, timeout and body
/// limits.
pub fn with_common_layers(routes: Router, config: &Config) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);

    // Outermost first.
    let layers = ServiceBuilder::new()
        .layer(sentry::integrations::tower::NewSentryLayer::<axum::extract::Request>::new_from_top())
        .layer(sentry::integrations::tower::SentryHttpLayer::new())
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::extract::Request| {
            let id = req.headers().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
        }))
        .layer(PropagateRequestIdLayer::new(request_id))
        // Headers every response carries (pages set their own CSP).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ))
        // RFC 6797: an https issuer tells browsers to use nothing else for two years. Not
        // `includeSubDomains`: other hosts of the deployer's domain are not ours to pin.
        .layer(tower::util::option_layer(config.secure_cookies.then(|| {
            SetResponseHeaderLayer::if_not_present(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=63072000"),
            )
        })))
        .layer(axum::middleware::from_fn(error::finish_errors))
        // Inside the finisher, so its refusals get our shape (ARCHITECTURE.md, "Hostile input").
        .layer(axum::middleware::from_fn(extract::refuse_hostile_head))
        .layer(CatchPanicLayer::custom(|_panic: Box<dyn std::any::Any + Send>| {
            axum::response::IntoResponse::into_response(AppError::Internal(anyhow::anyhow!("handler panicked")))
        }))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, config.request_timeout))
        .layer(RequestBodyLimitLayer::new(config.body_limit))
        .layer(axum::extract::DefaultBodyLimit::max(config.body_limit));
    let routes = routes.layer(layers);
    // Outermost, so it sees every answer as sent; only when metrics are on.
    match config.metrics_listen {
        Some(_) => routes.layer(axum::middleware::from_fn(telemetry::metrics::record_http)),
        None => routes,
    }
}
