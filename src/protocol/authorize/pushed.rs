//! Pushed authorization requests (RFC 9126): the client posts its authorization request to
//! `/par` over the back channel, authenticated as at the token endpoint; it is checked as the
//! authorization endpoint would check it ([`super::start::check`]), kept for a minute under
//! the hash of a random `request_uri`, and then brought to `/authorize` by the browser with
//! nothing but `client_id` and that `request_uri`, once (ARCHITECTURE.md, "Pushed
//! authorization requests").

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use serde::Serialize;

use super::params::{AuthorizeParams, MAX_STATE_BYTES, split_resources};
use super::reply::bad_client;
use super::start::{check, client_of};
use crate::clients::RedirectUri;
use crate::clients::metadata_document::{self, MAX_URL_BYTES, Unresolved};
use crate::db;
use crate::error::{AppError, OAuthError};
use crate::extract::FormPairs;
use crate::protocol::client_auth::{self, Presented};
use crate::protocol::discovery::paths::PUSHED_AUTHORIZATION_REQUEST as PAR_PATH;
use crate::protocol::dpop;
use crate::protocol::meta::{RequestMeta, rate_limit};
use crate::secrets::{Secret, sha256};
use crate::state::AppState;

/// What a `request_uri` of ours starts with (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// How long a pushed request waits for the browser (RFC 9126 §2.2 suggests 5 to 600 seconds;
/// the browser is sent on at once, so a minute is plenty).
pub const LIFETIME_SECS: i64 = 60;

/// The answer of `/par` (RFC 9126 §2.2).
#[derive(Serialize)]
struct Pushed {
    request_uri: String,
    expires_in: i64,
}

