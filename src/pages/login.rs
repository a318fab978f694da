//! The login page (email + password).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

use crate::db::{self, audit};
use crate::error::AppError;
use crate::extract::{Form, Query};
use crate::html::text::Text;
use crate::identity::{security, throttle};
use crate::protocol::authorize::reply::origin_of;
use crate::protocol::meta::RequestMeta;
use crate::render::render;
use crate::secrets::{ExposeSecret, Secret, SecretString};
use crate::session::{self, PageLang, Pending, SignedIn};
use crate::session::{ACR_MFA, ACR_PASSWORD};
use crate::state::AppState;
use crate::telemetry::metrics;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    t: &'static Text,
    csrf: &'a str,
    req: &'a str,
    email: &'a str,
    client_name: Option<&'a str>,
    failed: bool,
    /// Whether a "sign in with a passkey" button is shown ([`passkey_sign_in_offered`]).
    passkey: bool,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    req: Option<String>,
}

/// `GET /login`.
pub async fn show(
    State(state): State<AppState>,
    session: Session,
    lang: PageLang,
    Query(q): Query<LoginQuery>,
) -> Result<Response, AppError> {
    let pending = match &q.req {
        Some(id) => session::pending(&session, id).await?,
        None => None,
    };
    let email = pending.as_ref().and_then(|p| p.login_hint.clone()).unwrap_or_default();
    page(&state, &session, lang.text(), pending.as_ref(), &email, false, StatusCode::OK).await
}

async fn page(
    state: &AppState,
    session: &Session,
    t: &'static Text,
    pending: Option<&Pending>,
    email: &str,
    failed: bool,
    status: StatusCode,
) -> Result<Response, AppError> {
    let csrf = session::csrf_token(session).await?;
    let client_name = match pending {
        Some(p) => client_name(state, p).await?,
        None => None,
    };
    let targets: Vec<String> = pending.map(|p| vec![origin_of(&p.redirect_uri)]).unwrap_or_default();
    let req = pending.map(|p| p.id.as_str()).unwrap_or("");
    let passkey = passkey_sign_in_offered(state, pending).await?;
    let page = LoginPage { t, csrf: &csrf, req, email, client_name: client_name.as_deref(), failed, passkey };
    Ok(render(status, &page, &targets))
}

/// The display name of the client a request is for. A client of a metadata document chose
/// its own name, so the host its document is served from is shown beside it: that is the
/// only part anyone vouches for.
pub async fn client_name(state: &AppState, p: &Pending) -> Result<Option<String>, AppError> {
    let Some(client) = crate::clients::find(&state.db, &p.client_id).await? else { return Ok(None) };
    if !client.is_metadata_document() {
        return Ok(Some(client.name));
    }
    let host = url::Url::parse(&client.client_id).ok().and_then(|u| u.host_str().map(str::to_owned));
    Ok(Some(match host {
        Some(host) => format!("{} ({host})", client.name),
        None => client.name,
    }))
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    csrf: String,
    #[serde(default)]
    req: String,
    email: String,
    password: SecretString,
}

