//! The device page (RFC 8628 §3.3): a signed-in user enters the code their device shows (or
//! arrives with it from `verification_uri_complete`), sees which application and organisation
//! it is for, and approves or denies.
//!
//! - The code is never approved on arrival: even a prefilled code must be confirmed on a page
//!   that shows it next to the client, so a link sent by someone else (remote phishing,
//!   RFC 8628 §5.4) does not connect their device to the user's account by a click.
//! - Wrong codes are counted per user and per client IP (`identity::throttle`), and every
//!   failure, throttled or not, gets the same message. Refused guesses are audited once per
//!   lock window, not once each.
//! - The same second-factor rules as the code flow (`authorize::proceed::needs_mfa`); the user must be
//!   a member of the client's tenant (a device grant is always for the client's own tenant).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

use crate::db::{self, audit, clients::ClientRow};
use crate::error::AppError;
use crate::extract::Query;
use crate::html::text::{Text, scope_description};
use crate::identity::{security, throttle};
use crate::pages::mfa::NoticePage;
use crate::protocol::authorize::proceed::needs_mfa;
use crate::protocol::device::{display_user_code, normalise_user_code, user_code_hash};
use crate::protocol::meta::RequestMeta;
use crate::protocol::types::Scopes;
use crate::render::render;
use crate::session::{self, PageLang, SessionForm, SignedIn};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "device.html")]
struct EntryPage<'a> {
    t: &'static Text,
    csrf: &'a str,
    user_code: &'a str,
    failed: bool,
}

#[derive(Template)]
#[template(path = "device_confirm.html")]
struct ConfirmPage<'a> {
    t: &'static Text,
    csrf: &'a str,
    user_code: &'a str,
    client_name: &'a str,
    tenant_name: &'a str,
    email: &'a str,
    scopes: Vec<&'static str>,
}

#[derive(Debug, Deserialize)]
pub struct DeviceQuery {
    user_code: Option<String>,
}

/// The path of the device page with a (well-formed) code, to come back to after a step.
fn page_path(code: Option<&str>) -> String {
    match code.and_then(normalise_user_code) {
        Some(c) => format!("/device?user_code={}", display_user_code(&c)),
        None => "/device".into(),
    }
}

/// The signed-in user, or a redirect to sign in and come back to `back`.
async fn signed_in(session: &Session, back: String) -> Result<Result<SignedIn, Response>, AppError> {
    match session::signed_in(session).await? {
        Some(who) => Ok(Ok(who)),
        None => {
            session::set_return_to(session, back).await?;
            Ok(Err(Redirect::to("/login").into_response()))
        }
    }
}

/// `GET /device[?user_code=…]`: the code form, prefilled from `verification_uri_complete`.
pub async fn show(session: Session, lang: PageLang, Query(q): Query<DeviceQuery>) -> Result<Response, AppError> {
    if let Err(to_login) = signed_in(&session, page_path(q.user_code.as_deref())).await? {
        return Ok(to_login);
    }
    let prefill = q.user_code.as_deref().and_then(normalise_user_code).map(|c| display_user_code(&c));
    entry_page(&session, lang.text(), prefill.as_deref().unwrap_or(""), false).await
}

async fn entry_page(session: &Session, t: &'static Text, user_code: &str, failed: bool) -> Result<Response, AppError> {
    let csrf = session::csrf_token(session).await?;
    Ok(render(StatusCode::OK, &EntryPage { t, csrf: &csrf, user_code, failed }, &[]))
}

#[derive(Debug, Deserialize)]
pub struct CodeForm {
    csrf: String,
    user_code: String,
}

crate::session::csrf_field!(CodeForm);

