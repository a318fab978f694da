//! What an authorization request may carry (OIDC Core §3.1.2.1).

use serde::Deserialize;

/// Parameters of an authorization request. Unknown ones are ignored (OIDC Core §3.1.2.1);
/// `display`, `ui_locales` and `claims_locales` are accepted; `acr_values` and `claims` are
/// read by [`super::claims`].
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
}
