//! What an authorization request may carry (OIDC Core §3.1.2.1).

use serde::Deserialize;

/// The longest `state` kept and echoed (ARCHITECTURE.md, "Hostile input"): relying parties
/// keep a return URL and a signature in it, so several KiB; longer is refused with the error
/// page, since it could not be echoed. Also the bound at RP-initiated logout.
pub const MAX_STATE_BYTES: usize = 4096;
/// The longest `nonce` (it is copied into the ID token).
pub const MAX_NONCE_BYTES: usize = 512;

/// Parameters of an authorization request. Unknown ones are ignored (OIDC Core §3.1.2.1);
/// `display` and `claims_locales` are accepted; `ui_locales` chooses the pages' language
/// (`session::language`); `acr_values` and `claims` are read by [`super::claims`].
#[derive(Debug, Default, Deserialize)]
pub struct AuthorizeParams {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub response_mode: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub id_token_hint: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
    /// Tenant slug hint for multi-tenant clients.
    pub tenant: Option<String>,
    pub display: Option<String>,
    pub ui_locales: Option<String>,
    pub claims_locales: Option<String>,
    pub acr_values: Option<String>,
    pub claims: Option<String>,
    /// The `resource` parameters (RFC 8707 §2): the only parameter that may be repeated, so
    /// the decoder takes them out of the query first ([`split_resources`]).
    #[serde(skip)]
    pub resources: Vec<String>,
    /// The thumbprint of the DPoP key the code is to be bound to (RFC 9449 §10).
    pub dpop_jkt: Option<String>,
}

/// The `resource` parameters of a request's decoded pairs, and the other pairs. RFC 8707 §2
/// lets `resource` be repeated, one for each API; every other parameter is refused when
/// repeated (RFC 6749 §3.1), which decoding the rest into [`AuthorizeParams`] does.
pub fn split_resources(pairs: Vec<(String, String)>) -> (Vec<String>, Vec<(String, String)>) {
    let (resources, rest): (Vec<_>, Vec<_>) = pairs.into_iter().partition(|(name, _)| name == "resource");
    (resources.into_iter().map(|(_, value)| value).collect(), rest)
}

impl AuthorizeParams {
    /// The first parameter past its bound, if any: those not bounded where they are read
    /// (`state` and `nonce` are bounded in `start`, `claims` and `acr_values` in `claims`,
    /// `scope` in `Scopes::parse`). A `login_hint` is an email address (RFC 5321 §4.5.3.1.3),
    /// a `tenant` a slug; the others are short lists of short words.
    pub fn too_long(&self) -> Option<&'static str> {
        let bounds: [(&'static str, &Option<String>, usize); 6] = [
            ("login_hint is too long", &self.login_hint, 254),
            ("tenant is too long", &self.tenant, 63),
            ("ui_locales is too long", &self.ui_locales, 256),
            ("claims_locales is too long", &self.claims_locales, 256),
            ("display is too long", &self.display, 32),
            ("prompt is too long", &self.prompt, 64),
        ];
        bounds.into_iter().find(|(_, value, max)| value.as_ref().is_some_and(|v| v.len() > *max)).map(|(why, _, _)| why)
    }
}
