//! The OAuth 2.0 Device Authorization Grant (RFC 8628): the device authorization endpoint
//! (§3.1, §3.2), the user codes people type, and the token endpoint's device grant (§3.4,
//! §3.5). The user's side is the hosted page `/device` (`pages::device`).
//!
//! A device grant is for the client's own tenant, also for a multi-tenant client: the device
//! page does not offer a choice of organisation.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clients::GRANT_DEVICE_CODE;
use crate::db::{self, audit, clients::ClientRow};
use crate::error::{AppError, OAuthError};
use crate::extract::Form;
use crate::protocol::client_auth::{self, Presented};
use crate::protocol::grant::{end_replayed_family, json_no_store, refreshable, second_factor_ok, tenant_and_role};
use crate::protocol::issue::{self, Grant, TokenResponse};
use crate::protocol::meta::{RequestMeta, rate_limit};
use crate::protocol::types::{SCOPES_SUPPORTED, Scopes};
use crate::secrets::{Secret, SecretString, exposed, random_bytes, sha256};
use crate::session::ACR_MFA;
use crate::state::AppState;
use crate::vocabulary::DeviceGrantStatus;

/// The letters of user codes: consonants only, so no word can be spelled and nothing looks
/// like a digit (RFC 8628 §6.1).
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Letters in a user code: 20^8 ≈ 2^34.6, guessed only at the throttled device page.
pub const USER_CODE_LEN: usize = 8;
/// The polling interval a device starts with (RFC 8628 §3.2 `interval`).
pub const POLL_INTERVAL_SECS: i32 = 5;

/// A fresh user code, normalised (8 letters, no dash), uniformly drawn by rejection sampling.
pub fn new_user_code() -> String {
    let mut code = String::with_capacity(USER_CODE_LEN);
    while code.len() < USER_CODE_LEN {
        for b in random_bytes::<16>() {
            // 240 = 12 × 20: bytes above it would favour the first letters.
            if b < 240 && code.len() < USER_CODE_LEN {
                code.push(char::from(USER_CODE_ALPHABET[usize::from(b % 20)]));
            }
        }
    }
    code
}

/// A user code as typed (any case, with or without the dash or spaces), normalised; `None`
/// when it cannot be one.
pub fn normalise_user_code(typed: &str) -> Option<String> {
    if typed.len() > 32 {
        return None;
    }
    let code: String = typed.chars().filter(|c| !matches!(c, '-' | ' ')).map(|c| c.to_ascii_uppercase()).collect();
    let valid = code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
    valid.then_some(code)
}

/// The code as shown: `BCDF-GHJK`.
pub fn display_user_code(normalised: &str) -> String {
    let (a, b) = normalised.split_at(normalised.len().min(4));
    format!("{a}-{b}")
}

/// What is stored of a user code.
pub fn user_code_hash(normalised: &str) -> [u8; 32] {
    sha256(format!("user_code:{normalised}").as_bytes())
}

/// Device authorization request parameters (RFC 8628 §3.1); others are ignored.
#[derive(Debug, Deserialize)]
pub struct DeviceAuthorizationRequest {
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    scope: Option<String>,
    /// Resource indicators (RFC 8707) are not offered for the device grant yet: refused with
    /// `invalid_target` rather than ignored, so a device never gets a token for an audience it
    /// did not ask for.
    resource: Option<String>,
}

/// The device authorization response (RFC 8628 §3.2).
#[derive(Serialize)]
struct DeviceAuthorizationResponse {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: String,
    expires_in: u64,
    interval: i32,
}

