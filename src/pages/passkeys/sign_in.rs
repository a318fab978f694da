//! Signing in with a passkey: alone from the login page, where the tenant offers it
//! (`/login/passkey/begin`), or as the second factor after the password, or to step up
//! (`/login/mfa/passkey/begin`); both finish at `/login/passkey/finish`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;
use webauthn_rs::prelude::PublicKeyCredential;

use super::{Begin, next, problem, relying_party};
use crate::db::{self, audit};
use crate::error::AppError;
use crate::identity::passkeys::{Ceremony, Refused};
use crate::identity::throttle;
use crate::pages::login::{client_of, passkey_sign_in_offered, sign_in, sign_in_tenant};
use crate::pages::mfa::{Actor, actor, pending_of, req_query};
use crate::protocol::meta::{RequestMeta, rate_limit};
use crate::session::{self, PageLang, SessionJson};
use crate::state::AppState;
use crate::telemetry::metrics;
use crate::vocabulary::UserStatus;

/// `POST /login/passkey/begin`: a sign-in with any passkey of this site, no email typed.
pub async fn begin_passwordless(
    State(state): State<AppState>,
    session: Session,
    lang: PageLang,
    meta: RequestMeta,
    SessionJson(body): SessionJson<Begin>,
) -> Result<Response, AppError> {
    let rp = relying_party(&state)?;
    // Each ceremony may write a failure to an audit chain: a bounded number per client IP.
    if let Some(ip) = meta.ip {
        let key = crate::secrets::sha256(format!("passkey_sign_in-ip:{}", throttle::ip_key(ip)).as_bytes());
        rate_limit(&state, &key, state.config.rate_limits.device_per_ip).await?;
    }
    let pending = pending_of(&session, Some(&body.req)).await?;
    if !passkey_sign_in_offered(&state, pending.as_ref()).await? {
        return Ok(problem(lang.text().passkey_not_offered));
    }
    let (options, ceremony) = rp.begin_passwordless(&body.req).map_err(AppError::Internal)?;
    session::set_passkey_sign_in(&session, &ceremony).await?;
    Ok(Json(options).into_response())
}

/// `POST /login/mfa/passkey/begin`: the second step of a sign-in halfway, or a signed-in
/// user's step-up, with one of their passkeys.
pub async fn begin_second_factor(
    State(state): State<AppState>,
    session: Session,
    lang: PageLang,
    SessionJson(body): SessionJson<Begin>,
) -> Result<Response, AppError> {
    let rp = relying_party(&state)?;
    let Some(actor) = actor(&session).await? else { return Ok(next(&format!("/login{}", req_query(Some(&body.req))))) };
    let user_id = actor.user_id();
    let mut tx = state.db.user(user_id).await?;
    let keys = db::passkeys::credentials(&mut tx, user_id).await?;
    tx.commit().await?;
    if keys.is_empty() {
        return Ok(problem(lang.text().passkey_failed));
    }
    let (options, ceremony) = rp.begin_second_factor(user_id, &keys).map_err(AppError::Internal)?;
    session::set_passkey_sign_in(&session, &ceremony).await?;
    Ok(Json(options).into_response())
}

/// The body of `/login/passkey/finish`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finish {
    csrf: String,
    #[serde(default)]
    req: String,
    credential: PublicKeyCredential,
}

crate::session::csrf_field!(Finish);

