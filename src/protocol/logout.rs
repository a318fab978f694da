//! RP-Initiated Logout (OpenID Connect RP-Initiated Logout 1.0): GET and POST `/logout` with
//! `id_token_hint`, `post_logout_redirect_uri`, `state`, `client_id`.
//!
//! - A forged, `alg: none` or foreign `id_token_hint` gets an error page.
//! - `post_logout_redirect_uri` must match one registered for the client exactly (§3.1);
//!   otherwise an error page, never a redirect.
//! - With a valid hint for the signed-in user, the relying party has shown who it is: the
//!   session ends at once. Otherwise (no hint, or another user's) the user confirms on a page
//!   first, so a link on any site cannot sign people out.
//! - A POST from the relying party's site carries no `SameSite=Lax` cookie; it is answered
//!   with a 303 to the same request as GET, which does.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;
use url::Url;

use crate::db::{self, audit};
use crate::error::AppError;
use crate::extract::{Form, Query};
use crate::html::text::Text;
use crate::protocol::authorize::params::MAX_STATE_BYTES;
use crate::protocol::meta::RequestMeta;
use crate::render::{self, MessagePage, page_error, render};
use crate::session::{self, PageLang};
use crate::state::AppState;
use crate::tokens::{Expected, TokenType, check_claims};

#[derive(Debug, Default, Deserialize)]
pub struct LogoutParams {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    client_id: Option<String>,
    /// Our confirmation form.
    csrf: Option<String>,
    confirm: Option<String>,
}

#[derive(Template)]
#[template(path = "logout.html")]
struct ConfirmPage<'a> {
    t: &'static Text,
    csrf: &'a str,
    client_id: &'a str,
    post_logout_redirect_uri: &'a str,
    state: &'a str,
}

/// `GET /logout`.
pub async fn logout_get(
    State(state): State<AppState>,
    session: Session,
    lang: PageLang,
    meta: RequestMeta,
    Query(p): Query<LogoutParams>,
) -> Result<Response, AppError> {
    logout(&state, &session, lang.text(), &meta, p).await
}

/// `POST /logout`: our confirmation form is handled here; a relying party's POST becomes a GET.
pub async fn logout_post(
    State(state): State<AppState>,
    session: Session,
    lang: PageLang,
    meta: RequestMeta,
    Form(p): Form<LogoutParams>,
) -> Result<Response, AppError> {
    if p.confirm.is_some() {
        return logout(&state, &session, lang.text(), &meta, p).await;
    }
    let mut url = Url::parse("http://x/logout").map_err(|e| AppError::Internal(e.into()))?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in [
            ("id_token_hint", &p.id_token_hint),
            ("post_logout_redirect_uri", &p.post_logout_redirect_uri),
            ("state", &p.state),
            ("client_id", &p.client_id),
        ] {
            if let Some(v) = v {
                q.append_pair(k, v);
            }
        }
    }
    let query = url.query().unwrap_or("");
    Ok(axum::response::Redirect::to(&format!("/logout?{query}")).into_response())
}

fn refused(message: &'static str) -> AppError {
    page_error(StatusCode::BAD_REQUEST, crate::html::text::Words::Of(|t| t.error_logout_invalid_title), message)
}

