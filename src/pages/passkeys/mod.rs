//! Passkeys on the hosted pages (ARCHITECTURE.md, "Passkeys"): [`manage`] registers them (from
//! the account page, or in place of TOTP where a sign-in must enrol a second factor) and
//! removes them; [`sign_in`] signs in with one, after the password or alone.
//!
//! Each ceremony is two JSON requests from `static/passkey.js`: `…/begin` returns the options
//! for `navigator.credentials`, and keeps the ceremony's state in the server-side session;
//! `…/finish` takes the authenticator's answer once, and returns where the page goes next
//! (`{"next": …}`) or a sentence to show (`{"error": …}`, 400). Both carry the session's
//! CSRF token ([`crate::session::SessionJson`]).

pub mod manage;
pub mod sign_in;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::AppError;
use crate::state::AppState;

/// The body of a `…/begin` request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Begin {
    csrf: String,
    /// The authorization request the page belongs to ("" for none).
    #[serde(default)]
    req: String,
    /// The name a new passkey is to have (registration only).
    #[serde(default)]
    name: String,
}

crate::session::csrf_field!(Begin);

/// Where the page goes next.
fn next(to: &str) -> Response {
    Json(serde_json::json!({ "next": to })).into_response()
}

/// A sentence for the page to show; nothing else of why. In its final shape: the error layer
/// leaves it as it is (`error::Shaped`).
fn problem(sentence: &str) -> Response {
    let mut res = (StatusCode::BAD_REQUEST, Json(serde_json::json!({ "error": sentence }))).into_response();
    res.extensions_mut().insert(crate::error::Shaped);
    res
}

/// The relying party, or a 404 where the issuer cannot have passkeys (an IP address).
fn relying_party(state: &AppState) -> Result<&crate::identity::passkeys::RelyingParty, AppError> {
    state.passkeys.as_ref().ok_or(AppError::NotFound)
}