/// `POST /device_authorization`. A public client (a device cannot keep a secret) names itself
/// with `client_id`; a confidential one authenticates as at the token endpoint.
///
/// Anyone may call it, and each call stores a grant and an audit row, so it is rate-limited
/// per client IP (an IPv6 /64) before anything else, and per client once the client is
/// known, in fixed windows counted in PostgreSQL (shared by every instance). Past a limit:
/// 429 with `Retry-After` (RFC 6585 §4). A known public `client_id` lets anyone spend that
/// client's budget; the per-IP limit keeps that to a few addresses' worth.
pub async fn device_authorization(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    Form(req): Form<DeviceAuthorizationRequest>,
) -> Result<Response, AppError> {
    let limits = state.config.rate_limits;
    if let Some(ip) = meta.ip {
        let key = sha256(format!("device_authorization-ip:{}", crate::identity::throttle::ip_key(ip)).as_bytes());
        rate_limit(&state, &key, limits.device_per_ip).await?;
    }
    let client = client_auth::authenticate(
        &state.db,
        &headers,
        Presented { client_id: req.client_id.as_deref(), client_secret: exposed(&req.client_secret) },
    )
    .await?;
    let key = sha256(format!("device_authorization-client:{}", client.client_id).as_bytes());
    rate_limit(&state, &key, limits.device_per_client).await?;
    if !client.grant_types.iter().any(|g| g == GRANT_DEVICE_CODE) {
        return Err(OAuthError::bad("unauthorized_client", "this client may not use the device grant").into());
    }
    if req.resource.is_some() {
        return Err(OAuthError::bad("invalid_target", "the device grant does not take a resource").into());
    }
    let requested =
        Scopes::parse(req.scope.as_deref().unwrap_or("")).map_err(|why| OAuthError::bad("invalid_scope", why))?;
    // As at the authorization endpoint: unknown scopes are ignored, known ones the client may
    // not have are an error.
    let known = Scopes::parse(&SCOPES_SUPPORTED.join(" ")).unwrap_or_default();
    let scope = requested.intersect(&known);
    if !scope.is_subset_of(&client.scopes) {
        return Err(OAuthError::bad("invalid_scope", "a requested scope is not allowed for this client").into());
    }

    let ttl = state.config.ttl.device_code;
    let expires_at = Utc::now() + Duration::from_std(ttl).unwrap_or_default();
    let device_code = Secret::generate();
    let mut tx = state.db.tenant(client.tenant_id).await?;
    // A user code is unique while stored; a collision (about one in 2^34 per live code) just
    // draws again.
    let mut user_code = new_user_code();
    let mut stored = false;
    for _ in 0..5 {
        let hash = user_code_hash(&user_code);
        if db::device_grants::insert(
            &mut tx,
            &device_code.hash(),
            &hash,
            &client.client_id,
            &scope.to_string(),
            expires_at,
        )
        .await?
        {
            stored = true;
            break;
        }
        user_code = new_user_code();
    }
    if !stored {
        return Err(AppError::Internal(anyhow::anyhow!("no free user code after 5 draws")));
    }
    let mut event = meta.event(
        "device.authorization_requested",
        "success",
        ("client", Some(client.client_id.clone())),
        ("client", client.client_id.clone()),
    );
    // Not the user code: while it lives, it approves.
    event.details = serde_json::json!({ "scope": scope.to_string() });
    audit::append(&mut tx, &event).await?;
    tx.commit().await?;

    let shown = display_user_code(&user_code);
    let verification_uri = format!("{}{}", state.config.issuer, crate::protocol::discovery::paths::DEVICE);
    Ok(json_no_store(DeviceAuthorizationResponse {
        device_code: device_code.expose().to_owned(),
        verification_uri_complete: format!("{verification_uri}?user_code={shown}"),
        user_code: shown,
        verification_uri,
        expires_in: ttl.as_secs(),
        interval: POLL_INTERVAL_SECS,
    }))
}