async fn logout(
    state: &AppState,
    session: &Session,
    t: &'static Text,
    meta: &RequestMeta,
    p: LogoutParams,
) -> Result<Response, AppError> {
    // Who is asking: the hint's audience, which must agree with client_id if both are given.
    let hint = match p.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
        Some(hint) => Some(verify_hint(state, hint).await.ok_or_else(|| refused("The id_token_hint is not valid."))?),
        None => None,
    };
    let client_id = match (&hint, p.client_id.as_deref()) {
        (Some(h), Some(b)) if h.client_id != b => return Err(refused("client_id does not match the id_token_hint.")),
        (Some(h), _) => Some(h.client_id.clone()),
        (None, b) => b.map(str::to_owned),
    };
    // Signing out works for a suspended tenant's clients too.
    let client = match &client_id {
        Some(id) if !id.is_empty() && id.len() <= crate::clients::metadata_document::MAX_URL_BYTES => {
            crate::clients::find_any(&state.db, id).await?
        }
        _ => None,
    };
    // Refused, not dropped: a relying party that gets no `state` back cannot tell why.
    if p.state.as_ref().is_some_and(|s| s.len() > MAX_STATE_BYTES) {
        return Err(refused("The state parameter is too long."));
    }
    let redirect = match p.post_logout_redirect_uri.as_deref().filter(|u| !u.is_empty()) {
        None => None,
        Some(uri) => {
            if client_id.is_none() {
                return Err(refused("post_logout_redirect_uri needs an id_token_hint or client_id."));
            }
            let registered = client.as_ref().is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri));
            if !registered {
                return Err(refused("The post_logout_redirect_uri is not registered for this application."));
            }
            Some(uri.to_owned())
        }
    };

    let confirmed = match (p.confirm.as_deref(), p.csrf.as_deref()) {
        (Some("yes"), Some(csrf)) => {
            session::check_csrf(session, csrf).await?;
            true
        }
        _ => false,
    };
    let signed_in = session::signed_in(session).await?;
    // The hint vouches for this session only if it names the signed-in user.
    let hint_is_for_this_session = match (&hint, &signed_in) {
        (Some(h), Some(who)) => h.sub == who.user_id,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if !confirmed && !hint_is_for_this_session {
        let csrf = session::csrf_token(session).await?;
        let page = ConfirmPage {
            t,
            csrf: &csrf,
            client_id: client_id.as_deref().unwrap_or(""),
            post_logout_redirect_uri: redirect.as_deref().unwrap_or(""),
            state: p.state.as_deref().unwrap_or(""),
        };
        let targets: Vec<String> = redirect.iter().map(|r| crate::protocol::authorize::reply::origin_of(r)).collect();
        return Ok(render(StatusCode::OK, &page, &targets));
    }
    // The event first: if it cannot be written, the session does not end either.
    if let Some(who) = &signed_in {
        // The tenant whose chain records it: the hint's, when the hint is this user's; else
        // the client's; else (a bare sign-out) the platform's.
        let tenant = match (&hint, &client) {
            (Some(h), _) if h.sub == who.user_id && h.tenant.is_some() => h.tenant,
            (_, Some(c)) => Some(c.tenant_id),
            _ => {
                let mut tx = state.db.unscoped().await?;
                let platform = db::tenants::platform(&mut tx).await?;
                tx.commit().await?;
                platform
            }
        };
        if let Some(tenant) = tenant {
            let target = match &client {
                Some(c) => ("client", c.client_id.clone()),
                None => ("user", who.user_id.to_string()),
            };
            let event = audit::Event {
                details: serde_json::json!({ "sid": who.sid, "confirmed": confirmed }),
                ..meta.event("logout", "success", ("user", Some(who.user_id.to_string())), target)
            };
            let mut tx = state.db.tenant(tenant).await?;
            audit::append(&mut tx, &event).await?;
            tx.commit().await?;
        }
        notify_relying_parties(state, who.user_id, &who.sid).await?;
    }
    session::sign_out(session).await?;
    match redirect {
        Some(uri) => {
            let Ok(mut url) = Url::parse(&uri) else {
                return Err(refused("The post_logout_redirect_uri is not a URL."));
            };
            if let Some(state) = p.state.as_deref().filter(|s| !s.is_empty()) {
                url.query_pairs_mut().append_pair("state", state);
            }
            Ok(Redirect::to(url.as_str()).into_response())
        }
        None => Ok(signed_out(t)),
    }
}

/// The relying parties of the ending session hear of it (OpenID Connect Back-Channel Logout
/// 1.0 §2.7): a notice for each client with a back-channel logout URI and a live family of
/// this session, in every tenant the user has families in, delivered by `crate::backchannel`
/// after this request. The families themselves live on (a refresh token outlives a browser
/// session, as `offline_access` means); the relying party ends its own session.
async fn notify_relying_parties(state: &AppState, user_id: uuid::Uuid, sid: &str) -> Result<(), AppError> {
    let mut tx = state.db.unscoped().await?;
    tx.switch_user(user_id).await?;
    for tenant in db::families::tenants_of_user(&mut tx, user_id).await? {
        tx.switch_tenant(tenant).await?;
        db::logout_notices::enqueue(&mut tx, user_id, Some(sid), "logout").await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The signed-out page.
pub fn signed_out(t: &'static Text) -> Response {
    let page = MessagePage { t, title: t.signed_out_title, body: t.signed_out_body };
    render::render(StatusCode::OK, &page, &[])
}

/// What a valid `id_token_hint` says.
struct Hint {
    client_id: String,
    sub: uuid::Uuid,
    /// The tenant the ID token was for (`tid`).
    tenant: Option<uuid::Uuid>,
}

/// The client (`aud`) and user of an ID token we issued; expired is fine, forged is not.
async fn verify_hint(state: &AppState, hint: &str) -> Option<Hint> {
    let claims = state.keys.verify_fresh(hint, TokenType::IdToken).await.ok()?;
    let expected = Expected {
        issuer: &state.config.issuer,
        audience: None,
        now: chrono::Utc::now(),
        leeway: std::time::Duration::from_secs(365 * 86400),
    };
    check_claims(&claims, &expected).ok()?;
    let client_id = match claims.get("aud")? {
        serde_json::Value::String(a) => a.clone(),
        serde_json::Value::Array(list) if list.len() == 1 => list[0].as_str()?.to_owned(),
        _ => claims.get("azp")?.as_str()?.to_owned(),
    };
    let sub = claims.get("sub")?.as_str()?.parse().ok()?;
    let tenant = claims.get("tid").and_then(|t| t.as_str()).and_then(|t| t.parse().ok());
    Some(Hint { client_id, sub, tenant })
}
