//! The second factor at sign-in (`/login/mfa`): a TOTP or backup code, for a sign-in
//! halfway or a signed-in user stepping up; the page offers the user's passkeys too
//! (`pages::passkeys::sign_in`).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;
use uuid::Uuid;

use crate::db::{self, audit};
use crate::error::AppError;
use crate::extract::Query;
use crate::html::text::{EN, Text};
use crate::identity::{mfa, throttle};
use crate::pages::login::{client_of, record_lockouts, sign_in, sign_in_tenant};
use crate::protocol::meta::RequestMeta;
use crate::render::render;
use crate::secrets::ExposeSecret;
use crate::session::{self, PageLang, Pending, SessionForm};
use crate::state::AppState;
use crate::telemetry::metrics;

use super::{Actor, CodeForm, NoticePage, ReqQuery, actor, email_of, form_targets, pending_of, to_login};

#[derive(Template)]
#[template(path = "mfa.html")]
struct MfaPage<'a> {
    t: &'static Text,
    csrf: &'a str,
    req: &'a str,
    failed: bool,
    /// Which second factors the user has: the code form, the passkey button.
    totp: bool,
    passkey: bool,
}

/// `GET /login/mfa`: the code form. A signed-in user stepping up gets it too.
pub async fn show(
    State(state): State<AppState>,
    session: Session,
    lang: PageLang,
    Query(q): Query<ReqQuery>,
) -> Result<Response, AppError> {
    let Some(actor) = actor(&session).await? else { return Ok(to_login(q.req.as_deref())) };
    let factors = factors(&state, actor.user_id()).await?;
    if factors == Factors::default() {
        return Ok(Redirect::to(&format!("/mfa/enrol{}", super::req_query(q.req.as_deref()))).into_response());
    }
    let pending = pending_of(&session, q.req.as_deref()).await?;
    code_page(&session, lang.text(), pending.as_ref(), factors, false).await
}

/// The second factors a user has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Factors {
    totp: bool,
    /// Passkeys, where the issuer can have them.
    passkey: bool,
}

async fn factors(state: &AppState, user_id: Uuid) -> Result<Factors, AppError> {
    let mut tx = state.db.user(user_id).await?;
    let st = db::mfa::state(&mut tx, user_id).await?;
    tx.commit().await?;
    Ok(st.map_or_else(Factors::default, |st| Factors {
        totp: st.has_totp(),
        passkey: st.passkeys > 0 && state.passkeys.is_some(),
    }))
}

async fn code_page(
    session: &Session,
    t: &'static Text,
    pending: Option<&Pending>,
    factors: Factors,
    failed: bool,
) -> Result<Response, AppError> {
    let csrf = session::csrf_token(session).await?;
    let req = pending.map(|p| p.id.as_str()).unwrap_or("");
    let page = MfaPage { t, csrf: &csrf, req, failed, totp: factors.totp, passkey: factors.passkey };
    Ok(render(StatusCode::OK, &page, &form_targets(pending)))
}

