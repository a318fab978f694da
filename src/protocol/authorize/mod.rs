//! The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2), GET and form POST.
//!
//! Until the client and its redirect URI are validated, errors are an HTML page and never a
//! redirect (RFC 6749 §4.1.2.1: no open redirector). After that, errors go to the redirect URI
//! with `state` and `iss` (RFC 9207). Then the request waits in the browser session for
//! login, tenant choice and consent, and ends in a single-use code.
//!
//! The steps, one file each: [`params`] (what the request may carry), [`claims`] (the
//! `claims` parameter, and what the request asks of the sign-in's `acr`), [`start`] (validate
//! the client and redirect URI, then the request), [`proceed`] (the next step of a waiting
//! request, and the code), [`reply`] (how an answer reaches the client); [`pushed`] is the
//! pushed authorization request endpoint (RFC 9126) and its `request_uri` here.

pub mod claims;
pub mod params;
pub mod proceed;
pub mod pushed;
pub mod reply;
pub mod start;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use crate::error::AppError;
use crate::extract::{Query, Refused, strict_pairs};
use crate::protocol::meta::RequestMeta;
use crate::session::{self, PageLang};
use crate::state::AppState;
use params::AuthorizeParams;
use proceed::proceed;
use reply::{bad_client, expired_request};
use start::start;

/// `GET /authorize`. Malformed parameters (a repeated one, RFC 6749 §3.1) get the error page:
/// nothing about the request can be trusted yet.
pub async fn authorize_get(
    State(state): State<AppState>,
    session: Session,
    PageLang(lang): PageLang,
    meta: RequestMeta,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let query = query.unwrap_or_default();
    let (resources, rest) = params::split_resources(refuse_malformed(strict_pairs(query.as_bytes()))?);
    let rest = serde_urlencoded::to_string(&rest).map_err(|e| AppError::Internal(e.into()))?;
    let Ok(mut params) = serde_urlencoded::from_str::<AuthorizeParams>(&rest) else {
        return Err(bad_client("The request parameters are malformed or repeated."));
    };
    params.resources = resources;
    // A request pushed to /par (RFC 9126 §4): its own parameters, none of the query's others.
    // Any other request_uri is a request object by reference, which `start` refuses.
    if let Some(request_uri) = params.request_uri.as_deref().filter(|u| u.starts_with(pushed::REQUEST_URI_PREFIX)) {
        let pushed = pushed::take(&state, &meta, params.client_id.as_deref(), request_uri).await?;
        return start(&state, &session, &meta, pushed, lang, true).await;
    }
    start(&state, &session, &meta, params, lang, false).await
}

/// `POST /authorize` (OIDC Core §3.1.2.1 allows form POST). A cross-site POST carries no
/// `SameSite=Lax` cookie, so the request is answered with a 303 to the same request as GET,
/// which does: the user's session is found, not replaced by an empty one.
pub async fn authorize_post(body: axum::body::Bytes) -> Result<Response, AppError> {
    let params = refuse_malformed(strict_pairs(&body))?;
    let query = serde_urlencoded::to_string(&params).map_err(|e| AppError::Internal(e.into()))?;
    Ok(Redirect::to(&format!("{}?{query}", crate::protocol::discovery::paths::AUTHORIZE)).into_response())
}

/// The error page for parameters the strict decoder refused.
fn refuse_malformed<T>(decoded: Result<T, Refused>) -> Result<T, AppError> {
    decoded.map_err(|why| match why {
        Refused::ControlCharacter => bad_client("The request parameters contain control characters."),
        Refused::Malformed => bad_client("The request parameters are malformed."),
    })
}

#[derive(Debug, Deserialize)]
pub struct ContinueParams {
    req: String,
}

/// `GET /authorize/continue?req=…`: where login, tenant choice and consent send the browser.
pub async fn resume(
    State(state): State<AppState>,
    session: Session,
    PageLang(lang): PageLang,
    meta: RequestMeta,
    Query(p): Query<ContinueParams>,
) -> Result<Response, AppError> {
    let Some(pending) = session::pending(&session, &p.req).await? else {
        return Err(expired_request());
    };
    proceed(&state, &session, &meta, pending, lang).await
}
