//! Registering a passkey (`/account/passkeys/begin`, `/account/passkeys/finish`) and removing
//! one (`/account/passkeys/remove`).
//!
//! Who may register: a user who signed in in the last ten minutes (with a second factor, if
//! they have one), as for replacing TOTP (`pages::mfa::enrol`), so a stolen old session
//! cannot leave a passkey of its own behind; or a sign-in halfway that must enrol a second
//! factor (the passkey then takes TOTP's place and completes the sign-in). Removing one needs
//! the same recent sign-in.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;
use webauthn_rs::prelude::RegisterPublicKeyCredential;

use super::{Begin, next, problem, relying_party};
use crate::db;
use crate::error::AppError;
use crate::identity::passkeys::{Refused, name_problem};
use crate::identity::{security, throttle};
use crate::notify::account_notice_mail;
use crate::pages::account::{AccountUser, notice_page};
use crate::pages::login::{audit_sign_in, client_of, next_after_sign_in, sign_in};
use crate::pages::mfa::enrol::REENROL_SECONDS;
use crate::pages::mfa::{Actor, actor, pending_of, req_query};
use crate::protocol::meta::RequestMeta;
use crate::session::{self, ACR_MFA, PageLang, SessionForm, SessionJson, SignedIn};
use crate::state::AppState;
use crate::telemetry::metrics;
use crate::vocabulary::UserStatus;

/// `POST /account/passkeys/begin`: the options for `navigator.credentials.create`.
pub async fn begin(
    State(state): State<AppState>,
    session: Session,
    lang: PageLang,
    SessionJson(body): SessionJson<Begin>,
) -> Result<Response, AppError> {
    let rp = relying_party(&state)?;
    let Some(actor) = actor(&session).await? else { return Ok(next(&format!("/login{}", req_query(Some(&body.req))))) };
    if name_problem(&body.name).is_some() {
        return Ok(problem(lang.text().passkey_name_invalid));
    }
    let user_id = actor.user_id();
    let mut tx = state.db.user(user_id).await?;
    let st = db::mfa::state(&mut tx, user_id).await?.ok_or(AppError::NotFound)?;
    let existing = db::passkeys::credentials(&mut tx, user_id).await?;
    tx.commit().await?;
    if let Some(elsewhere) = gate(&session, &actor, &st, &body.req).await? {
        return Ok(next(&elsewhere));
    }
    let (options, registration) = rp.begin_registration(user_id, &st.email, &existing).map_err(AppError::Internal)?;
    session::set_passkey_registration(&session, &registration).await?;
    Ok(Json(options).into_response())
}

/// Where the actor must go before registering, or `None`: go ahead.
async fn gate(session: &Session, actor: &Actor, st: &db::mfa::MfaState, req: &str) -> Result<Option<String>, AppError> {
    match actor {
        Actor::Half(_) if !st.has_second_factor() => Ok(None),
        Actor::Half(_) => Ok(Some(format!("/login/mfa{}", req_query(Some(req))))),
        Actor::Signed(who) if recent(who) && (who.has_mfa() || !st.has_second_factor()) => Ok(None),
        Actor::Signed(_) => {
            session::set_return_to(session, "/account").await?;
            // The second factor again, or (without one) the password.
            Ok(Some(if st.has_second_factor() { "/login/mfa" } else { "/login" }.to_owned()))
        }
    }
}

/// Whether the sign-in is recent enough to change the account's passkeys.
fn recent(who: &SignedIn) -> bool {
    chrono::Utc::now().timestamp() - who.auth_time < REENROL_SECONDS
}

/// The body of `/account/passkeys/finish`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finish {
    csrf: String,
    #[serde(default)]
    req: String,
    name: String,
    credential: RegisterPublicKeyCredential,
}

crate::session::csrf_field!(Finish);