/// The device grant at the token endpoint (RFC 8628 §3.4, §3.5). Each poll is one locked
/// row: pending answers `authorization_pending` (or `slow_down`, and the interval grows by
/// 5 s, when it came sooner than the interval), a denial `access_denied`, an expired request
/// `expired_token`, and an approval the tokens, once: the poll that consumes it wins, any
/// later one fails and revokes what the first was issued (like a replayed code).
pub async fn redeem(
    state: &AppState,
    client: &ClientRow,
    device_code: Option<&str>,
    meta: &RequestMeta,
    jkt: Option<&str>,
) -> Result<TokenResponse, AppError> {
    let code = device_code.ok_or_else(|| OAuthError::invalid_request("device_code is missing"))?;
    let hash = sha256(code.as_bytes());
    let Some(mut tx) = state.db.in_tenant_of(crate::db::TenantOf::DeviceCode(&hash)).await? else {
        return Err(OAuthError::invalid_grant("the device code is invalid").into());
    };
    let tenant_id = tx.tenant_or_nil();
    // Another client's device code is unknown here, and left untouched.
    let Some(poll) = db::device_grants::poll(&mut tx, &hash, &client.client_id).await? else {
        return Err(OAuthError::invalid_grant("the device code is invalid").into());
    };
    if poll.status == DeviceGrantStatus::Consumed {
        if let Some(family_id) = poll.family_id {
            end_replayed_family(&mut tx, meta, client, family_id, "device_code_reuse", "device_code.reuse_detected")
                .await?;
        }
        tx.commit().await?;
        return Err(OAuthError::invalid_grant("the device code was already used").into());
    }
    if poll.expired {
        tx.commit().await?;
        return Err(OAuthError::bad("expired_token", "the device code has expired").into());
    }
    match poll.status {
        DeviceGrantStatus::Denied => {
            tx.commit().await?;
            return Err(OAuthError::bad("access_denied", "the user denied the request").into());
        }
        DeviceGrantStatus::Pending => {
            // The fleet's most frequent request, whose only write is the poll's time: no fsync
            // for it. A crash can lose the last few hundred milliseconds of those, which lets
            // a device poll early once; it cannot make a grant valid.
            tx.commit_without_flush().await?;
            tx.commit().await?;
            if poll.too_fast {
                let why = format!("poll at most every {} seconds", poll.interval_secs);
                return Err(OAuthError::bad("slow_down", why).into());
            }
            return Err(OAuthError::bad("authorization_pending", "the user has not answered yet").into());
        }
        _ => {}
    }

    let family_id = Uuid::now_v7();
    let Some(approval) = db::device_grants::consume(&mut tx, &hash, &client.client_id, family_id).await? else {
        return Err(OAuthError::invalid_grant("the device code is invalid").into());
    };
    // From here on the grant is spent, whatever happens.
    if !approval.stamp_current {
        // Approved by a session of the user that has since been ended everywhere (password
        // change, recovery, MFA reset): the device must be approved again.
        let mut event = meta.event(
            "device_code.redemption_failed",
            "failure",
            ("client", Some(client.client_id.clone())),
            ("user", approval.user_id.to_string()),
        );
        event.details = serde_json::json!({ "reason": "signed_out_since" });
        audit::append(&mut tx, &event).await?;
        tx.commit().await?;
        return Err(OAuthError::bad("access_denied", "the approval was withdrawn; approve the device again").into());
    }
    let (slug, role) = match tenant_and_role(&mut tx, approval.user_id).await {
        Ok(found) => found,
        Err(e) => {
            tx.commit().await?;
            return Err(e);
        }
    };
    // As at a refresh: approved with a password alone, but a second factor is required now.
    if !second_factor_ok(role, Some(&approval.acr))
        || (approval.acr != ACR_MFA
            && crate::identity::security::second_factor_required(&mut tx, client.require_mfa, approval.user_id).await?)
    {
        tx.commit().await?;
        return Err(OAuthError::invalid_grant("the grant needs a new sign-in with a second factor").into());
    }
    let scope = Scopes::parse(&approval.scope).unwrap_or_default();
    let family_end = Utc::now() + Duration::from_std(state.config.ttl.refresh_family).unwrap_or_default();
    db::families::insert(
        &mut tx,
        &db::families::Family {
            family_id,
            client_id: client.client_id.clone(),
            user_id: Some(approval.user_id),
            scope: approval.scope.clone(),
            auth_time: Some(approval.auth_time),
            amr: approval.amr.clone(),
            acr: Some(approval.acr.clone()),
            sid: Some(approval.sid.clone()),
            expires_at: family_end,
            revoked_at: None,
            resources: Vec::new(),
        },
    )
    .await?;
    db::families::mark_begun_by_device(&mut tx, family_id).await?;
    // A device that proved a DPoP key keeps it: every refresh must prove it again.
    if let Some(jkt) = jkt {
        db::families::bind_dpop(&mut tx, family_id, jkt).await?;
    }
    let response = issue::issue(
        state,
        &mut tx,
        meta,
        &Grant {
            grant_type: GRANT_DEVICE_CODE,
            tenant_id,
            tenant_slug: &slug,
            client,
            user_id: Some(approval.user_id),
            roles: role.expand(),
            scope: &scope,
            auth_time: Some(approval.auth_time),
            amr: &approval.amr,
            acr: Some(&approval.acr),
            sid: Some(&approval.sid),
            nonce: None,
            // RFC 8628 §3.1 has no `claims` parameter: the family names no claims either.
            id_token_claims: &[],
            family: Some((family_id, family_end)),
            refresh: refreshable(client),
            // A device authorization names no API (`device_authorization` refuses `resource`).
            resources: &[],
            dpop_jkt: jkt,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// User codes are 8 letters of the alphabet; typed ones are normalised, shown with a dash.
    #[test]
    fn user_codes() {
        for _ in 0..100 {
            let c = new_user_code();
            assert_eq!(c.len(), USER_CODE_LEN);
            assert!(c.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
            assert_eq!(normalise_user_code(&display_user_code(&c)).as_deref(), Some(c.as_str()));
        }
        assert_eq!(display_user_code("BCDFGHJK"), "BCDF-GHJK");
        assert_eq!(normalise_user_code(" bcdf-ghjk ").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normalise_user_code("BCDF-GHJA"), None, "a vowel");
        assert_eq!(normalise_user_code("BCDF-GHJ"), None, "too short");
        assert_eq!(normalise_user_code("BCDF-GHJK1"), None);
    }
}

#[cfg(test)]
mod redaction {
    /// A logged `DeviceAuthorizationRequest` shows no client secret.
    #[test]
    fn debug_shows_no_secret() {
        crate::secrets::assert_debug_redacts::<super::DeviceAuthorizationRequest>(
            "client_id=c&client_secret=cl1ent-s3cret&scope=openid",
            &["cl1ent-s3cret"],
        );
    }
}