/// `POST /login/mfa`: a TOTP code (accepted once: its time step must be later than the last
/// one used) or a backup code (single use). Failures count towards the account's lock.
pub async fn submit(
    State(state): State<AppState>,
    session: Session,
    lang: PageLang,
    meta: RequestMeta,
    SessionForm(form): SessionForm<CodeForm>,
) -> Result<Response, AppError> {
    let Some(actor) = actor(&session).await? else { return Ok(to_login(Some(&form.req))) };
    let pending = pending_of(&session, Some(&form.req)).await?;
    let user_id = actor.user_id();
    let email = match &actor {
        Actor::Half(p) => p.email.clone(),
        Actor::Signed(_) => email_of(&state, user_id).await?,
    };
    let attempt = throttle::Attempt::new(&email, meta.ip);
    let reserved = throttle::reserve(&state.db, &state.config.throttle, &attempt).await?;
    let may_try = reserved.is_some();

    let user = ("user", Some(user_id.to_string()));
    let client = ("client", client_of(pending.as_ref()));
    let audit_tenant = sign_in_tenant(&state, pending.as_ref()).await?;
    let mut tx = state.db.user(user_id).await?;
    let verdict =
        if may_try { check(&state, &mut tx, user_id, form.code.expose_secret()).await? } else { Verdict::Refused };
    // The verdict's events commit with the code's use (a used backup code is never unrecorded).
    let mut events = Vec::new();
    match verdict {
        Verdict::Totp | Verdict::Backup(_) => {
            let mut event = meta.event("mfa.verify", "success", user.clone(), client.clone());
            let method = if matches!(verdict, Verdict::Totp) { "totp" } else { "backup_code" };
            event.details = serde_json::json!({ "method": method });
            events.push(event);
            if let Verdict::Backup(left) = verdict {
                let mut event = meta.event("mfa.backup_code_used", "success", user.clone(), client.clone());
                event.details = serde_json::json!({ "remaining": left });
                events.push(event);
            }
            events.push(meta.event("login.success", "success", user.clone(), client.clone()));
        }
        Verdict::Wrong(reason) => {
            let mut event = meta.event("mfa.failure", "failure", user.clone(), client.clone());
            event.details = serde_json::json!({ "reason": reason });
            events.push(event);
        }
        Verdict::Refused => {
            let mut event = meta.event("mfa.failure", "failure", user.clone(), client.clone());
            event.details = serde_json::json!({ "reason": "throttled" });
            events.push(event);
        }
    }
    if let Some(tenant) = audit_tenant {
        tx.switch_tenant(tenant).await?;
        for event in &events {
            audit::append(&mut tx, event).await?;
        }
    }
    tx.commit().await?;

    match verdict {
        Verdict::Totp | Verdict::Backup(_) => {
            throttle::succeeded(&state.db, &attempt).await?;
            let next = sign_in(&session, &meta, actor.identity(), &["pwd", "otp"], pending).await?;
            metrics::sign_in("mfa", "success");
            match verdict {
                // Say how many backup codes are left before going on.
                Verdict::Backup(left) => {
                    let t = lang.text();
                    let body = format!("{} {left}", t.backup_used);
                    Ok(render(
                        StatusCode::OK,
                        &NoticePage { t, title: t.mfa_title, body: &body, code: None, next: Some(&next) },
                        &[],
                    ))
                }
                _ => Ok(Redirect::to(&next).into_response()),
            }
        }
        Verdict::Wrong(_) | Verdict::Refused => {
            metrics::sign_in("mfa", if matches!(verdict, Verdict::Refused) { "throttled" } else { "failure" });
            if let Some(reserved) = reserved {
                let failure = throttle::failed(&state.db, &state.config.throttle, &attempt, reserved).await?;
                record_lockouts(&state, pending.as_ref(), &meta, Some(user_id), &email, failure).await?;
            }
            let factors = factors(&state, user_id).await?;
            code_page(&session, lang.text(), pending.as_ref(), factors, true).await
        }
    }
}

/// What a presented code turned out to be.
#[derive(Debug, Clone, Copy)]
enum Verdict {
    Totp,
    /// A backup code, with the number left.
    Backup(i64),
    /// Not accepted, and why (for the audit row only).
    Wrong(&'static str),
    /// Not looked at: the account or IP must wait or is locked.
    Refused,
}

/// Checks a code against the user's TOTP secret, else their backup codes.
async fn check(state: &AppState, tx: &mut db::Tx, user_id: Uuid, code: &str) -> Result<Verdict, AppError> {
    let Some(st) = db::mfa::state(tx, user_id).await? else { return Ok(Verdict::Wrong("no_user")) };
    // Disabled since the password step: the sign-in does not complete.
    if st.status != crate::vocabulary::UserStatus::Active {
        return Ok(Verdict::Wrong("disabled"));
    }
    let Some(sealed) = &st.totp_secret else { return Ok(Verdict::Wrong("no_totp")) };
    if code.len() > 64 {
        return Ok(Verdict::Wrong("malformed"));
    }
    if let Some(hash) = mfa::backup_code_hash(code) {
        return Ok(match db::mfa::use_backup_code(tx, user_id, &hash).await? {
            Some(left) => Verdict::Backup(left),
            None => Verdict::Wrong("backup_code"),
        });
    }
    let secret = mfa::open_secret(&state.master_key, user_id, sealed).map_err(AppError::Internal)?;
    let totp = mfa::totp(&secret, EN.product, &st.email).map_err(AppError::Internal)?;
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    let Some(step) = mfa::check_code(&totp, code, now) else { return Ok(Verdict::Wrong("totp")) };
    // Accepted once: a replay of this code (or an older one) fails here.
    if db::mfa::accept_step(tx, user_id, i64::try_from(step).unwrap_or(i64::MAX)).await? {
        Ok(Verdict::Totp)
    } else {
        Ok(Verdict::Wrong("totp_replayed"))
    }
}