/// `POST /device`: checks the code and shows what approving it means.
pub async fn submit(
    State(state): State<AppState>,
    session: Session,
    lang: PageLang,
    meta: RequestMeta,
    SessionForm(form): SessionForm<CodeForm>,
) -> Result<Response, AppError> {
    let who = match signed_in(&session, page_path(Some(&form.user_code))).await? {
        Ok(w) => w,
        Err(to_login) => return Ok(to_login),
    };
    let found = match find(&state, &session, lang.text(), &who, &meta, &form.user_code).await? {
        Ok(f) => f,
        Err(response) => return Ok(response),
    };
    let mut tx = state.db.tenant(found.tenant_id).await?;
    let email = db::users::claims(&mut tx, who.user_id).await?.map(|u| u.email).unwrap_or_default();
    tx.commit().await?;
    let scopes = Scopes::parse(&found.scope).unwrap_or_default();
    let csrf = session::csrf_token(&session).await?;
    let t = lang.text();
    let page = ConfirmPage {
        t,
        csrf: &csrf,
        user_code: &display_user_code(&found.code),
        client_name: &found.client.name,
        tenant_name: &found.tenant_name,
        email: &email,
        scopes: scopes.iter().filter_map(|s| scope_description(t, s)).collect(),
    };
    Ok(render(StatusCode::OK, &page, &[]))
}

#[derive(Debug, Deserialize)]
pub struct DecisionForm {
    csrf: String,
    user_code: String,
    decision: String,
}

crate::session::csrf_field!(DecisionForm);

/// `POST /device/decide`: approves or denies, in one atomic UPDATE of the pending grant with
/// its audit row.
pub async fn decide(
    State(state): State<AppState>,
    session: Session,
    lang: PageLang,
    meta: RequestMeta,
    SessionForm(form): SessionForm<DecisionForm>,
) -> Result<Response, AppError> {
    let who = match signed_in(&session, page_path(Some(&form.user_code))).await? {
        Ok(w) => w,
        Err(to_login) => return Ok(to_login),
    };
    let found = match find(&state, &session, lang.text(), &who, &meta, &form.user_code).await? {
        Ok(f) => f,
        Err(response) => return Ok(response),
    };
    let approve = form.decision == "approve";
    let mut tx = state.db.tenant(found.tenant_id).await?;
    let decider = db::device_grants::Decider {
        user_id: who.user_id,
        stamp: who.stamp,
        auth_time: chrono::DateTime::from_timestamp(who.auth_time, 0).unwrap_or_default(),
        amr: &who.amr,
        acr: &who.acr,
        sid: &who.sid,
    };
    // Decided meanwhile (another tab) or expired: as unknown as a wrong code.
    let Some(client_id) = db::device_grants::decide(&mut tx, &user_code_hash(&found.code), approve, &decider).await?
    else {
        tx.commit().await?;
        return entry_page(&session, lang.text(), "", true).await;
    };
    let action = if approve { "device.approved" } else { "device.denied" };
    let mut event = meta.event(action, "success", ("user", Some(who.user_id.to_string())), ("client", client_id));
    event.details = serde_json::json!({ "user_code": display_user_code(&found.code), "scope": found.scope });
    audit::append(&mut tx, &event).await?;
    tx.commit().await?;
    if approve {
        crate::notify::send(&state, who.user_id, crate::notify::Notice::DeviceConnected { device: &found.client.name })
            .await;
    }
    let t = lang.text();
    let (title, body) = if approve {
        (t.device_approved_title, t.device_approved_body)
    } else {
        (t.device_denied_title, t.device_denied_body)
    };
    Ok(render(StatusCode::OK, &NoticePage { t, title, body, code: None, next: None }, &[]))
}

/// A pending device grant the user may decide.
struct Found {
    tenant_id: Uuid,
    tenant_name: String,
    /// The normalised user code.
    code: String,
    scope: String,
    client: ClientRow,
}