/// `POST /par`. Errors are JSON (RFC 9126 §2.3, RFC 6749 §5.2): nothing is redirected, the
/// client is on the back channel. Each call stores a row, so it is rate-limited per client IP
/// and per client with the device authorization endpoint's limits.
pub async fn par(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    FormPairs(pairs): FormPairs,
) -> Result<Response, AppError> {
    let limits = state.config.rate_limits;
    if let Some(ip) = meta.ip {
        let key = sha256(format!("par-ip:{}", crate::identity::throttle::ip_key(ip)).as_bytes());
        rate_limit(&state, &key, limits.device_per_ip).await?;
    }
    let (resources, pairs) = split_resources(pairs);
    // The client's secret (client_secret_post) authenticates the push and is never kept.
    let (secrets, mut pairs): (Vec<_>, Vec<_>) = pairs.into_iter().partition(|(name, _)| name == "client_secret");
    let secret = match secrets.as_slice() {
        [] => None,
        [(_, secret)] => Some(secret.as_str()),
        _ => return Err(OAuthError::invalid_request("client_secret is repeated").into()),
    };
    let encoded = serde_urlencoded::to_string(&pairs).map_err(|e| AppError::Internal(e.into()))?;
    let Ok(params) = serde_urlencoded::from_str::<AuthorizeParams>(&encoded) else {
        return Err(OAuthError::invalid_request("the request parameters are malformed or repeated").into());
    };
    // A client_id that is a metadata document's URL is fetched (or refreshed) first, so the
    // client authenticates as the document describes it (`clients::metadata_document`).
    if let Some(client_id) =
        params.client_id.as_deref().filter(|c| c.len() <= MAX_URL_BYTES && metadata_document::looks_like_url(c))
    {
        match metadata_document::resolve(&state.db, &state.client_metadata, client_id, &meta.actor("system", None))
            .await
        {
            Ok(_) => {}
            Err(Unresolved::Refused(reason)) => {
                tracing::warn!(client_id, %reason, "client metadata document refused");
                return Err(OAuthError::invalid_client().into());
            }
            Err(Unresolved::Internal(e)) => return Err(AppError::Internal(e)),
        }
    }
    let client = client_auth::authenticate(
        &state.db,
        &headers,
        Presented { client_id: params.client_id.as_deref(), client_secret: secret },
    )
    .await?;
    let key = sha256(format!("par-client:{}", client.client_id).as_bytes());
    rate_limit(&state, &key, limits.device_per_client).await?;
    let params = AuthorizeParams { resources: resources.clone(), ..params };

    // A DPoP proof here binds the code to its key (RFC 9449 §10.1), as `dpop_jkt` would; both
    // must then name the same key.
    let mut tx = state.db.unscoped().await?;
    let proof = dpop::proof(&state, &mut tx, &headers, "POST", PAR_PATH, dpop::At::Par, None).await?;
    tx.commit().await?;
    if let Some(proof) = &proof {
        match params.dpop_jkt.as_deref() {
            Some(named) if named != proof.jkt => {
                return Err(dpop::invalid(&state, dpop::At::Par, "dpop_jkt is not the proof's key"));
            }
            Some(_) => {}
            None => pairs.push(("dpop_jkt".into(), proof.jkt.clone())),
        }
    }
    let params = AuthorizeParams { dpop_jkt: params.dpop_jkt.clone().or(proof.map(|p| p.jkt)), ..params };

    // RFC 9126 §2.1: a pushed request cannot itself point at one.
    if params.request_uri.is_some() {
        return Err(OAuthError::invalid_request("request_uri must not be pushed").into());
    }
    let redirect_uri = params.redirect_uri.as_deref().unwrap_or_default();
    if !client.redirect_uris.iter().any(|r| r == redirect_uri) || RedirectUri::parse(redirect_uri).is_err() {
        return Err(OAuthError::invalid_request("the redirect_uri is not registered for this client").into());
    }
    if params.state.as_ref().is_some_and(|s| s.len() > MAX_STATE_BYTES) {
        return Err(OAuthError::invalid_request("the state parameter is too long").into());
    }
    let form_post = params.response_mode.as_deref() == Some("form_post");
    if let Err((error, description)) = check(&state, &client, &params, redirect_uri, form_post).await? {
        return Err(OAuthError::bad(error, description).into());
    }

    // Kept as pushed (the client authenticated by a header need not have named itself), with
    // each `resource`, in order.
    if params.client_id.is_none() {
        pairs.push(("client_id".into(), client.client_id.clone()));
    }
    pairs.extend(resources.into_iter().map(|r| ("resource".to_owned(), r)));
    let stored = serde_json::to_value(&pairs).map_err(|e| AppError::Internal(e.into()))?;
    let random = Secret::generate();
    let expires = Utc::now() + Duration::seconds(LIFETIME_SECS);
    let mut tx = state.db.tenant(client.tenant_id).await?;
    db::pushed_requests::insert(&mut tx, &random.hash(), &client.client_id, &stored, expires).await?;
    tx.commit().await?;

    let body = Pushed { request_uri: format!("{REQUEST_URI_PREFIX}{}", random.expose()), expires_in: LIFETIME_SECS };
    let mut res = (StatusCode::CREATED, axum::Json(body)).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// The pushed request a browser brings to `/authorize` as `request_uri` with `client_id`
/// (RFC 9126 §4), used up: its own parameters, and none of the query's others. Until the
/// request is found nothing is trusted, so failures are the error page, never a redirect.
pub async fn take(
    state: &AppState,
    meta: &RequestMeta,
    client_id: Option<&str>,
    request_uri: &str,
) -> Result<AuthorizeParams, AppError> {
    let Some(client_id) = client_id.filter(|c| !c.is_empty()) else {
        return Err(bad_client("The request names no application (client_id is missing)."));
    };
    if client_id.len() > MAX_URL_BYTES {
        return Err(bad_client("The application is not registered."));
    }
    let Some(random) = request_uri.strip_prefix(REQUEST_URI_PREFIX).filter(|r| r.len() <= 128) else {
        return Err(bad_client("The request_uri was not issued by this provider."));
    };
    let client = client_of(state, meta, client_id).await?;
    let mut tx = state.db.tenant(client.tenant_id).await?;
    let stored = db::pushed_requests::consume(&mut tx, &sha256(random.as_bytes()), &client.client_id).await?;
    tx.commit().await?;
    let Some(stored) = stored else {
        return Err(bad_client("The pushed authorization request has expired or was used already."));
    };
    let pairs: Vec<(String, String)> = serde_json::from_value(stored).map_err(|e| AppError::Internal(e.into()))?;
    let (resources, pairs) = split_resources(pairs);
    let encoded = serde_urlencoded::to_string(&pairs).map_err(|e| AppError::Internal(e.into()))?;
    let params: AuthorizeParams = serde_urlencoded::from_str(&encoded).map_err(|e| AppError::Internal(e.into()))?;
    Ok(AuthorizeParams { resources, ..params })
}
