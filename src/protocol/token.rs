//! The token endpoint (RFC 6749 §3.2): `authorization_code` (with PKCE, RFC 7636),
//! `refresh_token` (rotation with reuse detection, RFC 9700 §4.14, in [`refresh`]),
//! `client_credentials` and the device grant (RFC 8628 §3.4, in `protocol::device`).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{Duration, Utc};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::clients::resources::{self, InvalidTarget};
use crate::clients::{GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_DEVICE_CODE, GRANT_REFRESH_TOKEN};
use crate::db::resource_servers::ResourceServerRow;
use crate::db::{self, TenantOf, Tx, audit, clients::ClientRow};
use crate::error::{AppError, OAuthError};
use crate::extract::Form;
use crate::protocol::client_auth::{self, Presented};
use crate::protocol::dpop;
use crate::protocol::grant::{
    end_replayed_family, json_no_store, refreshable, second_factor_ok, tenant_accepts, tenant_and_role,
};
use crate::protocol::issue::{self, Grant, TokenResponse};
use crate::protocol::meta::RequestMeta;
use crate::protocol::types::{Scopes, s256_challenge, valid_pkce_value};
use crate::secrets::{SecretString, exposed, sha256};
use crate::state::AppState;
use crate::telemetry::metrics;
use crate::vocabulary::TenantStatus;

mod refresh;

/// Token request parameters. Unknown parameters are ignored (RFC 6749 §3.2); a repeated one is
/// refused by the decoder (§3.1).
#[derive(Debug, Deserialize)]
pub struct TokenRequest {
    grant_type: Option<String>,
    code: Option<SecretString>,
    redirect_uri: Option<String>,
    code_verifier: Option<SecretString>,
    refresh_token: Option<SecretString>,
    scope: Option<String>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    /// RFC 8628 §3.4.
    device_code: Option<SecretString>,
    /// The API the access token is to be meant for (RFC 8707 §2). One per token request: a
    /// repeated one is refused like any repeated parameter.
    resource: Option<String>,
}

/// The APIs a token request's access token is for (`resources::at_token_endpoint`), read in
/// `tx` (the grant's transaction), or `invalid_target`. APIs are the client's own tenant's,
/// and only tokens of that tenant get one: for a multi-tenant client's user in another tenant,
/// the token would carry that tenant's `tid` and roles to an API of the client's tenant's
/// choosing, which may be the other tenant's own URL (RFC 8707 §3).
async fn audience(
    tx: &mut Tx,
    client: &ClientRow,
    granted: &[String],
    asked: Option<&str>,
) -> Result<Vec<ResourceServerRow>, AppError> {
    let refused = |InvalidTarget(why)| AppError::from(OAuthError::bad("invalid_target", why));
    let wanted = resources::at_token_endpoint(granted, asked).map_err(refused)?;
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    if tx.tenant_or_nil() != client.tenant_id {
        return Err(refused(InvalidTarget("resources are for tokens of the client's own organisation")));
    }
    let found = db::resource_servers::by_identifiers(tx, &wanted).await?;
    resources::pick(&found, &client.client_id, &wanted).map_err(refused)
}

/// `POST /token`.
pub async fn token(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    Form(req): Form<TokenRequest>,
) -> Result<Response, AppError> {
    let (client, mut tx) = client_auth::authenticate_in_tenant(
        &state.db,
        &headers,
        Presented { client_id: req.client_id.as_deref(), client_secret: exposed(&req.client_secret) },
    )
    .await?;
    // A DPoP proof binds what this request is issued to its key (RFC 9449 §5).
    let proof = dpop::proof(&state, &mut tx, &headers, "POST", TOKEN_PATH, dpop::At::TokenEndpoint, None).await?;
    let jkt = proof.as_ref().map(|p| p.jkt.as_str());
    let grant_type = req.grant_type.as_deref().ok_or_else(|| OAuthError::invalid_request("grant_type is missing"))?;
    // A service account's token is issued in the client's own tenant, in the transaction that
    // authenticated it; every other grant works in the tenant of its code, token or device
    // request (a multi-tenant client's users are in other tenants), in transactions of its own.
    if grant_type == GRANT_CLIENT_CREDENTIALS && client.grant_types.iter().any(|g| g == grant_type) {
        let response = token_response(&client_credentials(&state, &client, tx, &req, &meta, jkt).await?);
        metrics::token_issued("client_credentials");
        return Ok(with_nonce(&state, response, jkt.is_some()));
    }
    tx.commit().await?;
    let allowed = |g: &str| client.grant_types.iter().any(|x| x == g);
    let (response, grant) = match grant_type {
        GRANT_AUTHORIZATION_CODE | GRANT_REFRESH_TOKEN | GRANT_CLIENT_CREDENTIALS | GRANT_DEVICE_CODE
            if !allowed(grant_type) =>
        {
            return Err(OAuthError::bad("unauthorized_client", "this client may not use this grant type").into());
        }
        GRANT_AUTHORIZATION_CODE => {
            (token_response(&authorization_code(&state, &client, &req, &meta, jkt).await?), "authorization_code")
        }
        GRANT_REFRESH_TOKEN => (refresh::refresh_token(&state, &client, &req, &meta, jkt).await?, "refresh_token"),
        GRANT_DEVICE_CODE if req.resource.is_some() => {
            return Err(OAuthError::bad("invalid_target", "the device grant names no resource").into());
        }
        GRANT_DEVICE_CODE => {
            let issued =
                crate::protocol::device::redeem(&state, &client, exposed(&req.device_code), &meta, jkt).await?;
            (token_response(&issued), "device_code")
        }
        _ => return Err(OAuthError::bad("unsupported_grant_type", "this grant type is not supported").into()),
    };
    metrics::token_issued(grant);
    Ok(with_nonce(&state, response, proof.is_some()))
}

