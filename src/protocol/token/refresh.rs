//! The `refresh_token` grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700
//! §4.14), and the lost-reply grace window's reissue of the pair a rotation gave
//! (ARCHITECTURE.md, "Tokens").

use axum::response::Response;
use chrono::Utc;

use super::{TokenRequest, audience, token_response};
use crate::clients::GRANT_REFRESH_TOKEN;
use crate::db::{self, TenantOf, audit, clients::ClientRow, refresh_tokens::RefreshUse};
use crate::error::{AppError, OAuthError};
use crate::protocol::grant::{client_actor, end_replayed_family, json_no_store, tenant_accepts, tenant_and_role};
use crate::protocol::issue::{self, Grant};
use crate::protocol::meta::RequestMeta;
use crate::protocol::types::Scopes;
use crate::secrets::{exposed, sha256};
use crate::session::ACR_MFA;
use crate::state::AppState;
use crate::tokens::seal;
use crate::vocabulary::TenantStatus;

/// What the sealed successor pairs of the grace window are sealed for (`tokens::seal`); the
/// row's id is the hex of the used token's hash.
const SUCCESSOR_PURPOSE: &str = "refresh_tokens.successor_sealed";

/// RFC 6749 §6 with rotation: each refresh token works once. Presenting a used one revokes
/// the whole family and writes an audit event (RFC 9700 §4.14.2) — unless the client has a
/// lost-response grace window, the token was used within it and its successor is still
/// unused: then the answer is the pair that use issued, again (ARCHITECTURE.md, "Tokens").
pub(super) async fn refresh_token(
    state: &AppState,
    client: &ClientRow,
    req: &TokenRequest,
    meta: &RequestMeta,
    jkt: Option<&str>,
) -> Result<Response, AppError> {
    let token = exposed(&req.refresh_token).ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
    let requested = match &req.scope {
        Some(s) => Some(Scopes::parse(s).map_err(OAuthError::invalid_request)?),
        None => None,
    };
    let token_hash = sha256(token.as_bytes());
    let Some(mut tx) = state.db.in_tenant_of(TenantOf::RefreshToken(&token_hash)).await? else {
        return Err(OAuthError::invalid_grant("the refresh token is invalid").into());
    };
    let tenant_id = tx.tenant_or_nil();
    // A suspended tenant's refresh tokens are refused without being used up, so reactivating
    // the tenant brings them back (a multi-tenant client of another tenant gets here).
    if db::tenants::current(&mut tx).await?.is_none_or(|(_, status)| status != TenantStatus::Active) {
        return Err(OAuthError::invalid_grant("the tenant is suspended").into());
    }
    let grace = client.refresh_grace_secs;
    let family = match db::refresh_tokens::consume(&mut tx, &token_hash, &client.client_id, grace, meta.ip).await? {
        RefreshUse::Rotated(family) => family,
        RefreshUse::Retry { family_id, sealed, used_at } => {
            if let Some(bound) = db::families::dpop_jkt(&mut tx, family_id).await?
                && jkt != Some(bound.as_str())
            {
                return Err(OAuthError::invalid_grant(
                    "the refresh token is bound to a DPoP key this request does not prove",
                )
                .into());
            }
            let response = reissue(state, &token_hash, &sealed, used_at)?;
            let event = meta.event(
                "refresh_token.retried",
                "success",
                ("client", Some(client.client_id.clone())),
                ("token_family", family_id.to_string()),
            );
            audit::append(&mut tx, &event).await?;
            tx.commit().await?;
            return Ok(response);
        }
        RefreshUse::Reused(family_id) => {
            end_replayed_family(&mut tx, meta, client, family_id, "refresh_reuse", "refresh_token.reuse_detected")
                .await?;
            tx.commit().await?;
            return Err(OAuthError::invalid_grant("the refresh token was already used").into());
        }
        RefreshUse::Invalid => return Err(OAuthError::invalid_grant("the refresh token is invalid").into()),
    };
    let granted = Scopes::parse(&family.scope).unwrap_or_default();
    // A narrower scope may be asked for, never a wider one (RFC 6749 §6).
    let scope = match requested {
        Some(r) if !r.is_empty() => {
            if !r.is_subset_of(&granted.to_vec()) {
                return Err(OAuthError::bad("invalid_scope", "the scope exceeds what was granted").into());
            }
            r
        }
        _ => granted,
    };
    let Some(user_id) = family.user_id else {
        return Err(OAuthError::invalid_grant("the refresh token is invalid").into());
    };
    // Checked before anything is issued; the rotation is rolled back with the refusal, so the
    // refresh token still works for a resource that is allowed.
    let audience = audience(&mut tx, client, &family.resources, req.resource.as_deref()).await?;
    // A family bound to a DPoP key refreshes only with a proof of that key (RFC 9449 §5);
    // the refusal is rolled back with the rotation.
    if let Some(bound) = db::families::dpop_jkt(&mut tx, family.family_id).await?
        && jkt != Some(bound.as_str())
    {
        return Err(
            OAuthError::invalid_grant("the refresh token is bound to a DPoP key this request does not prove").into()
        );
    }
    let (slug, role) = match tenant_and_role(&mut tx, user_id).await {
        Ok(found) => found,
        Err(e) => {
            db::families::revoke(&mut tx, &client_actor(meta, client), family.family_id, "membership_ended").await?;
            tx.commit().await?;
            return Err(e);
        }
    };
    if !tenant_accepts(&mut tx, client).await? {
        db::families::revoke(&mut tx, &client_actor(meta, client), family.family_id, "tenant_policy").await?;
        tx.commit().await?;
        return Err(OAuthError::invalid_grant("the organisation does not accept this application").into());
    }
    // A family that began with a password alone ends once a second factor is required of
    // this user (made an admin anywhere, enrolled TOTP, or a tenant or client policy since).
    if family.acr.as_deref() != Some(ACR_MFA)
        && crate::identity::security::second_factor_required(&mut tx, client.require_mfa, user_id).await?
    {
        db::families::revoke(&mut tx, &client_actor(meta, client), family.family_id, "mfa_required").await?;
        tx.commit().await?;
        return Err(OAuthError::invalid_grant("the grant needs a new sign-in with a second factor").into());
    }
    // The refreshed ID token names the claims the first one did (OIDC Core §12.2).
    let claims = db::families::requested_claims(&mut tx, family.family_id).await?.unwrap_or_default();
    let response = issue::issue(
        state,
        &mut tx,
        meta,
        &Grant {
            grant_type: GRANT_REFRESH_TOKEN,
            tenant_id,
            tenant_slug: &slug,
            client,
            user_id: Some(user_id),
            roles: role.expand(),
            scope: &scope,
            auth_time: family.auth_time,
            amr: &family.amr,
            acr: family.acr.as_deref(),
            sid: family.sid.as_deref(),
            nonce: None,
            id_token_claims: &claims.id_token_claims,
            family: Some((family.family_id, family.expires_at)),
            refresh: true,
            resources: &audience,
            dpop_jkt: jkt,
        },
    )
    .await?;
    if grace > 0
        && let Some(successor) = &response.refresh_token
    {
        // Kept for a retry within the window: the whole answer, sealed under the master key
        // and bound to the used token's hash, since only hashes of tokens are stored.
        let plain = serde_json::to_vec(&response).map_err(|e| AppError::Internal(e.into()))?;
        let sealed = seal::seal(&state.master_key, SUCCESSOR_PURPOSE, &hex::encode(token_hash), &plain)
            .map_err(AppError::Internal)?;
        db::refresh_tokens::keep_successor(&mut tx, family.family_id, &token_hash, &successor.hash(), &sealed).await?;
    }
    tx.commit().await?;
    Ok(token_response(&response))
}

/// The answer a rotation within the grace window gave, opened again, with `expires_in`
/// counting the seconds since.
fn reissue(
    state: &AppState,
    token_hash: &[u8; 32],
    sealed: &[u8],
    used_at: chrono::DateTime<Utc>,
) -> Result<Response, AppError> {
    let plain = seal::open(&state.master_key, SUCCESSOR_PURPOSE, &hex::encode(token_hash), sealed)
        .map_err(|e| AppError::Internal(e.into()))?;
    let mut body: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&plain).map_err(|e| AppError::Internal(e.into()))?;
    let elapsed = u64::try_from((Utc::now() - used_at).num_seconds()).unwrap_or_default();
    if let Some(left) = body.get("expires_in").and_then(serde_json::Value::as_u64) {
        body.insert("expires_in".into(), left.saturating_sub(elapsed).into());
    }
    Ok(json_no_store(body))
}