/// `POST /login`. An unknown email, a wrong password and a disabled account all get the same
/// answer after the same bcrypt work, so the page cannot be used to find accounts. An attempt
/// refused by a lock (the client IP's, or the account key's, which is kept for any email as
/// typed) gets that same page without bcrypt: whether a key is blocked does not depend on
/// whether the account exists (`identity::throttle` says why that leaks nothing), and a flood
/// that has locked itself out must not keep the CPU busy. Each client IP has a bounded share
/// of the hasher (429 past it) and the hasher's queue is bounded (503 past it), both with
/// `Retry-After` (`identity::password`).
pub async fn submit(
    State(state): State<AppState>,
    session: Session,
    lang: PageLang,
    meta: RequestMeta,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    // A place in the hasher's queue first: it depends only on the client IP and the load, and
    // refusing here costs nothing (not even the session's read) and counts nothing.
    let ticket = state.passwords.ticket(meta.ip).await?;
    session::check_csrf(&session, &form.csrf).await?;
    session::begin_password_step(&session).await?;
    let pending = if form.req.is_empty() { None } else { session::pending(&session, &form.req).await? };
    let email = form.email.trim();
    let password = form.password.expose_secret();
    let attempt = throttle::Attempt::new(email, meta.ip);
    let reserved = match throttle::admit(&state.db, &state.config.throttle, &attempt).await? {
        throttle::Admission::Check(reserved) => reserved,
        throttle::Admission::Refused { audit } => {
            drop(ticket);
            metrics::sign_in("password", "throttled");
            // One row per lock window: a flood of refused attempts must not be a flood of
            // permanent rows (ARCHITECTURE.md, "Audit log").
            if audit {
                let mut event =
                    meta.event("login.failure", "failure", ("user", None), ("client", client_of(pending.as_ref())));
                event.details = serde_json::json!({ "reason": "throttled" });
                audit_sign_in(&state, pending.as_ref(), &event).await?;
            }
            return page(&state, &session, lang.text(), pending.as_ref(), email, true, StatusCode::OK).await;
        }
    };
    let found = if email.len() <= 254 && password.len() <= 1024 {
        let mut tx = state.db.unscoped().await?;
        let user = db::users::by_email(&mut tx, email).await?;
        tx.commit().await?;
        user
    } else {
        None
    };
    let password_ok = ticket.verify(password, found.as_ref().and_then(|u| u.password_hash.as_deref())).await?;
    let found_id = found.as_ref().map(|u| u.id);
    let user = found.filter(|u| password_ok && u.status == crate::vocabulary::UserStatus::Active);

    let Some(user) = user else {
        let user_id = found_id.map(|u| u.to_string());
        metrics::sign_in("password", "failure");
        let failure = throttle::failed(&state.db, &state.config.throttle, &attempt, reserved).await?;
        record_lockouts(&state, pending.as_ref(), &meta, found_id, email, failure).await?;
        let mut event =
            meta.event("login.failure", "failure", ("user", user_id), ("client", client_of(pending.as_ref())));
        // Internal only: the caller sees the same page whatever the reason.
        event.details = serde_json::json!({ "reason": "credentials" });
        audit_sign_in(&state, pending.as_ref(), &event).await?;
        // 200, not 401: a 401 would need a WWW-Authenticate challenge this form is not.
        return page(&state, &session, lang.text(), pending.as_ref(), email, true, StatusCode::OK).await;
    };

    let mut tx = state.db.user(user.id).await?;
    let mfa = db::mfa::state(&mut tx, user.id).await?.ok_or(AppError::NotFound)?;
    let mut second_factor = security::needs_second_factor(&mut tx, user.id, &mfa).await?;
    let locale = db::users::profile(&mut tx, user.id).await?.and_then(|p| p.locale);
    tx.commit().await?;
    // The next pages speak the user's language, unless the request asked for one.
    session::language::from_account(&session, locale.as_deref(), false).await?;
    if let Some(p) = &pending {
        second_factor |= p.mfa_required || client_requires_mfa(&state, p).await?;
    }
    if second_factor {
        // The password was right; the second step decides. Nothing is signed in yet.
        metrics::sign_in("password", "second_factor");
        let pre = session::PreAuth {
            user_id: user.id,
            stamp: user.security_stamp,
            email: email.to_owned(),
            at: chrono::Utc::now().timestamp(),
        };
        session::set_pre_auth(&session, &pre).await?;
        let req = pending.as_ref().map(|p| format!("?req={}", p.id)).unwrap_or_default();
        let step = if mfa.has_second_factor() { "/login/mfa" } else { "/mfa/enrol" };
        return Ok(Redirect::to(&format!("{step}{req}")).into_response());
    }
    throttle::succeeded(&state.db, &attempt).await?;
    let event = meta.event(
        "login.success",
        "success",
        ("user", Some(user.id.to_string())),
        ("client", client_of(pending.as_ref())),
    );
    audit_sign_in(&state, pending.as_ref(), &event).await?;
    let signed_in = finish_sign_in(&session, &meta, (user.id, user.security_stamp), &["pwd"], pending).await?;
    metrics::sign_in("password", "success");
    Ok(signed_in)
}

/// The client of a sign-in, for audit rows ("" on a sign-in straight at the login page).
pub fn client_of(pending: Option<&Pending>) -> String {
    pending.map(|p| p.client_id.clone()).unwrap_or_default()
}

/// Whether the client of the request requires MFA. (A tenant's policy applies to the tenant
/// the tokens will be for, which a multi-tenant client's user chooses later: the
/// authorization endpoint steps up then.)
async fn client_requires_mfa(state: &AppState, p: &Pending) -> Result<bool, AppError> {
    Ok(crate::clients::find(&state.db, &p.client_id).await?.is_some_and(|c| c.require_mfa))
}

/// Whether the login page offers signing in with a passkey alone: the issuer can have
/// passkeys, and the tenant of the sign-in ([`sign_in_tenant`]) turned it on
/// (`tenant passkey-sign-in`).
pub async fn passkey_sign_in_offered(state: &AppState, pending: Option<&Pending>) -> Result<bool, AppError> {
    if state.passkeys.is_none() {
        return Ok(false);
    }
    let Some(tenant) = sign_in_tenant(state, pending).await? else { return Ok(false) };
    let mut tx = state.db.tenant(tenant).await?;
    let offered = db::tenants::passkey_sign_in(&mut tx).await?;
    tx.commit().await?;
    Ok(offered)
}

