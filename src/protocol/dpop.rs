//! DPoP at our endpoints (RFC 9449; ARCHITECTURE.md, "DPoP"): the `DPoP` header of a request
//! checked by `tokens::dpop`, its nonce, and the replay cache. The token endpoint binds what
//! it issues to the proof's key; UserInfo takes a bound token only with a proof of that key.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use chrono::Utc;

use crate::db::{self, Tx};
use crate::error::{AppError, OAuthError};
use crate::state::AppState;
use crate::tokens::dpop::{self, MAX_AGE_SECS, MAX_AHEAD_SECS, Proof};

/// Where a proof is presented: the token endpoint answers 400 with `invalid_dpop_proof` or
/// `use_dpop_nonce` (§5); a resource answers 401 with a `DPoP` challenge (§7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    TokenEndpoint,
    /// The pushed authorization request endpoint (RFC 9449 §10.1): answered like the token
    /// endpoint, without a nonce (nothing is issued there).
    Par,
    Resource,
}

/// The nonce to give out now, as a header value.
pub fn nonce_header(state: &AppState) -> HeaderValue {
    HeaderValue::from_str(&state.dpop_nonces.current(Utc::now().timestamp()))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn refused(state: &AppState, at: At, error: &'static str, description: &'static str) -> AppError {
    let mut e = OAuthError::bad(error, description);
    e.dpop_nonce = Some(nonce_header(state));
    if at == At::Resource {
        e.status = StatusCode::UNAUTHORIZED;
        e.www_authenticate =
            HeaderValue::from_str(&format!("DPoP error=\"{error}\", algs=\"{}\"", dpop::ALGS.join(" "))).ok();
    }
    e.into()
}

/// The `invalid_dpop_proof` refusal.
pub fn invalid(state: &AppState, at: At, description: &'static str) -> AppError {
    refused(state, at, "invalid_dpop_proof", description)
}

/// The DPoP proof of a request to `path` with `method`, checked (§4.3), with a nonce of ours
/// where `at` is the token endpoint, and used once (the replay cache, in `tx`: the request's
/// own transaction, so no second connection is taken); `None` when the request has none. `access_token`: the token a resource request presents, which the proof
/// must be bound to (`ath`).
pub async fn proof(
    state: &AppState,
    tx: &mut Tx,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    at: At,
    access_token: Option<&str>,
) -> Result<Option<Proof>, AppError> {
    let mut values = headers.get_all("dpop").iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(invalid(state, at, "send one DPoP proof"));
    }
    let raw = value.to_str().map_err(|_| invalid(state, at, "the DPoP proof is malformed"))?;
    let now = Utc::now().timestamp();
    let htu = format!("{}{path}", state.config.issuer);
    let proof = dpop::check(raw, method, &htu, now, access_token).map_err(|why| invalid(state, at, why))?;
    // Nonces are asked for at the token endpoint, where a pre-made proof would buy tokens
    // (§8); a resource takes a fresh, unreplayed proof of the bound key.
    if at == At::TokenEndpoint && !proof.nonce.as_deref().is_some_and(|n| state.dpop_nonces.valid(n, now)) {
        return Err(refused(state, at, "use_dpop_nonce", "send the DPoP-Nonce this response carries"));
    }
    let until = Utc::now() + chrono::Duration::seconds(MAX_AGE_SECS + MAX_AHEAD_SECS);
    if !db::dpop_proofs::first_use(tx, &proof.replay_key(), until).await? {
        return Err(invalid(state, at, "the DPoP proof was used already"));
    }
    Ok(Some(proof))
}
