//! The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2), GET and form POST.
//!
//! Until the client and its redirect URI are validated, errors are an HTML page and never a
//! redirect (RFC 6749 §4.1.2.1: no open redirector). After that, errors go to the redirect URI
//! with `state` and `iss` (RFC 9207). Then the request waits in the browser session for
//! login, tenant choice and consent, and ends in a single-use code.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{Duration, Utc};
use serde::Deserialize;
use tower_sessions::Session;
use url::Url;
use uuid::Uuid;

use crate::AppState;
use crate::clients::{GRANT_AUTHORIZATION_CODE, RedirectUri};
use crate::db::{self, audit, clients::ClientRow};
use crate::error::AppError;
use crate::extract::{Query, has_control_character};
use crate::identity::security;
use crate::pages::{self, page_error, session};
use crate::protocol::discovery::ACR_MFA;
use crate::protocol::meta::RequestMeta;
use crate::protocol::types::{Prompt, SCOPES_SUPPORTED, Scopes, valid_pkce_value};
use crate::secrets::Secret;
use crate::tokens::{Expected, TokenType, check_claims};

/// Parameters of an authorization request. Unknown ones are ignored (OIDC Core §3.1.2.1);
/// `display`, `ui_locales`, `claims_locales`, `acr_values` and `claims` are accepted.
#[derive(Debug, Default, Deserialize)]
pub struct AuthorizeParams {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub response_mode: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub id_token_hint: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
    /// Tenant slug hint for multi-tenant clients.
    pub tenant: Option<String>,
    pub display: Option<String>,
    pub ui_locales: Option<String>,
    pub claims_locales: Option<String>,
    pub acr_values: Option<String>,
    pub claims: Option<String>,
}

/// `GET /authorize`. Malformed parameters (a repeated one, RFC 6749 §3.1) get the error page:
/// nothing about the request can be trusted yet.
pub async fn authorize_get(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let query = query.unwrap_or_default();
    let pairs = serde_urlencoded::from_str::<Vec<(String, String)>>(&query).unwrap_or_default();
    if has_control_character(&pairs) {
        return Err(bad_client("The request parameters contain control characters."));
    }
    let Ok(params) = serde_urlencoded::from_str::<AuthorizeParams>(&query) else {
        return Err(bad_client("The request parameters are malformed or repeated."));
    };
    start(&state, &session, &meta, params).await
}

/// `POST /authorize` (OIDC Core §3.1.2.1 allows form POST). A cross-site POST carries no
/// `SameSite=Lax` cookie, so the request is answered with a 303 to the same request as GET,
/// which does: the user's session is found, not replaced by an empty one.
pub async fn authorize_post(body: axum::body::Bytes) -> Result<Response, AppError> {
    let Ok(params) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        return Err(bad_client("The request parameters are malformed."));
    };
    if has_control_character(&params) {
        return Err(bad_client("The request parameters contain control characters."));
    }
    let query = serde_urlencoded::to_string(&params).map_err(|e| AppError::Internal(e.into()))?;
    Ok(Redirect::to(&format!("{}?{query}", crate::protocol::discovery::paths::AUTHORIZE)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ContinueParams {
    req: String,
}

/// `GET /authorize/continue?req=…`: where login, tenant choice and consent send the browser.
pub async fn resume(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Query(p): Query<ContinueParams>,
) -> Result<Response, AppError> {
    let Some(pending) = session::pending(&session, &p.req).await? else {
        return Err(expired_request());
    };
    proceed(&state, &session, &meta, pending).await
}

pub fn expired_request() -> AppError {
    page_error(StatusCode::BAD_REQUEST, "This sign-in has expired", "Go back to the application and sign in again.")
}

fn bad_client(message: &'static str) -> AppError {
    page_error(StatusCode::BAD_REQUEST, "The application's sign-in request is invalid", message)
}

/// Where an error or a code goes once the redirect URI is trusted.
pub struct Reply<'a> {
    pub redirect_uri: &'a str,
    pub form_post: bool,
    pub state: Option<&'a str>,
    pub issuer: &'a str,
}

impl Reply<'_> {
    /// An error response to the client (RFC 6749 §4.1.2.1).
    pub fn error(&self, error: &'static str, description: &str) -> Response {
        let description = crate::error::error_description_charset(description);
        self.send(vec![("error", error.to_owned()), ("error_description", description)])
    }

    /// The code (RFC 6749 §4.1.2), with `iss` (RFC 9207 §2).
    pub fn code(&self, code: &str) -> Response {
        self.send(vec![("code", code.to_owned())])
    }

    fn send(&self, mut fields: Vec<(&'static str, String)>) -> Response {
        if let Some(state) = self.state {
            fields.push(("state", state.to_owned()));
        }
        fields.push(("iss", self.issuer.to_owned()));
        if self.form_post {
            return form_post(self.redirect_uri, &fields);
        }
        // The redirect URI was matched exactly against a registered, parseable one.
        let Ok(mut url) = Url::parse(self.redirect_uri) else {
            return AppError::Internal(anyhow::anyhow!("registered redirect URI does not parse")).into_response();
        };
        {
            let mut query = url.query_pairs_mut();
            for (k, v) in &fields {
                query.append_pair(k, v);
            }
        }
        let mut res = Redirect::to(url.as_str()).into_response();
        res.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
        res
    }
}

#[derive(askama::Template)]
#[template(path = "form_post.html")]
struct FormPostPage<'a> {
    t: &'static pages::Text,
    action: &'a str,
    fields: &'a [(&'static str, String)],
}