/// The tenant whose chain records a sign-in: the tenant of the client being signed in to, or
/// the platform tenant's for a sign-in straight at the login page.
pub async fn sign_in_tenant(state: &AppState, pending: Option<&Pending>) -> Result<Option<Uuid>, AppError> {
    match pending {
        Some(p) => Ok(Some(p.client_tenant)),
        None => {
            let mut tx = state.db.unscoped().await?;
            let platform = db::tenants::platform(&mut tx).await?;
            tx.commit().await?;
            Ok(platform)
        }
    }
}

/// Writes a sign-in event in the chain of [`sign_in_tenant`].
pub async fn audit_sign_in(
    state: &AppState,
    pending: Option<&Pending>,
    event: &audit::Event<'_>,
) -> Result<(), AppError> {
    if let Some(tenant) = sign_in_tenant(state, pending).await? {
        let mut tx = state.db.tenant(tenant).await?;
        audit::append(&mut tx, event).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Audits the locks a failure caused.
pub async fn record_lockouts(
    state: &AppState,
    pending: Option<&Pending>,
    meta: &RequestMeta,
    user_id: Option<Uuid>,
    email: &str,
    failure: throttle::Failure,
) -> Result<(), AppError> {
    if failure.locked_account {
        metrics::lockout("account");
        let mut event = meta.event(
            "login.lockout",
            "failure",
            ("user", user_id.map(|u| u.to_string())),
            ("account", email.to_lowercase()),
        );
        event.details =
            serde_json::json!({ "failures": failure.failures, "seconds": state.config.throttle.account.lock_seconds });
        audit_sign_in(state, pending, &event).await?;
    }
    if failure.locked_ip {
        metrics::lockout("ip");
        // What is locked: the address, or the IPv6 /64 it is in.
        let ip = meta.ip.map(throttle::ip_key).unwrap_or_default();
        let mut event = meta.event("login.ip_lockout", "failure", ("system", None), ("ip", ip));
        event.details = serde_json::json!({ "seconds": state.config.throttle.ip.lock_seconds });
        audit_sign_in(state, pending, &event).await?;
    }
    Ok(())
}

/// Signs the user in (a new session id) and goes on: to the authorization request, to the
/// page that sent them here, or home.
pub async fn finish_sign_in(
    session: &Session,
    meta: &RequestMeta,
    user: (Uuid, Uuid),
    amr: &[&str],
    pending: Option<Pending>,
) -> Result<Response, AppError> {
    Ok(Redirect::to(&sign_in(session, meta, user, amr, pending).await?).into_response())
}

/// Signs the user (id, security stamp at the password check) in, under a new session id, and
/// returns where to go next.
pub async fn sign_in(
    session: &Session,
    meta: &RequestMeta,
    (user_id, stamp): (Uuid, Uuid),
    amr: &[&str],
    pending: Option<Pending>,
) -> Result<String, AppError> {
    // A code, or a passkey (hardware- or software-secured key).
    let mfa = amr.iter().any(|m| matches!(*m, "otp" | "hwk" | "swk"));
    let who = SignedIn {
        user_id,
        stamp,
        auth_time: chrono::Utc::now().timestamp(),
        amr: amr.iter().map(|s| (*s).to_owned()).collect(),
        acr: if mfa { ACR_MFA } else { ACR_PASSWORD }.into(),
        sid: Secret::generate().expose().to_owned(),
        ip: meta.ip.map(|ip| ip.to_string()),
        user_agent: meta.user_agent.clone(),
    };
    session::sign_in(session, &who).await?;
    next_after_sign_in(session, pending).await
}

/// Where a completed sign-in goes next.
pub async fn next_after_sign_in(session: &Session, pending: Option<Pending>) -> Result<String, AppError> {
    match pending {
        Some(mut p) => {
            p.logged_in = true;
            // A new sign-in may be another person: choose the tenant again.
            p.tenant = None;
            session::save_pending(session, &p).await?;
            Ok(format!("/authorize/continue?req={}", p.id))
        }
        None => Ok(session::take_return_to(session).await?.unwrap_or_else(|| "/".into())),
    }
}

#[cfg(test)]
mod redaction {
    /// A logged `LoginForm` shows no password.
    #[test]
    fn debug_shows_no_secret() {
        crate::secrets::assert_debug_redacts::<super::LoginForm>(
            "csrf=x&req=&email=a%40b.c&password=pa55-s3cret",
            &["pa55-s3cret"],
        );
    }
}
