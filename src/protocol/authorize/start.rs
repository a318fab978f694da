//! A new authorization request: the client and its redirect URI first (errors as a page),
//! then the rest of the request ([`check`], errors to the redirect URI), then the first step.
//! A pushed request (RFC 9126, `protocol::par`) is checked by the same [`check`] when it is
//! pushed, and again when the browser brings its `request_uri`.

use axum::response::Response;
use chrono::Utc;
use tower_sessions::Session;
use uuid::Uuid;

use super::claims::{AcrRefusal, ClaimsRequest, acr_request};
use super::params::{AuthorizeParams, MAX_NONCE_BYTES, MAX_STATE_BYTES};
use super::proceed::decide;
use super::reply::{Reply, bad_client};
use crate::clients::metadata_document::{self, MAX_URL_BYTES, Unresolved};
use crate::clients::resources::InvalidTarget;
use crate::clients::{GRANT_AUTHORIZATION_CODE, RedirectUri};
use crate::db::clients::ClientRow;
use crate::error::AppError;
use crate::html::text::Lang;
use crate::protocol::meta::RequestMeta;
use crate::protocol::types::{Prompt, SCOPES_SUPPORTED, Scopes, valid_pkce_value};
use crate::secrets::Secret;
use crate::session;
use crate::state::AppState;
use crate::tokens::{Expected, TokenType, check_claims};

pub(super) async fn start(
    state: &AppState,
    session: &Session,
    meta: &RequestMeta,
    p: AuthorizeParams,
    page_lang: Lang,
    pushed: bool,
) -> Result<Response, AppError> {
    // 1. The client and its redirect URI: failures here are a page, never a redirect.
    let Some(client_id) = p.client_id.as_deref().filter(|c| !c.is_empty()) else {
        return Err(bad_client("The request names no application (client_id is missing)."));
    };
    if client_id.len() > MAX_URL_BYTES {
        return Err(bad_client("The application is not registered."));
    }
    let client = client_of(state, meta, client_id).await?;
    let Some(redirect_uri) = p.redirect_uri.as_deref() else {
        return Err(bad_client("The request has no redirect_uri."));
    };
    // Exact string match against the registration (RFC 9700 §4.1.3).
    if !client.redirect_uris.iter().any(|r| r == redirect_uri) || RedirectUri::parse(redirect_uri).is_err() {
        return Err(bad_client("The redirect_uri is not registered for this application."));
    }
    let form_post = match p.response_mode.as_deref() {
        None | Some("query") => false,
        Some("form_post") => true,
        // Not trusted as a mode; answer by query.
        Some(_) => false,
    };
    if p.state.as_ref().is_some_and(|s| s.len() > MAX_STATE_BYTES) {
        return Err(bad_client("The state parameter is too long."));
    }
    // The language the request asks for, else the page's (`session::PageLang`).
    let lang = p.ui_locales.as_deref().and_then(Lang::from_ui_locales).unwrap_or(page_lang);
    let (issuer, t) = (&state.config.issuer, lang.text());
    let reply = Reply { redirect_uri, form_post, state: p.state.as_deref(), issuer, t };

    // 2. Everything else is answered at the redirect URI.
    if client.require_par && !pushed {
        return Ok(reply.error("invalid_request", "this client must push its authorization requests to /par first"));
    }
    let (pending, prompt) = match check(state, &client, &p, redirect_uri, form_post).await? {
        Ok(checked) => checked,
        Err((error, description)) => return Ok(reply.error(error, description)),
    };
    if prompt.none {
        // Nothing may be shown: decide now, and never store the request.
        return decide(state, session, meta, &client, pending, true, t).await;
    }
    session::save_pending(session, &pending).await?;
    // Its pages speak the language it asks for (OIDC Core §3.1.2.1), if we have it.
    session::language::from_authorization_request(session, p.ui_locales.as_deref()).await?;
    decide(state, session, meta, &client, pending, false, t).await
}

/// The client a browser's request names (its metadata document fetched when one is due,
/// `clients::metadata_document`), or the error page: its redirect URI cannot be trusted, so
/// nothing is redirected. Why a document was refused is logged, never shown.
pub(super) async fn client_of(state: &AppState, meta: &RequestMeta, client_id: &str) -> Result<ClientRow, AppError> {
    let origin = meta.actor("system", None);
    match metadata_document::resolve(&state.db, &state.client_metadata, client_id, &origin).await {
        Ok(Some(client)) => Ok(client),
        Ok(None) => Err(bad_client("The application is not registered.")),
        Err(Unresolved::Refused(reason)) => {
            tracing::warn!(client_id, %reason, "client metadata document refused");
            Err(bad_client("The application's metadata document could not be used."))
        }
        Err(Unresolved::Internal(e)) => Err(AppError::Internal(e)),
    }
}