/// Finds the pending grant of a typed code, throttled, and checks that this user may decide
/// it: a member of its tenant, with a second factor where the code flow would need one.
/// `Err` is the page to show instead.
async fn find(
    state: &AppState,
    session: &Session,
    t: &'static Text,
    who: &SignedIn,
    meta: &RequestMeta,
    typed: &str,
) -> Result<Result<Found, Response>, AppError> {
    let attempt = throttle::Attempt::guesses("device", &who.user_id.to_string(), meta.ip);
    let admission = throttle::admit(&state.db, &state.config.throttle, &attempt).await?;
    let reserved = admission.reserved();
    let may_try = reserved.is_some();
    let code = normalise_user_code(typed);
    let mut grant = None;
    if may_try && let Some(code) = &code {
        let hash = user_code_hash(code);
        let mut tx = state.db.unscoped().await?;
        let tenant = db::device_grants::user_code_tenant(&mut tx, &hash).await?;
        tx.commit().await?;
        if let Some(tenant_id) = tenant {
            let mut tx = state.db.tenant(tenant_id).await?;
            let pending = db::device_grants::pending_by_user_code(&mut tx, &hash).await?;
            tx.commit().await?;
            if let Some(p) = pending
                && let Some(client) = crate::clients::find(&state.db, &p.client_id).await?
                && client.tenant_id == tenant_id
            {
                grant = Some((tenant_id, p, client));
            }
        }
    }
    let Some((tenant_id, pending, client)) = grant else {
        if let Some(reserved) = reserved {
            throttle::failed(&state.db, &state.config.throttle, &attempt, reserved).await?;
        }
        // The tenant is not known (that is the point): the user's own chains have it.
        let mut event = meta.event(
            "device.user_code_failure",
            "failure",
            ("user", Some(who.user_id.to_string())),
            ("user", who.user_id.to_string()),
        );
        event.details = serde_json::json!({ "reason": if may_try { "unknown" } else { "throttled" } });
        // Every counted guess is audited; of the refused ones only the first of each lock
        // window, so a flood writes a bounded number of rows (ARCHITECTURE.md, "Audit log").
        if !matches!(admission, throttle::Admission::Refused { audit: false }) {
            let mut tx = state.db.user(who.user_id).await?;
            security::append_for_user(&mut tx, who.user_id, &event).await?;
            tx.commit().await?;
        }
        return Ok(Err(entry_page(session, t, "", true).await?));
    };
    let code = code.unwrap_or_default();

    // ARCHITECTURE.md, "Tenancy": no membership → access_denied, audited, and no token. The page says only
    // what a mistyped code gets (nothing tells a caller another tenant's request exists), the
    // guess counts, and the device's request stays pending: a stranger who hits a code must
    // not be able to cancel someone else's device.
    let mut tx = state.db.unscoped().await?;
    let membership =
        db::memberships::of_user(&mut tx, who.user_id).await?.into_iter().find(|m| m.tenant_id == tenant_id);
    tx.commit().await?;
    let Some(membership) = membership else {
        if let Some(reserved) = reserved {
            throttle::failed(&state.db, &state.config.throttle, &attempt, reserved).await?;
        }
        let mut tx = state.db.tenant(tenant_id).await?;
        let mut event = meta.event(
            "authorization.denied_no_membership",
            "failure",
            ("user", Some(who.user_id.to_string())),
            ("client", client.client_id.clone()),
        );
        event.details = serde_json::json!({ "grant": "device_code" });
        audit::append(&mut tx, &event).await?;
        tx.commit().await?;
        return Ok(Err(entry_page(session, t, "", true).await?));
    };
    // A right code: only the attempt it reserved is given back (clearing the counter would
    // let anyone reset it with a code of their own between guesses).
    throttle::refund(&state.db, &attempt).await?;

    // The second factor, as for a code: the session must have passed it where a sign-in
    // through this client would need it.
    if !who.has_mfa() && needs_mfa(state, &client, tenant_id, who.user_id, false).await? {
        session::set_return_to(session, page_path(Some(&code))).await?;
        return Ok(Err(Redirect::to("/login/mfa").into_response()));
    }
    Ok(Ok(Found { tenant_id, tenant_name: membership.name, code, scope: pending.scope, client }))
}
