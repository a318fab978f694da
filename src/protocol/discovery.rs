//! OpenID Provider metadata (OIDC Discovery §3, RFC 8414) and the JWKS endpoint. The
//! metadata is built once at start; the JWKS bytes come from the key store, which rebuilds
//! them only when the keys change.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::html::text::Lang;
use crate::protocol::types::SCOPES_SUPPORTED;
use crate::session::{ACR_MFA, ACR_PASSWORD};
use crate::state::AppState;

/// Path of each endpoint, relative to the issuer.
pub mod paths {
    pub const AUTHORIZE: &str = "/authorize";
    pub const TOKEN: &str = "/token";
    pub const USERINFO: &str = "/userinfo";
    pub const JWKS: &str = "/jwks";
    pub const INTROSPECT: &str = "/introspect";
    pub const REVOKE: &str = "/revoke";
    pub const END_SESSION: &str = "/logout";
    pub const DEVICE_AUTHORIZATION: &str = "/device_authorization";
    /// RFC 7591 §3; `/register/{client_id}` is RFC 7592's client configuration endpoint.
    pub const REGISTRATION: &str = "/register";
    /// RFC 9126 §2.
    pub const PUSHED_AUTHORIZATION_REQUEST: &str = "/par";
    /// The device page (RFC 8628 `verification_uri`).
    pub const DEVICE: &str = "/device";
}

/// The metadata document for `issuer`.
pub fn metadata(issuer: &str) -> Value {
    let url = |path: &str| format!("{issuer}{path}");
    let client_auth = ["client_secret_basic", "client_secret_post", "none"];
    json!({
        "issuer": issuer,
        "authorization_endpoint": url(paths::AUTHORIZE),
        "token_endpoint": url(paths::TOKEN),
        "userinfo_endpoint": url(paths::USERINFO),
        "jwks_uri": url(paths::JWKS),
        "introspection_endpoint": url(paths::INTROSPECT),
        "revocation_endpoint": url(paths::REVOKE),
        "end_session_endpoint": url(paths::END_SESSION),
        "device_authorization_endpoint": url(paths::DEVICE_AUTHORIZATION),
        "pushed_authorization_request_endpoint": url(paths::PUSHED_AUTHORIZATION_REQUEST),
        // Off unless a tenant issues initial access tokens or allows open registration.
        "registration_endpoint": url(paths::REGISTRATION),
        // Always: whether a tenant's users may use such a client is that tenant's choice, which
        // one issuer-wide document cannot say (ARCHITECTURE.md, "Client ID metadata documents").
        "client_id_metadata_document_supported": true,
        // Per client (`client create --require-par`); RFC 9126 §5 names the provider-wide one.
        "require_pushed_authorization_requests": false,
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": [
            "authorization_code", "refresh_token", "client_credentials", crate::clients::GRANT_DEVICE_CODE
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        "token_endpoint_auth_methods_supported": client_auth,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": client_auth,
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": crate::tokens::dpop::ALGS,
        "acr_values_supported": [ACR_PASSWORD, ACR_MFA],
        // Not an OpenID-registered name: informational, for relying parties that read `amr`
        // (passkeys add hwk/swk/user/mfa where the issuer can have them; README, "Two-step
        // verification and account security").
        "amr_values_supported": crate::identity::passkeys::amr_values(issuer),
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "at_hash", "sid",
            "email", "email_verified", "name", "given_name", "family_name", "preferred_username", "locale",
            "zoneinfo", "updated_at", "tid", "tenant", "roles"
        ],
        "claim_types_supported": ["normal"],
        "display_values_supported": ["page"],
        "ui_locales_supported": Lang::ALL.map(Lang::tag),
        "claims_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        "authorization_response_iss_parameter_supported": true,
        "frontchannel_logout_supported": false,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        // Resource indicators (RFC 8707): no metadata name is registered for them; this one is
        // informational, like node-oidc-provider's feature flags (README, "Resource indicators").
        "resource_indicators_supported": true,
    })
}

/// `GET /.well-known/openid-configuration` (and the RFC 8414 path).
pub async fn openid_configuration(State(state): State<AppState>) -> Response {
    cached_json(state.discovery.clone(), "public, max-age=3600")
}

/// `GET /jwks`: a short cache, so a rotation reaches relying parties within minutes.
pub async fn jwks(State(state): State<AppState>) -> Response {
    cached_json(state.keys.jwks(), "public, max-age=300")
}

fn cached_json(body: Bytes, cache: &'static str) -> Response {
    let mut res = body.into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    // Relying parties in browsers fetch these cross-origin.
    res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    res
}