/// Why a request is refused: the error code (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6, RFC 8707
/// §2) and its description.
pub type Refusal = (&'static str, &'static str);

/// Everything of a request past its client and redirect URI (which the caller trusts
/// already): the waiting request it makes and its `prompt`, or why it is refused. The
/// authorization endpoint sends a refusal to the redirect URI; the pushed authorization
/// request endpoint answers it as JSON (RFC 9126 §2.3), so both check one way.
pub async fn check(
    state: &AppState,
    client: &ClientRow,
    p: &AuthorizeParams,
    redirect_uri: &str,
    form_post: bool,
) -> Result<Result<(session::Pending, Prompt), Refusal>, AppError> {
    if p.response_mode.as_deref().is_some_and(|m| m != "query" && m != "form_post") {
        return Ok(Err(("invalid_request", "unsupported response_mode")));
    }
    if let Some(why) = p.too_long() {
        return Ok(Err(("invalid_request", why)));
    }
    if p.request.is_some() {
        return Ok(Err(("request_not_supported", "request objects are not supported")));
    }
    if p.request_uri.is_some() {
        return Ok(Err(("request_uri_not_supported", "request_uri is not supported")));
    }
    match p.response_type.as_deref() {
        Some("code") => {}
        None => return Ok(Err(("invalid_request", "response_type is missing"))),
        Some(_) => return Ok(Err(("unsupported_response_type", "only response_type=code is supported"))),
    }
    if !client.grant_types.iter().any(|g| g == GRANT_AUTHORIZATION_CODE) {
        return Ok(Err(("unauthorized_client", "this client may not use the authorization code grant")));
    }
    let requested = match Scopes::parse(p.scope.as_deref().unwrap_or("")) {
        Ok(s) => s,
        Err(why) => return Ok(Err(("invalid_scope", why))),
    };
    // The APIs the access tokens are to be meant for (RFC 8707 §2): each registered in the
    // client's tenant for this client, or `invalid_target`.
    let resources = match crate::clients::resources::resolve(&state.db, client, &p.resources).await? {
        Ok(resources) => resources,
        Err(InvalidTarget(why)) => return Ok(Err(("invalid_target", why))),
    };
    // Scopes we do not know are ignored (OIDC Core §3.1.2.1); ours the client may not have are
    // an error. The scopes of the APIs named are known too, for a client they allow.
    let own = Scopes::parse(&SCOPES_SUPPORTED.join(" ")).unwrap_or_default();
    let scope = requested.intersect(&own);
    if !scope.is_subset_of(&client.scopes) {
        return Ok(Err(("invalid_scope", "a requested scope is not allowed for this client")));
    }
    let scope = scope.union(&requested.intersect(&Scopes::defined_by(&resources)));
    let prompt = match Prompt::parse(p.prompt.as_deref().unwrap_or("")) {
        Ok(prompt) => prompt,
        Err(why) => return Ok(Err(("invalid_request", why))),
    };
    let max_age = match p.max_age.as_deref() {
        None | Some("") => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => return Ok(Err(("invalid_request", "max_age must be a non-negative integer"))),
        },
    };
    if p.nonce.as_ref().is_some_and(|n| n.len() > MAX_NONCE_BYTES) {
        return Ok(Err(("invalid_request", "nonce is too long")));
    }
    // PKCE (RFC 7636, OAuth 2.1 §4.1.1): S256 only; required of public clients, and of
    // confidential ones unless their registration says otherwise.
    let challenge = match (p.code_challenge.as_deref(), p.code_challenge_method.as_deref()) {
        (Some(c), Some("S256")) if valid_pkce_value(c) => Some(c.to_owned()),
        (Some(_), Some("S256")) => return Ok(Err(("invalid_request", "code_challenge is malformed"))),
        (Some(_), None | Some("plain")) => {
            return Ok(Err(("invalid_request", "code_challenge_method must be S256 (plain is not allowed)")));
        }
        (Some(_), Some(_)) => return Ok(Err(("invalid_request", "unsupported code_challenge_method"))),
        (None, Some(_)) => return Ok(Err(("invalid_request", "code_challenge is missing"))),
        (None, None) => None,
    };
    if challenge.is_none() && (client.client_type == crate::vocabulary::ClientType::Public || client.require_pkce) {
        return Ok(Err(("invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256")));
    }
    // The claims parameter (OIDC Core §5.5) and what the sign-in's acr must be: the rule is in
    // `claims` (OIDC Core §3.1.2.1, §5.5.1.1).
    let claims = match p.claims.as_deref() {
        None | Some("") => None,
        Some(raw) => match ClaimsRequest::parse(raw) {
            Ok(c) => Some(c),
            Err(why) => return Ok(Err(("invalid_request", why))),
        },
    };
    let acr = match acr_request(p.acr_values.as_deref(), claims.as_ref()) {
        Ok(acr) => acr,
        Err(AcrRefusal::Invalid(why)) => return Ok(Err(("invalid_request", why))),
        Err(AcrRefusal::Unmet) => {
            return Ok(Err(("unmet_authentication_requirements", "no acr value requested as essential is offered")));
        }
    };
    let hint_sub = match p.id_token_hint.as_deref() {
        None | Some("") => None,
        Some(hint) => match id_token_hint_subject(state, hint, &client.client_id).await {
            Some(sub) => Some(sub),
            None => return Ok(Err(("invalid_request", "id_token_hint is not a valid ID token of this provider"))),
        },
    };
    // A `sub` with a value in the claims parameter is a hint that must hold (OIDC Core
    // §5.5.1): the session's user must be that one, or sign in as that one.
    let hint_sub = match claims.as_ref().and_then(ClaimsRequest::sub_value) {
        None => hint_sub,
        Some(value) => match value.as_str().and_then(|s| s.parse::<Uuid>().ok()) {
            Some(sub) if hint_sub.is_none_or(|h| h == sub) => Some(sub),
            Some(_) => {
                return Ok(Err(("invalid_request", "id_token_hint and the claims parameter name different users")));
            }
            None => {
                return Ok(Err((
                    "invalid_request",
                    "the sub asked for in the claims parameter is not a subject of this provider",
                )));
            }
        },
    };

    // RFC 9449 §10: a JWK thumbprint (SHA-256, base64url: 43 characters).
    let dpop_jkt = match p.dpop_jkt.as_deref() {
        None => None,
        Some(j) if j.len() == 43 && j.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') => {
            Some(j.to_owned())
        }
        Some(_) => return Ok(Err(("invalid_request", "dpop_jkt is not a JWK thumbprint"))),
    };
    let pending = session::Pending {
        id: Secret::generate().expose().to_owned(),
        client_id: client.client_id.clone(),
        client_tenant: client.tenant_id,
        redirect_uri: redirect_uri.to_owned(),
        form_post,
        state: p.state.clone(),
        nonce: p.nonce.clone(),
        scope: scope.to_string(),
        code_challenge: challenge,
        prompt_login: prompt.login,
        prompt_consent: prompt.consent,
        prompt_select_account: prompt.select_account,
        max_age,
        login_hint: p.login_hint.clone(),
        hint_sub,
        tenant_hint: p.tenant.clone(),
        logged_in: false,
        tenant: None,
        consented: false,
        mfa_required: acr.mfa_demanded,
        acr_essential: acr.essential,
        claims: claims.map(|c| c.to_stored()),
        resources: resources.into_iter().map(|r| r.identifier).collect(),
        dpop_jkt,
    };
    Ok(Ok((pending, prompt)))
}

/// The `sub` of an ID token we issued to this client. Expired hints are fine (that is their
/// usual state); forged, `alg: none` or foreign ones are not.
pub async fn id_token_hint_subject(state: &AppState, hint: &str, client_id: &str) -> Option<Uuid> {
    let claims = state.keys.verify_fresh(hint, TokenType::IdToken).await.ok()?;
    let expected = Expected {
        issuer: &state.config.issuer,
        audience: Some(client_id),
        now: Utc::now(),
        // Expiry is not the point of a hint: accept one that expired up to a year ago.
        leeway: std::time::Duration::from_secs(365 * 86400),
    };
    check_claims(&claims, &expected).ok()?;
    claims.get("sub")?.as_str()?.parse().ok()
}
