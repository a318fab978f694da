//! What every handler can reach (`State<AppState>`), in the HTTP edge so that the surfaces
//! import it downwards. It is built by the application (`AppState::new` in `lib.rs`), which
//! alone may see every surface (ARCHITECTURE.md, "Code map").

use std::sync::Arc;

use crate::admin::HandlerChecks;
use crate::config::Config;
use crate::db::Database;
use crate::identity::PasswordHasher;
use crate::mail::Mailer;
use crate::master_key::MasterKey;
use crate::tokens::KeyStore;

/// What every handler can reach. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Database,
    pub passwords: PasswordHasher,
    /// Sends the provider's mail (or logs it, without `LCA_SMTP_URL`).
    pub mailer: Mailer,
    /// Encrypts secrets at rest (signing keys, TOTP secrets).
    pub master_key: Arc<MasterKey>,
    /// Signing keys, decrypted once.
    pub keys: KeyStore,
    /// DPoP server nonces (RFC 9449 §8), keyed from the master key.
    pub dpop_nonces: Arc<crate::tokens::dpop::Nonces>,
    /// The WebAuthn relying party of the issuer; `None` when the issuer's host is an IP
    /// address (no page offers passkeys then).
    pub passkeys: Option<crate::identity::passkeys::RelyingParty>,
    /// Fetches client ID metadata documents (public addresses only, unless
    /// `LCA_CLIENT_METADATA_ALLOW_PRIVATE`).
    pub client_metadata: crate::clients::metadata_document::Fetcher,
    /// The discovery document, serialised once.
    pub discovery: axum::body::Bytes,
    /// Whether the admin surface's handlers check the permission table; always on, except in
    /// the test that shows Row Level Security holding without them.
    pub handler_checks: HandlerChecks,
}

impl AppState {
    /// The same state with the admin handlers' own checks off, so that only Row Level
    /// Security stands between tenants. For that one test (`tests/it/admin_rls.rs`): no
    /// setting, flag or variable leads here, and `tests/it/layers.rs` holds `src/` to never
    /// calling it.
    #[doc(hidden)]
    pub fn without_handler_checks(mut self) -> Self {
        self.handler_checks = HandlerChecks::Disabled;
        self
    }
}