/// `POST /account/passkeys/finish`: the authenticator's answer. A first second factor ends the
/// user's other sessions (they never passed it), and counts for this one.
pub async fn finish(
    State(state): State<AppState>,
    session: Session,
    lang: PageLang,
    meta: RequestMeta,
    SessionJson(body): SessionJson<Finish>,
) -> Result<Response, AppError> {
    let rp = relying_party(&state)?;
    let t = lang.text();
    let Some(actor) = actor(&session).await? else { return Ok(next(&format!("/login{}", req_query(Some(&body.req))))) };
    let user_id = actor.user_id();
    let name = body.name.trim();
    if name_problem(name).is_some() {
        return Ok(problem(t.passkey_name_invalid));
    }
    let Some(registration) = session::take_passkey_registration(&session).await?.filter(|r| r.user_id == user_id)
    else {
        return Ok(problem(t.passkey_expired));
    };
    let pending = pending_of(&session, Some(&body.req)).await?;
    let user = ("user", Some(user_id.to_string()));
    let mut tx = state.db.user(user_id).await?;
    let new = match rp.finish_registration(&registration, &body.credential) {
        Ok(new) => new,
        Err(Refused(why)) => {
            let mut event = meta.event("passkey.register", "failure", user, ("user", user_id.to_string()));
            event.details = serde_json::json!({ "reason": why });
            security::append_for_user(&mut tx, user_id, &event).await?;
            tx.commit().await?;
            return Ok(problem(t.passkey_failed));
        }
    };
    let st = db::mfa::state(&mut tx, user_id).await?.ok_or(AppError::NotFound)?;
    // Disabled since the ceremony began: nothing is added, nobody is signed in.
    if st.status != UserStatus::Active {
        tx.commit().await?;
        return Ok(problem(t.passkey_failed));
    }
    // Again, in the transaction that adds it: a factor may have come since the ceremony began.
    if let Some(elsewhere) = gate(&session, &actor, &st, &body.req).await? {
        tx.commit().await?;
        return Ok(next(&elsewhere));
    }
    let id = Uuid::now_v7();
    if !db::passkeys::add(&mut tx, user_id, id, &new.credential_id, name, &new.credential).await? {
        // Registered already: to this user, or to another account (worth a row).
        let mut event = meta.event("passkey.register", "failure", user, ("user", user_id.to_string()));
        event.details = serde_json::json!({ "reason": "credential_registered" });
        security::append_for_user(&mut tx, user_id, &event).await?;
        tx.commit().await?;
        return Ok(problem(t.passkey_duplicate));
    }
    let first = !st.has_second_factor();
    let ended = if first {
        db::mfa::enrolled(&mut tx, user_id).await?;
        let keep = session::current_handle(&session);
        db::browser_sessions::end_for_user(&mut tx, user_id, keep.as_ref().map(|k| k.as_slice())).await?
    } else {
        0
    };
    let mut event = meta.event("passkey.registered", "success", user.clone(), ("passkey", id.to_string()));
    event.details = serde_json::json!({ "passkey": id, "name": name, "first_factor": first, "sessions_ended": ended });
    security::append_for_user(&mut tx, user_id, &event).await?;
    tx.commit().await?;
    // The owner hears of it, whoever added it (a stolen session would).
    let lang = lang.0;
    let what = format!("{} {name}", t.mail_passkey_added_body);
    state.mailer.send_later(account_notice_mail(lang, &st.email, meta.ip, t.mail_passkey_added_subject, &what));

    let mut amr = vec!["pwd"];
    amr.extend(new.amr);
    let to = match actor {
        Actor::Half(pre) => {
            throttle::succeeded(&state.db, &throttle::Attempt::new(&pre.email, meta.ip)).await?;
            let login = meta.event("login.success", "success", user, ("client", client_of(pending.as_ref())));
            audit_sign_in(&state, pending.as_ref(), &login).await?;
            metrics::sign_in("passkey", "success");
            sign_in(&session, &meta, (user_id, pre.stamp), &amr, pending).await?
        }
        Actor::Signed(mut who) => {
            // Registering proved the new factor: this session now counts as MFA.
            if !who.has_mfa() {
                who.amr = amr.iter().map(|m| (*m).to_owned()).collect();
                who.acr = ACR_MFA.into();
                session::sign_in(&session, &who).await?;
            }
            match pending {
                Some(p) => next_after_sign_in(&session, Some(p)).await?,
                None => "/account".to_owned(),
            }
        }
    };
    Ok(next(&to))
}

#[derive(Debug, Deserialize)]
pub struct RemoveForm {
    csrf: String,
    passkey: Uuid,
}

crate::session::csrf_field!(RemoveForm);

/// `POST /account/passkeys/remove`: removes one of the user's passkeys, audited
/// `passkey.removed`. Another user's passkey is a 404 like a missing one.
pub async fn remove(
    State(state): State<AppState>,
    session: Session,
    PageLang(lang): PageLang,
    meta: RequestMeta,
    AccountUser(who): AccountUser,
    SessionForm(form): SessionForm<RemoveForm>,
) -> Result<Response, AppError> {
    if !recent(&who) {
        session::set_return_to(&session, "/account").await?;
        return Ok(Redirect::to("/login/mfa").into_response());
    }
    let mut tx = state.db.user(who.user_id).await?;
    let Some(name) = db::passkeys::remove(&mut tx, who.user_id, form.passkey).await? else {
        return Err(AppError::NotFound);
    };
    let mut event = meta.event(
        "passkey.removed",
        "success",
        ("user", Some(who.user_id.to_string())),
        ("passkey", form.passkey.to_string()),
    );
    event.details = serde_json::json!({ "passkey": form.passkey, "name": name });
    security::append_for_user(&mut tx, who.user_id, &event).await?;
    let email = db::mfa::state(&mut tx, who.user_id).await?.map(|st| st.email).unwrap_or_default();
    tx.commit().await?;
    let t = lang.text();
    let what = format!("{} {name}", t.mail_passkey_removed_body);
    state.mailer.send_later(account_notice_mail(lang, &email, meta.ip, t.mail_passkey_removed_subject, &what));
    notice_page(&state, &session, lang, &who, lang.text().passkey_removed).await
}
