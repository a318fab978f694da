//! TOTP enrolment (`/mfa/enrol`), also where a user whose account needs MFA lands before
//! anything is issued to them.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use crate::db;
use crate::error::AppError;
use crate::extract::Query;
use crate::html::text::{EN, Text};
use crate::identity::{mfa, security, throttle};
use crate::pages::login::{audit_sign_in, client_of, next_after_sign_in, sign_in};
use crate::protocol::meta::RequestMeta;
use crate::render::render;
use crate::secrets::ExposeSecret;
use crate::session::{self, PageLang, Pending, SessionForm};
use crate::state::AppState;
use crate::telemetry::metrics;

use super::backup_codes::backup_codes_page;
use super::{Actor, CodeForm, ReqQuery, actor, form_targets, pending_of, to_login};

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
    /// Whether a passkey is offered in TOTP's place (not on an IP-address issuer).
    passkey: bool,
}

/// `GET /mfa/enrol`: a fresh secret (sealed into the user's row as *pending*), its QR code and
/// its text form. For a signed-in user who has TOTP already, replacing it needs a session that
/// passed it.
pub async fn enrol_show(
    State(state): State<AppState>,
    session: Session,
    lang: PageLang,
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
    let required = matches!(actor, Actor::Half(_));
    let passkey = state.passkeys.is_some();
    let shown = Shown { required, failed: false, passkey };
    enrol_page(&session, lang.text(), pending.as_ref(), &st.email, &secret, shown).await
}

/// Who may enrol now. A half sign-in of a user who has a second factor (TOTP or a passkey)
/// must pass it (it cannot replace it); replacing an authenticator needs a session that passed the current one in the last ten
/// minutes (else it steps up first and comes back). `None`: go ahead.
async fn enrol_gate(
    session: &Session,
    actor: &Actor,
    st: &db::mfa::MfaState,
    req: Option<&str>,
) -> Result<Option<Response>, AppError> {
    if !st.has_second_factor() {
        return Ok(None);
    }
    match actor {
        Actor::Half(_) => Ok(Some(Redirect::to(&format!("/login/mfa{}", super::req_query(req))).into_response())),
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
pub(crate) const REENROL_SECONDS: i64 = 600;

/// What the enrolment page says besides the secret.
#[derive(Debug, Clone, Copy)]
struct Shown {
    /// The sign-in cannot go on without a second factor.
    required: bool,
    /// The code just tried was wrong.
    failed: bool,
    /// A passkey is offered in TOTP's place.
    passkey: bool,
}

async fn enrol_page(
    session: &Session,
    t: &'static Text,
    pending: Option<&Pending>,
    email: &str,
    secret: &[u8],
    Shown { required, failed, passkey }: Shown,
) -> Result<Response, AppError> {
    let totp = mfa::totp(secret, EN.product, email).map_err(AppError::Internal)?;
    let qr = mfa::qr_svg(&totp).map_err(AppError::Internal)?;
    let csrf = session::csrf_token(session).await?;
    let req = pending.map(|p| p.id.as_str()).unwrap_or("");
    let display = mfa::secret_for_display(secret);
    let page = EnrolPage { t, csrf: &csrf, req, qr_svg: &qr, secret: &display, required, failed, passkey };
    Ok(render(StatusCode::OK, &page, &form_targets(pending)))
}

/// `POST /mfa/enrol`: the first code makes the pending secret active, and ten backup codes
/// are made and shown once. A half sign-in is then complete, with `amr` `pwd` + `otp`.
pub async fn enrol_submit(
    State(state): State<AppState>,
    session: Session,
    lang: PageLang,
    meta: RequestMeta,
    SessionForm(form): SessionForm<CodeForm>,
) -> Result<Response, AppError> {
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
        metrics::sign_in("mfa", "failure");
        let required = matches!(actor, Actor::Half(_));
        let passkey = state.passkeys.is_some();
        let shown = Shown { required, failed: true, passkey };
        return enrol_page(&session, lang.text(), pending.as_ref(), &st.email, &secret, shown).await;
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
            let next = sign_in(&session, &meta, (user_id, pre.stamp), &["pwd", "otp"], pending).await?;
            // A first enrolment is the second step of this sign-in.
            metrics::sign_in("mfa", "success");
            next
        }
        Actor::Signed(mut who) => {
            // Enrolling proved the new factor: this session now counts as MFA.
            if !who.has_mfa() {
                who.amr = vec!["pwd".into(), "otp".into()];
                who.acr = crate::session::ACR_MFA.into();
                session::sign_in(&session, &who).await?;
            }
            match pending {
                Some(p) => next_after_sign_in(&session, Some(p)).await?,
                None => "/account".to_owned(),
            }
        }
    };
    backup_codes_page(lang.text(), &codes, &next)
}
