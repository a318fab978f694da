//! The second factor at sign-in (`/login/mfa`) and TOTP enrolment (`/mfa/enrol`), which is
//! also where a user whose account needs MFA lands before anything is issued to them.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tower_sessions::Session;
use uuid::Uuid;

use crate::AppState;
use crate::db::{self, audit};
use crate::error::AppError;
use crate::extract::{Form, Query};
use crate::identity::{mfa, security, throttle};
use crate::pages::login::{audit_sign_in, client_of, next_after_sign_in, record_lockouts, sign_in, sign_in_tenant};
use crate::pages::session::{self, Pending, PreAuth};
use crate::pages::{EN, Text, render};
use crate::protocol::authorize::origin_of;
use crate::protocol::meta::RequestMeta;
use crate::secrets::{ExposeSecret, SecretString};

#[derive(Template)]
#[template(path = "mfa.html")]
struct MfaPage<'a> {
    t: &'static Text,
    csrf: &'a str,
    req: &'a str,
    failed: bool,
}

#[derive(Template)]
#[template(path = "enrol.html")]
struct EnrolPage<'a> {
    t: &'static Text,
    csrf: &'a str,
    req: &'a str,
    qr_svg: &'a str,
    secret: &'a str,
    required: bool,
    failed: bool,
}

#[derive(Template)]
#[template(path = "backup_codes.html")]
pub struct BackupCodesPage<'a> {
    pub t: &'static Text,
    pub codes: &'a [String],
    /// The codes as a percent-encoded text file, for the download link.
    pub download: &'a str,
    pub next: &'a str,
}

#[derive(Debug, Deserialize)]
pub struct ReqQuery {
    req: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CodeForm {
    csrf: String,
    #[serde(default)]
    req: String,
    code: SecretString,
}

/// Who the second-factor pages act for: a sign-in halfway (password done), or a signed-in
/// user (stepping up for a request that needs MFA, or enrolling from the account page).
enum Actor {
    Half(PreAuth),
    Signed(session::SignedIn),
}

impl Actor {
    fn user_id(&self) -> Uuid {
        self.identity().0
    }