/// OAuth 2.0 Form Post Response Mode: an auto-submitting form to the redirect URI.
fn form_post(action: &str, fields: &[(&'static str, String)]) -> Response {
    let page = FormPostPage { t: &pages::EN, action, fields };
    pages::render(StatusCode::OK, &page, &[origin_of(action)])
}

/// The CSP source for a redirect URI: its origin, or `scheme:` for a private-use scheme.
pub fn origin_of(uri: &str) -> String {
    match Url::parse(uri) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => u.origin().ascii_serialization(),
        Ok(u) => format!("{}:", u.scheme()),
        Err(_) => "'none'".into(),
    }
}

async fn start(
    state: &AppState,
    session: &Session,
    meta: &RequestMeta,
    p: AuthorizeParams,
) -> Result<Response, AppError> {
    // 1. The client and its redirect URI: failures here are a page, never a redirect.
    let Some(client_id) = p.client_id.as_deref().filter(|c| !c.is_empty() && c.len() <= 128) else {
        return Err(bad_client("The request names no application (client_id is missing)."));
    };
    let client = crate::clients::find(&state.db, client_id)
        .await?
        .ok_or_else(|| bad_client("The application is not registered."))?;
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
    if p.state.as_ref().is_some_and(|s| s.len() > 2048) {
        return Err(bad_client("The state parameter is too long."));
    }
    let reply = Reply { redirect_uri, form_post, state: p.state.as_deref(), issuer: &state.config.issuer };

    // 2. Everything else is answered at the redirect URI.
    if p.response_mode.as_deref().is_some_and(|m| m != "query" && m != "form_post") {
        return Ok(reply.error("invalid_request", "unsupported response_mode"));
    }
    if p.request.is_some() {
        return Ok(reply.error("request_not_supported", "request objects are not supported"));
    }
    if p.request_uri.is_some() {
        return Ok(reply.error("request_uri_not_supported", "request_uri is not supported"));
    }
    match p.response_type.as_deref() {
        Some("code") => {}
        None => return Ok(reply.error("invalid_request", "response_type is missing")),
        Some(_) => return Ok(reply.error("unsupported_response_type", "only response_type=code is supported")),
    }
    if !client.grant_types.iter().any(|g| g == GRANT_AUTHORIZATION_CODE) {
        return Ok(reply.error("unauthorized_client", "this client may not use the authorization code grant"));
    }
    let requested = match Scopes::parse(p.scope.as_deref().unwrap_or("")) {
        Ok(s) => s,
        Err(why) => return Ok(reply.error("invalid_scope", why)),
    };
    // Scopes we do not know are ignored (OIDC Core §3.1.2.1); known ones the client may not
    // have are an error.
    let known = Scopes::parse(&SCOPES_SUPPORTED.join(" ")).unwrap_or_default();
    let scope = requested.intersect(&known);
    if !scope.is_subset_of(&client.scopes) {
        return Ok(reply.error("invalid_scope", "a requested scope is not allowed for this client"));
    }
    let prompt = match Prompt::parse(p.prompt.as_deref().unwrap_or("")) {
        Ok(prompt) => prompt,
        Err(why) => return Ok(reply.error("invalid_request", why)),
    };
    let max_age = match p.max_age.as_deref() {
        None | Some("") => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => return Ok(reply.error("invalid_request", "max_age must be a non-negative integer")),
        },
    };
    if p.nonce.as_ref().is_some_and(|n| n.len() > 512) {
        return Ok(reply.error("invalid_request", "nonce is too long"));
    }
    // PKCE (RFC 7636, OAuth 2.1 §4.1.1): S256 only; required of public clients, and of
    // confidential ones unless their registration says otherwise.
    let challenge = match (p.code_challenge.as_deref(), p.code_challenge_method.as_deref()) {
        (Some(c), Some("S256")) if valid_pkce_value(c) => Some(c.to_owned()),
        (Some(_), Some("S256")) => return Ok(reply.error("invalid_request", "code_challenge is malformed")),
        (Some(_), None | Some("plain")) => {
            return Ok(reply.error("invalid_request", "code_challenge_method must be S256 (plain is not allowed)"));
        }
        (Some(_), Some(_)) => return Ok(reply.error("invalid_request", "unsupported code_challenge_method")),
        (None, Some(_)) => return Ok(reply.error("invalid_request", "code_challenge is missing")),
        (None, None) => None,
    };
    if challenge.is_none() && (client.client_type == db::enums::ClientType::Public || client.require_pkce) {
        return Ok(
            reply.error("invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256")
        );
    }
    let hint_sub = match p.id_token_hint.as_deref() {
        None | Some("") => None,
        Some(hint) => match id_token_hint_subject(state, hint, &client.client_id).await {
            Some(sub) => Some(sub),
            None => return Ok(reply.error("invalid_request", "id_token_hint is not a valid ID token of this provider")),
        },
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
        login_hint: p.login_hint.clone().filter(|h| h.len() <= 254),
        hint_sub,
        tenant_hint: p.tenant.clone().filter(|t| t.len() <= 63),
        logged_in: false,
        tenant: None,
        consented: false,
        // acr_values is a space-separated preference list (OIDC Core §3.1.2.1); asking for
        // ours makes the second factor a must for this request.
        mfa_required: p.acr_values.as_deref().is_some_and(|v| v.split(' ').any(|a| a == ACR_MFA)),
    };
    if prompt.none {
        // Nothing may be shown: decide now, and never store the request.
        return decide(state, session, meta, &client, pending, true).await;
    }
    session::save_pending(session, &pending).await?;
    decide(state, session, meta, &client, pending, false).await
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

/// Whether a sign-in through `client` into `tenant_id` must have passed a second factor:
/// `requested` by the request (`acr_values`, a step-up), required by the client or the tenant,
/// or because the user has one or administers a tenant. The code flow and the device page
/// both ask this.
pub async fn needs_mfa(
    state: &AppState,
    client: &ClientRow,
    tenant_id: Uuid,
    user_id: Uuid,
    requested: bool,
) -> Result<bool, AppError> {
    if requested {
        return Ok(true);
    }
    let mut tx = state.db.tenant_and_user(tenant_id, user_id).await?;
    let required = security::second_factor_required(&mut tx, client.require_mfa, user_id).await?;
    tx.commit().await?;
    Ok(required)
}

/// Resumes a stored request after a step.
async fn proceed(
    state: &AppState,
    session: &Session,
    meta: &RequestMeta,
    pending: session::Pending,
) -> Result<Response, AppError> {
    let Some(client) = crate::clients::find(&state.db, &pending.client_id).await? else {
        return Err(expired_request());
    };
    decide(state, session, meta, &client, pending, false).await
}

/// The next step of a request: login, tenant choice, consent, or the code.
async fn decide(
    state: &AppState,
    session: &Session,
    meta: &RequestMeta,
    client: &ClientRow,
    mut pending: session::Pending,
    prompt_none: bool,
) -> Result<Response, AppError> {
    let reply = Reply {
        redirect_uri: &pending.redirect_uri,
        form_post: pending.form_post,
        state: pending.state.as_deref(),
        issuer: &state.config.issuer,
    };
    let to = |page: &str| Redirect::to(&format!("/{page}?req={}", pending.id)).into_response();

    // Authentication (OIDC Core §3.1.2.3).
    let who = session::signed_in(session).await?;
    let now = Utc::now().timestamp();
    let needs_login = match &who {
        None => true,
        Some(w) => {
            // Once this request has had its login, prompt=login and max_age are satisfied.
            (!pending.logged_in && (pending.prompt_login || pending.max_age.is_some_and(|max| now - w.auth_time > max)))
                || pending.hint_sub.is_some_and(|sub| sub != w.user_id)
        }
    };
    let who = match who {
        Some(w) if !needs_login => w,
        _ if prompt_none => return Ok(reply.error("login_required", "the user is not signed in")),
        _ => return Ok(to("login")),
    };

    // The tenant the tokens will be for.
    // A stored choice counts only for a multi-tenant client; any other client's tokens are
    // for its own tenant, checked again every time.
    let tenant_id = match pending.tenant.filter(|_| client.multi_tenant) {
        Some(t) => t,
        None => {
            let mut tx = state.db.unscoped().await?;
            let memberships = db::memberships::of_user(&mut tx, who.user_id).await?;
            tx.commit().await?;
            let chosen = if client.multi_tenant {
                let hinted = pending.tenant_hint.as_deref().and_then(|h| memberships.iter().find(|m| m.slug == h));
                match (hinted, memberships.as_slice()) {
                    (Some(m), _) if !pending.prompt_select_account => Some(m.tenant_id),
                    (_, [only]) if !pending.prompt_select_account => Some(only.tenant_id),
                    (_, []) => None,
                    _ if prompt_none => {
                        return Ok(reply.error("account_selection_required", "the user must choose an organisation"));
                    }
                    _ => return Ok(to("select-tenant")),
                }
            } else {
                memberships.iter().find(|m| m.tenant_id == client.tenant_id).map(|m| m.tenant_id)
            };
            let Some(tenant_id) = chosen else {
                // DESIGN.md: no membership → access_denied, audited, and no token.
                let mut tx = state.db.tenant(client.tenant_id).await?;
                audit::append(
                    &mut tx,
                    &meta.event(
                        "authorization.denied_no_membership",
                        "failure",
                        ("user", Some(who.user_id.to_string())),
                        ("client", client.client_id.clone()),
                    ),
                )
                .await?;
                tx.commit().await?;
                session::finish_pending(session, &pending.id).await?;
                return Ok(reply.error("access_denied", "the user is not a member of this organisation"));
            };
            pending.tenant = Some(tenant_id);
            if !prompt_none {
                session::save_pending(session, &pending).await?;
            }
            tenant_id
        }
    };

    // The second factor: asked for by the request, required by the client or the tenant, or
    // because the user has one or administers a tenant (admin tokens never rest on a password
    // alone). A session that signed in with the password only steps up here.
    if !who.has_mfa() && needs_mfa(state, client, tenant_id, who.user_id, pending.mfa_required).await? {
        if prompt_none {
            return Ok(reply.error("interaction_required", "a second factor is needed"));
        }
        pending.mfa_required = true;
        session::save_pending(session, &pending).await?;
        return Ok(to("login/mfa"));
    }

    // Consent, remembered per client and scope set (OIDC Core §3.1.2.4).
    let scope = Scopes::parse(&pending.scope).unwrap_or_default();
    if !pending.consented {
        let mut tx = state.db.tenant(tenant_id).await?;
        let granted = db::consents::granted(&mut tx, who.user_id, &client.client_id).await?;
        tx.commit().await?;
        let remembered = scope.is_subset_of(&granted);
        if pending.prompt_consent || !remembered {
            if prompt_none {
                return Ok(reply.error("consent_required", "the user has not consented"));
            }
            return Ok(to("consent"));
        }
    }

    // The code: 256 random bits, stored as a hash, single use, short-lived.
    let code = Secret::generate();
    let grant = db::authorization_codes::CodeGrant {
        client_id: client.client_id.clone(),
        user_id: who.user_id,
        redirect_uri: pending.redirect_uri.clone(),
        scope: scope.to_string(),
        nonce: pending.nonce.clone(),
        code_challenge: pending.code_challenge.clone(),
        auth_time: chrono::DateTime::from_timestamp(who.auth_time, 0).unwrap_or_default(),
        amr: who.amr.clone(),
        acr: who.acr.clone(),
        sid: who.sid.clone(),
        security_stamp: Some(who.stamp),
    };
    let expires = Utc::now() + Duration::from_std(state.config.ttl.code).unwrap_or_default();
    let mut tx = state.db.tenant(tenant_id).await?;
    db::authorization_codes::insert(&mut tx, &code.hash(), &grant, expires).await?;
    tx.commit().await?;
    if !prompt_none {
        session::finish_pending(session, &pending.id).await?;
    }
    Ok(reply.code(code.expose()))
}