/// The token endpoint's path (`discovery::paths::TOKEN`), which a DPoP proof's `htu` names.
const TOKEN_PATH: &str = crate::protocol::discovery::paths::TOKEN;

/// A response with a fresh `DPoP-Nonce` when the request used DPoP (RFC 9449 §8.2).
fn with_nonce(state: &AppState, mut response: Response, dpop: bool) -> Response {
    if dpop {
        response.headers_mut().insert("dpop-nonce", dpop::nonce_header(state));
    }
    response
}

/// The JSON response with `Cache-Control: no-store` (RFC 6749 §5.1).
pub fn token_response(body: &TokenResponse) -> Response {
    json_no_store(body)
}

/// RFC 6749 §4.1.3 with RFC 7636 §4.6. A second redemption of a code fails and revokes what
/// the first issued (§4.1.2).
async fn authorization_code(
    state: &AppState,
    client: &ClientRow,
    req: &TokenRequest,
    meta: &RequestMeta,
    jkt: Option<&str>,
) -> Result<TokenResponse, AppError> {
    let code = exposed(&req.code).ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
    let code_verifier = exposed(&req.code_verifier);
    let redirect_uri =
        req.redirect_uri.as_deref().ok_or_else(|| OAuthError::invalid_request("redirect_uri is missing"))?;
    if let Some(v) = code_verifier
        && !valid_pkce_value(v)
    {
        return Err(OAuthError::invalid_request("code_verifier is malformed").into());
    }
    let code_hash = sha256(code.as_bytes());
    let Some(mut tx) = state.db.in_tenant_of(TenantOf::Code(&code_hash)).await? else {
        return Err(OAuthError::invalid_grant("the code is invalid or expired").into());
    };
    let tenant_id = tx.tenant_or_nil();
    let family_id = Uuid::now_v7();
    let Some(consumed) = db::authorization_codes::consume(&mut tx, &code_hash, &client.client_id, family_id).await?
    else {
        if let Some(earlier) =
            db::authorization_codes::family_of_redeemed(&mut tx, &code_hash, &client.client_id).await?
        {
            // Replay: end everything the first redemption issued.
            end_replayed_family(&mut tx, meta, client, earlier, "code_reuse", "code.reuse_detected").await?;
            tx.commit().await?;
        }
        return Err(OAuthError::invalid_grant("the code is invalid, expired or already used").into());
    };
    let (grant, claims) = (consumed.grant, consumed.claims);
    // From here on the code is spent, whatever happens: a failed redemption burns it, and
    // says why in the audit log.
    let pkce_ok = match (&grant.code_challenge, code_verifier) {
        (Some(challenge), Some(verifier)) => {
            bool::from(s256_challenge(verifier).as_bytes().ct_eq(challenge.as_bytes()))
        }
        (None, None) => true,
        // A verifier without a challenge is a downgrade attempt (RFC 9700 §4.8.2).
        _ => false,
    };
    let failure = if grant.redirect_uri != redirect_uri {
        Some(("redirect_uri_mismatch", "redirect_uri does not match the authorization request"))
    } else if !pkce_ok {
        Some(("pkce_failed", "PKCE verification failed"))
    } else if grant.dpop_jkt.is_some() && grant.dpop_jkt.as_deref() != jkt {
        // RFC 9449 §10: the request bound the code to a key; only its proof redeems it.
        Some(("dpop_key_mismatch", "the code is bound to a DPoP key this request does not prove"))
    } else if !consumed.stamp_current {
        // The user changed their password, was recovered or signed out everywhere after this
        // code was issued (ARCHITECTURE.md, "Security stamp").
        Some(("signed_out_since", "the code was issued before the user's sessions were ended"))
    } else {
        None
    };
    if let Some((reason, description)) = failure {
        let mut event = meta.event(
            "code.redemption_failed",
            "failure",
            ("client", Some(client.client_id.clone())),
            ("user", grant.user_id.to_string()),
        );
        event.details = serde_json::json!({ "reason": reason });
        audit::append(&mut tx, &event).await?;
        tx.commit().await?;
        return Err(OAuthError::invalid_grant(description).into());
    }
    let audience = match audience(&mut tx, client, &grant.resources, req.resource.as_deref()).await {
        Ok(audience) => audience,
        Err(e) => {
            tx.commit().await?;
            return Err(e);
        }
    };
    let scope = Scopes::parse(&grant.scope).unwrap_or_default();
    let (slug, role) = tenant_and_role(&mut tx, grant.user_id).await?;
    if !tenant_accepts(&mut tx, client).await? {
        tx.commit().await?;
        return Err(OAuthError::invalid_grant("the organisation does not accept this application").into());
    }
    if !second_factor_ok(role, Some(&grant.acr)) {
        tx.commit().await?;
        return Err(OAuthError::invalid_grant("the grant needs a new sign-in with a second factor").into());
    }
    // Every code redemption has a family, so that a replay of the code can end what this
    // redemption issued (RFC 6749 §4.1.2) even when no refresh token is part of it.
    let family =
        Some((family_id, Utc::now() + Duration::from_std(state.config.ttl.refresh_family).unwrap_or_default()));
    if let Some((family_id, expires_at)) = family {
        db::families::insert_with_claims(
            &mut tx,
            &db::families::Family {
                family_id,
                client_id: client.client_id.clone(),
                user_id: Some(grant.user_id),
                scope: grant.scope.clone(),
                auth_time: Some(grant.auth_time),
                amr: grant.amr.clone(),
                acr: Some(grant.acr.clone()),
                sid: Some(grant.sid.clone()),
                expires_at,
                revoked_at: None,
                resources: grant.resources.clone(),
            },
            &claims,
        )
        .await?;
        if let Some(jkt) = jkt {
            db::families::bind_dpop(&mut tx, family_id, jkt).await?;
        }
    }
    let response = issue::issue(
        state,
        &mut tx,
        meta,
        &Grant {
            grant_type: GRANT_AUTHORIZATION_CODE,
            tenant_id,
            tenant_slug: &slug,
            client,
            user_id: Some(grant.user_id),
            roles: role.expand(),
            scope: &scope,
            auth_time: Some(grant.auth_time),
            amr: &grant.amr,
            acr: Some(&grant.acr),
            sid: Some(&grant.sid),
            nonce: grant.nonce.as_deref(),
            id_token_claims: &claims.id_token_claims,
            family,
            refresh: refreshable(client),
            resources: &audience,
            dpop_jkt: jkt,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(response)
}

/// RFC 6749 §4.4: a service account acting in its own tenant with its role, in `tx` (that
/// tenant's transaction that authenticated the client).
async fn client_credentials(
    state: &AppState,
    client: &ClientRow,
    mut tx: Tx,
    req: &TokenRequest,
    meta: &RequestMeta,
    jkt: Option<&str>,
) -> Result<TokenResponse, AppError> {
    let Some(role) = client.service_role else {
        return Err(OAuthError::bad("unauthorized_client", "this client has no service role").into());
    };
    let requested = Scopes::parse(req.scope.as_deref().unwrap_or("")).map_err(OAuthError::invalid_request)?;
    // The API the token is for, if one is named (RFC 8707 §2), in the client's own tenant.
    let asked: Vec<String> = req.resource.iter().cloned().collect();
    let audience = audience(&mut tx, client, &asked, None).await?;
    // No user is behind these tokens, so no OpenID Connect scopes; an API's own are allowed.
    let mut allowed: Vec<String> =
        client.scopes.iter().filter(|s| !["openid", "offline_access"].contains(&s.as_str())).cloned().collect();
    allowed.extend(Scopes::defined_by(&audience).to_vec());
    if !requested.is_subset_of(&allowed) {
        return Err(OAuthError::bad("invalid_scope", "a requested scope is not allowed for this client").into());
    }
    let Some((slug, status)) = db::tenants::current(&mut tx).await? else {
        return Err(OAuthError::invalid_client().into());
    };
    if status != TenantStatus::Active {
        return Err(OAuthError::bad("unauthorized_client", "the tenant is suspended").into());
    }
    // Committed durably like every issuance: a token a client was given is recorded and
    // audited even if PostgreSQL stops the next moment (`tests/it/fault/load.rs` checks it).
    let response = issue::issue(
        state,
        &mut tx,
        meta,
        &Grant {
            grant_type: GRANT_CLIENT_CREDENTIALS,
            tenant_id: client.tenant_id,
            tenant_slug: &slug,
            client,
            user_id: None,
            roles: role.expand(),
            scope: &requested,
            auth_time: None,
            amr: &[],
            acr: None,
            sid: None,
            nonce: None,
            id_token_claims: &[],
            family: None,
            refresh: false,
            resources: &audience,
            dpop_jkt: jkt,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(response)
}

#[cfg(test)]
mod redaction {
    /// A logged `TokenRequest` shows no secret it carries.
    #[test]
    fn debug_shows_no_secret() {
        crate::secrets::assert_debug_redacts::<super::TokenRequest>(
            "grant_type=authorization_code&code=c0de-s3cret&code_verifier=v3rifier-s3cret&refresh_token=r3fresh-s3cret&client_id=c&client_secret=cl1ent-s3cret&device_code=d3vice-s3cret",
            &["c0de-s3cret", "v3rifier-s3cret", "r3fresh-s3cret", "cl1ent-s3cret", "d3vice-s3cret"],
        );
    }
}