    /// The user and the security stamp the session holds for them.
    fn identity(&self) -> (Uuid, Uuid) {
        match self {
            Actor::Half(p) => (p.user_id, p.stamp),
            Actor::Signed(s) => (s.user_id, s.stamp),
        }
    }
}

async fn actor(session: &Session) -> Result<Option<Actor>, AppError> {
    if let Some(p) = session::pre_auth(session).await? {
        return Ok(Some(Actor::Half(p)));
    }
    Ok(session::signed_in(session).await?.map(Actor::Signed))
}

async fn pending_of(session: &Session, req: Option<&str>) -> Result<Option<Pending>, AppError> {
    match req.filter(|r| !r.is_empty()) {
        Some(id) => session::pending(session, id).await,
        None => Ok(None),
    }
}

fn form_targets(pending: Option<&Pending>) -> Vec<String> {
    pending.map(|p| vec![origin_of(&p.redirect_uri)]).unwrap_or_default()
}

fn to_login(req: Option<&str>) -> Response {
    match req.filter(|r| !r.is_empty()) {
        Some(r) => Redirect::to(&format!("/login?req={r}")).into_response(),
        None => Redirect::to("/login").into_response(),
    }
}

/// The email a signed-in user's brute-force counter is keyed by.
async fn email_of(state: &AppState, user_id: Uuid) -> Result<String, AppError> {
    let mut tx = state.db.user(user_id).await?;
    let email = db::mfa::state(&mut tx, user_id).await?.map(|s| s.email).unwrap_or_default();
    tx.commit().await?;
    Ok(email)
}

/// `GET /login/mfa`: the code form. A signed-in user stepping up gets it too.
pub async fn show(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<ReqQuery>,
) -> Result<Response, AppError> {
    let Some(actor) = actor(&session).await? else { return Ok(to_login(q.req.as_deref())) };
    let mut tx = state.db.user(actor.user_id()).await?;
    let has_totp = db::mfa::state(&mut tx, actor.user_id()).await?.is_some_and(|s| s.has_totp());
    tx.commit().await?;
    if !has_totp {
        let req = q.req.as_deref().map(|r| format!("?req={r}")).unwrap_or_default();
        return Ok(Redirect::to(&format!("/mfa/enrol{req}")).into_response());
    }
    let pending = pending_of(&session, q.req.as_deref()).await?;
    code_page(&session, pending.as_ref(), false).await
}

async fn code_page(session: &Session, pending: Option<&Pending>, failed: bool) -> Result<Response, AppError> {
    let csrf = session::csrf_token(session).await?;
    let req = pending.map(|p| p.id.as_str()).unwrap_or("");
    Ok(render(StatusCode::OK, &MfaPage { t: &EN, csrf: &csrf, req, failed }, &form_targets(pending)))
}

/// `POST /login/mfa`: a TOTP code (accepted once: its time step must be later than the last
/// one used) or a backup code (single use). Failures count towards the account's lock.
pub async fn submit(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Form(form): Form<CodeForm>,
) -> Result<Response, AppError> {
    session::check_csrf(&session, &form.csrf).await?;
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
            match verdict {
                // Say how many backup codes are left before going on.
                Verdict::Backup(left) => {
                    let body = format!("{} {left}", EN.backup_used);
                    Ok(render(
                        StatusCode::OK,
                        &NoticePage { t: &EN, title: EN.mfa_title, body: &body, code: None, next: Some(&next) },
                        &[],
                    ))
                }
                _ => Ok(Redirect::to(&next).into_response()),
            }
        }
        Verdict::Wrong(_) | Verdict::Refused => {
            if let Some(reserved) = reserved {
                let failure = throttle::failed(&state.db, &state.config.throttle, &attempt, reserved).await?;
                record_lockouts(&state, pending.as_ref(), &meta, Some(user_id), &email, failure).await?;
            }
            code_page(&session, pending.as_ref(), true).await
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
    if st.status != db::enums::UserStatus::Active {
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

#[derive(Template)]
#[template(path = "notice.html")]
pub struct NoticePage<'a> {
    pub t: &'static Text,
    pub title: &'a str,
    pub body: &'a str,
    pub code: Option<&'a str>,
    pub next: Option<&'a str>,
}

/// `GET /mfa/enrol`: a fresh secret (sealed into the user's row as *pending*), its QR code and
/// its text form. For a signed-in user who has TOTP already, replacing it needs a session that
/// passed it.
pub async fn enrol_show(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<ReqQuery>,
) -> Result<Response, AppError> {
    let Some(actor) = actor(&session).await? else {
        session::set_return_to(&session, "/mfa/enrol").await?;
        return Ok(to_login(q.req.as_deref()));
    };
    let user_id = actor.user_id();
    let mut tx = state.db.user(user_id).await?;
    let st = db::mfa::state(&mut tx, user_id).await?.ok_or(AppError::NotFound)?;
    if let Some(elsewhere) = enrol_gate(&session, &actor, &st, q.req.as_deref()).await? {
        tx.commit().await?;
        return Ok(elsewhere);
    }
    let secret = mfa::new_secret();
    let sealed = mfa::seal_secret(&state.master_key, user_id, &secret).map_err(AppError::Internal)?;
    db::mfa::set_pending(&mut tx, user_id, &sealed).await?;
    tx.commit().await?;
    session::set_enrolment(&session, &hex::encode(crate::secrets::sha256(&sealed))).await?;
    let pending = pending_of(&session, q.req.as_deref()).await?;
    enrol_page(&session, pending.as_ref(), &st.email, &secret, matches!(actor, Actor::Half(_)), false).await
}

/// Who may enrol now. A half sign-in of a user who has TOTP must pass it (it cannot replace
/// it); replacing an authenticator needs a session that passed the current one in the last ten
/// minutes (else it steps up first and comes back). `None`: go ahead.
async fn enrol_gate(
    session: &Session,
    actor: &Actor,
    st: &db::mfa::MfaState,
    req: Option<&str>,
) -> Result<Option<Response>, AppError> {
    if !st.has_totp() {
        return Ok(None);
    }
    match actor {
        Actor::Half(_) => {
            let req = req.filter(|r| !r.is_empty()).map(|r| format!("?req={r}")).unwrap_or_default();
            Ok(Some(Redirect::to(&format!("/login/mfa{req}")).into_response()))
        }
        Actor::Signed(who) if who.has_mfa() && chrono::Utc::now().timestamp() - who.auth_time < REENROL_SECONDS => {
            Ok(None)
        }
        Actor::Signed(_) => {
            session::set_return_to(session, "/mfa/enrol").await?;
            Ok(Some(Redirect::to("/login/mfa").into_response()))
        }
    }
}

/// How recent a second-factor sign-in must be to replace the authenticator.
const REENROL_SECONDS: i64 = 600;

async fn enrol_page(
    session: &Session,
    pending: Option<&Pending>,
    email: &str,
    secret: &[u8],
    required: bool,
    failed: bool,
) -> Result<Response, AppError> {
    let totp = mfa::totp(secret, EN.product, email).map_err(AppError::Internal)?;
    let qr = mfa::qr_svg(&totp).map_err(AppError::Internal)?;
    let csrf = session::csrf_token(session).await?;
    let req = pending.map(|p| p.id.as_str()).unwrap_or("");
    let display = mfa::secret_for_display(secret);
    let page = EnrolPage { t: &EN, csrf: &csrf, req, qr_svg: &qr, secret: &display, required, failed };
    Ok(render(StatusCode::OK, &page, &form_targets(pending)))
}

/// `POST /mfa/enrol`: the first code makes the pending secret active, and ten backup codes
/// are made and shown once. A half sign-in is then complete, with `amr` `pwd` + `otp`.
pub async fn enrol_submit(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Form(form): Form<CodeForm>,
) -> Result<Response, AppError> {
    session::check_csrf(&session, &form.csrf).await?;
    let Some(actor) = actor(&session).await? else { return Ok(to_login(Some(&form.req))) };
    let user_id = actor.user_id();
    let pending = pending_of(&session, Some(&form.req)).await?;
    let mut tx = state.db.user(user_id).await?;
    let st = db::mfa::state(&mut tx, user_id).await?.ok_or(AppError::NotFound)?;
    if let Some(elsewhere) = enrol_gate(&session, &actor, &st, Some(&form.req)).await? {
        tx.commit().await?;
        return Ok(elsewhere);
    }
    // Only the secret this session was shown can be activated here (and shown again).
    let marker = session::enrolment(&session).await?;
    let Some(sealed) = st.totp_pending.clone().filter(|sealed| {
        marker
            .as_deref()
            .is_some_and(|m| bool::from(m.as_bytes().ct_eq(hex::encode(crate::secrets::sha256(sealed)).as_bytes())))
    }) else {
        tx.commit().await?;
        return Ok(Redirect::to("/mfa/enrol").into_response());
    };
    let secret = mfa::open_secret(&state.master_key, user_id, &sealed).map_err(AppError::Internal)?;
    let totp = mfa::totp(&secret, EN.product, &st.email).map_err(AppError::Internal)?;
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    let Some(step) = mfa::check_code(&totp, form.code.expose_secret(), now) else {
        tx.commit().await?;
        let event =
            meta.event("mfa.enrol", "failure", ("user", Some(user_id.to_string())), ("user", user_id.to_string()));
        audit_sign_in(&state, pending.as_ref(), &event).await?;
        return enrol_page(&session, pending.as_ref(), &st.email, &secret, matches!(actor, Actor::Half(_)), true).await;
    };
    let codes = mfa::new_backup_codes();
    let hashes: Vec<[u8; 32]> = codes.iter().filter_map(|c| mfa::backup_code_hash(c)).collect();
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    if !db::mfa::activate(&mut tx, user_id, &sealed, step, &hashes).await? {
        // Another enrolment replaced the pending secret meanwhile.
        tx.commit().await?;
        return Ok(Redirect::to("/mfa/enrol").into_response());
    }
    // Sessions that never passed this factor end (the current one goes on).
    let keep = session::current_handle(&session);
    let ended = db::browser_sessions::end_for_user(&mut tx, user_id, keep.as_ref().map(|k| k.as_slice())).await?;
    let mut event =
        meta.event("mfa.enrol", "success", ("user", Some(user_id.to_string())), ("user", user_id.to_string()));
    event.details = serde_json::json!({ "method": "totp", "backup_codes": codes.len(), "sessions_ended": ended });
    security::append_for_user(&mut tx, user_id, &event).await?;
    tx.commit().await?;

    let next = match actor {
        Actor::Half(pre) => {
            throttle::succeeded(&state.db, &throttle::Attempt::new(&pre.email, meta.ip)).await?;
            let login = meta.event(
                "login.success",
                "success",
                ("user", Some(user_id.to_string())),
                ("client", client_of(pending.as_ref())),
            );
            audit_sign_in(&state, pending.as_ref(), &login).await?;
            sign_in(&session, &meta, (user_id, pre.stamp), &["pwd", "otp"], pending).await?
        }
        Actor::Signed(mut who) => {
            // Enrolling proved the new factor: this session now counts as MFA.
            if !who.has_mfa() {
                who.amr = vec!["pwd".into(), "otp".into()];
                who.acr = crate::protocol::discovery::ACR_MFA.into();
                session::sign_in(&session, &who).await?;
            }
            match pending {
                Some(p) => next_after_sign_in(&session, Some(p)).await?,
                None => "/account".to_owned(),
            }
        }
    };
    backup_codes_page(&codes, &next)
}

/// The backup codes, shown once, with a download link of the same text.
pub fn backup_codes_page(codes: &[String], next: &str) -> Result<Response, AppError> {
    let text = codes.join("\n");
    let download: String =
        url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>().replace('+', "%20");
    Ok(render(StatusCode::OK, &BackupCodesPage { t: &EN, codes, download: &download, next }, &[]))
}

#[cfg(test)]
mod redaction {
    /// A logged `CodeForm` shows no secret it carries.
    #[test]
    fn debug_shows_no_secret() {
        crate::secrets::assert_debug_redacts::<super::CodeForm>("csrf=x&req=r&code=123456", &["123456"]);
    }
}
