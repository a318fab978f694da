//! The UserInfo endpoint (OIDC Core §5.3), GET and POST, with a Bearer access token
//! (RFC 6750 §2.1 header, or §2.2 form body for POST).

use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, json};

use crate::db;
use crate::error::{AppError, OAuthError};
use crate::protocol::discovery::paths::USERINFO;
use crate::protocol::types::Scopes;
use crate::protocol::{bearer, dpop, issue};
use crate::state::AppState;

#[derive(Debug, Deserialize, Default)]
struct BodyToken {
    access_token: Option<String>,
}

/// `GET|POST /userinfo`.
pub async fn userinfo(State(state): State<AppState>, req: Request) -> Result<Response, AppError> {
    let (method, headers) = (req.method().as_str().to_owned(), req.headers().clone());
    let dpop_token = dpop_from(req.headers());
    let header_token = bearer_from(req.headers()).or(dpop_token.clone());
    let body_token = if req.method() == axum::http::Method::POST
        && req
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/x-www-form-urlencoded"))
    {
        crate::extract::Form::<BodyToken>::from_request(req, &state).await?.0.access_token
    } else {
        None
    };
    let token = match (header_token, body_token) {
        (Some(_), Some(_)) => return Err(OAuthError::invalid_request("send the access token once").into()),
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => {
            let mut e = OAuthError::invalid_token();
            e.www_authenticate = Some(axum::http::HeaderValue::from_static("Bearer"));
            e.description = "an access token is required".into();
            return Err(e.into());
        }
    };
    let Some(at) = bearer::check(&state, &token).await?.filter(bearer::AccessToken::for_this_provider) else {
        return Err(OAuthError::invalid_token().into());
    };
    // A DPoP-bound token (`cnf.jkt`) only with the `DPoP` scheme and a proof of its key, made
    // for this request and this token (RFC 9449 §7); a Bearer token never with that scheme.
    let bound = at.claims.get("cnf").and_then(|c| c.get("jkt")).and_then(serde_json::Value::as_str);
    match (bound, dpop_token.is_some()) {
        (Some(jkt), true) => {
            let mut tx = state.db.unscoped().await?;
            let proof =
                dpop::proof(&state, &mut tx, &headers, &method, USERINFO, dpop::At::Resource, Some(&token)).await?;
            tx.commit().await?;
            if proof.as_ref().map(|p| p.jkt.as_str()) != Some(jkt) {
                return Err(dpop::invalid(&state, dpop::At::Resource, "the DPoP proof is not of the token's key"));
            }
        }
        (None, false) => {}
        _ => return Err(OAuthError::invalid_token().into()),
    }
    let scope = Scopes::parse(at.str_claim("scope").unwrap_or("")).unwrap_or_default();
    if !scope.contains("openid") {
        let mut e = OAuthError::invalid_token();
        e.status = axum::http::StatusCode::FORBIDDEN;
        e.error = "insufficient_scope";
        e.description = "the access token lacks the openid scope".into();
        e.www_authenticate =
            Some(axum::http::HeaderValue::from_static("Bearer error=\"insufficient_scope\", scope=\"openid\""));
        return Err(e.into());
    }
    let user_id = at.str_claim("sub").and_then(|s| s.parse::<uuid::Uuid>().ok());
    let Some(user_id) = user_id else { return Err(OAuthError::invalid_token().into()) };
    let mut tx = state.db.tenant(at.tenant_id).await?;
    let user = db::users::claims(&mut tx, user_id).await?;
    let requested = db::access_tokens::userinfo_claims(&mut tx, at.jti).await?;
    tx.commit().await?;
    let Some(user) = user.filter(|u| u.status == crate::vocabulary::UserStatus::Active) else {
        return Err(OAuthError::invalid_token().into());
    };
    // Claims by scope (OIDC Core §5.4), and those the authorization request named for
    // UserInfo in its `claims` parameter, whatever the scope (§5.5; only user claims of ours
    // were kept: `issue::requested_user_claims`). Absent ones are left out (§5.3.2), essential or
    // not (§5.5.1: not returning an essential claim is no error).
    let mut names = issue::scope_claims(&scope);
    names.extend(requested.iter().map(String::as_str).filter(|n| issue::user_claim_name(n)));
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(user.id.to_string()));
    issue::add_user_claims(&mut claims, &user, &names);
    for name in ["tid", "tenant", "roles"] {
        if let Some(v) = at.claims.get(name) {
            claims.insert(name.into(), v.clone());
        }
    }
    let mut res = axum::Json(claims).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(res)
}

/// The token of `Authorization: Bearer …` (the scheme is case-insensitive, RFC 6750 §2.1).
/// The token of an `Authorization: DPoP <token>` header (RFC 9449 §7.1).
fn dpop_from(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("dpop") && !token.trim().is_empty()).then(|| token.trim().to_owned())
}

pub fn bearer_from(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim().to_owned())
}