/// `POST /login/passkey/finish`: the authenticator's answer, taken once. A passkey alone signs
/// in with `amr` `hwk`/`swk`, `user` and `mfa`; after the password, `pwd` and `hwk`/`swk`,
/// `user`. Either is a second-factor sign-in (`acr` MFA) for every rule that asks for one.
pub async fn finish(
    State(state): State<AppState>,
    session: Session,
    lang: PageLang,
    meta: RequestMeta,
    SessionJson(body): SessionJson<Finish>,
) -> Result<Response, AppError> {
    let rp = relying_party(&state)?;
    let t = lang.text();
    let pending = pending_of(&session, Some(&body.req)).await?;
    let Some(ceremony) = session::take_passkey_sign_in(&session).await? else { return Ok(problem(t.passkey_expired)) };
    let claimed = ceremony.user(&body.credential);
    // A second factor answers for the sign-in that asked for it, and no other.
    let actor = match &ceremony {
        // For the request whose tenant offered it (the tenant chain its audit rows go to).
        Ceremony::Passwordless { req, .. } if *req != body.req => return Ok(problem(t.passkey_expired)),
        Ceremony::Passwordless { .. } => None,
        Ceremony::SecondFactor { .. } => match actor(&session).await? {
            Some(actor) if Some(actor.user_id()) == claimed => Some(actor),
            _ => return Ok(problem(t.passkey_expired)),
        },
    };
    let passwordless = actor.is_none();
    let client = ("client", client_of(pending.as_ref()));
    let audit_tenant = sign_in_tenant(&state, pending.as_ref()).await?;
    let failure = |why: &'static str| {
        // A passkey alone names its user unverified: the claim goes in the details only.
        let (actor, details) = if passwordless {
            let claimed = claimed.map(|u| u.to_string());
            (None, serde_json::json!({ "method": "passkey", "reason": why, "claimed_user": claimed }))
        } else {
            (claimed.map(|u| u.to_string()), serde_json::json!({ "method": "passkey", "reason": why }))
        };
        let action = if passwordless { "login.failure" } else { "mfa.failure" };
        let mut event = meta.event(action, "failure", ("user", actor), client.clone());
        event.details = details;
        event
    };
    let Some(user_id) = claimed else {
        // No user handle: not a passkey registered here.
        if let Some(tenant) = audit_tenant {
            let mut tx = state.db.tenant(tenant).await?;
            audit::append(&mut tx, &failure("no_user_handle")).await?;
            tx.commit().await?;
        }
        metrics::sign_in("passkey", "failure");
        return Ok(problem(t.passkey_failed));
    };

    let mut tx = state.db.user(user_id).await?;
    let st = db::mfa::state(&mut tx, user_id).await?;
    let stored = db::passkeys::by_credential_id(&mut tx, user_id, &body.credential.raw_id).await?;
    let verdict = match (st, stored) {
        (Some(st), Some(stored)) if st.status == UserStatus::Active => {
            rp.finish_sign_in(ceremony, &body.credential, &stored).map(|verified| (st, stored.id, verified))
        }
        (Some(_), Some(_)) => Err(Refused("disabled")),
        _ => Err(Refused("unknown_credential")),
    };
    let user = ("user", Some(user_id.to_string()));
    let mut events = Vec::new();
    match &verdict {
        Ok((_, id, verified)) => {
            // The counter and last use move with the sign-in, in one transaction.
            db::passkeys::used(&mut tx, *id, &verified.credential).await?;
            if !passwordless {
                let mut event = meta.event("mfa.verify", "success", user.clone(), client.clone());
                event.details = serde_json::json!({ "method": "passkey", "passkey": id });
                events.push(event);
            }
            let mut event = meta.event("login.success", "success", user.clone(), client.clone());
            event.details = serde_json::json!({ "method": "passkey", "passkey": id });
            events.push(event);
        }
        Err(Refused(why)) => events.push(failure(why)),
    }
    if let Some(tenant) = audit_tenant {
        tx.switch_tenant(tenant).await?;
        for event in &events {
            audit::append(&mut tx, event).await?;
        }
    }
    tx.commit().await?;

    let Ok((st, _, verified)) = verdict else {
        metrics::sign_in("passkey", "failure");
        return Ok(problem(t.passkey_failed));
    };
    let (stamp, with_password) = match &actor {
        Some(Actor::Half(pre)) => {
            throttle::succeeded(&state.db, &throttle::Attempt::new(&pre.email, meta.ip)).await?;
            (pre.stamp, true)
        }
        Some(Actor::Signed(who)) => (who.stamp, who.amr.iter().any(|m| m == "pwd")),
        None => (st.security_stamp, false),
    };
    let mut amr = if with_password { vec!["pwd"] } else { Vec::new() };
    amr.extend(verified.amr.iter().copied());
    // Without a password, the passkey (with its user verification) was both factors.
    if !with_password && !amr.contains(&"mfa") {
        amr.push("mfa");
    }
    let to = sign_in(&session, &meta, (user_id, stamp), &amr, pending).await?;
    metrics::sign_in("passkey", "success");
    Ok(next(&to))
}
