//! Self-service password reset ("Forgot your password?", ARCHITECTURE.md "Password reset"):
//! a one-time link by mail to the account's address, and the new password it sets.
//!
//! - Asking answers the same, in the same time, whether or not the address has an account:
//!   the caller's page does not wait for any of the work (`pages::reset` runs [`request`] and
//!   the mail after it has answered).
//! - At most [`PER_ACCOUNT_PER_HOUR`] links an hour per account (more asks send nothing),
//!   so the page cannot be used to flood someone's mailbox; the caller bounds asks per IP.
//! - A link works once, for `LCA_PASSWORD_RESET_TTL_SECS`, for an account that is still
//!   active; setting a password bumps the security stamp (every session and token family
//!   ends, and `security::end_sessions_and_families` spends the user's other open links, as it
//!   does for every password change, recovery and "sign out everywhere") and leaves the second
//!   factor as it is: a mailbox alone is not a second factor.
//!   (An administrator's recovery link, `identity::recovery`, resets that too.)
//! - Asked and used links are audited in the user's tenants; unknown addresses write nothing,
//!   so a flood of them is no flood of rows.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::audit::Actor;
use crate::db::{self, Database};
use crate::identity::security;
use crate::secrets::Secret;
use crate::service_error::ServiceError;
use crate::vocabulary::UserStatus;

/// Links sent per account per hour.
pub const PER_ACCOUNT_PER_HOUR: i32 = 3;

/// A link made for an account, to be mailed to its address (by the caller, in its words).
#[derive(Debug)]
pub struct Issued {
    pub user_id: Uuid,
    pub email: String,
    /// `<issuer>/reset?token=…`: a one-time secret, never logged.
    pub link: crate::secrets::SecretString,
    pub expires_at: DateTime<Utc>,
}

/// Looks `email` up and, for an active account within its hourly allowance, stores a link
/// and audits the request. `None`: nothing to send (no such active account, or asked too
/// often). The caller must answer the same either way, without waiting for this.
pub async fn request(
    db: &Database,
    config: &crate::config::Config,
    email: &str,
    origin: &Actor,
) -> Result<Option<Issued>, ServiceError> {
    if email.len() > 254 {
        return Ok(None);
    }
    let mut tx = db.unscoped().await?;
    let found = db::users::by_email(&mut tx, email.trim()).await?;
    let Some(user) = found.filter(|u| u.status == UserStatus::Active) else {
        tx.commit().await?;
        return Ok(None);
    };
    let key = crate::secrets::sha256(format!("password_reset:{}", user.id).as_bytes());
    if db::rate_limits::hit(&mut tx, &key, PER_ACCOUNT_PER_HOUR, 3600).await?.is_some() {
        tx.commit().await?;
        tracing::info!(user = %user.id, "password reset asked too often; no mail sent");
        return Ok(None);
    }
    let token = Secret::generate();
    let expires_at = Utc::now() + chrono::Duration::from_std(config.ttl.password_reset).unwrap_or_default();
    db::password_resets::insert(&mut tx, &token.hash(), user.id, expires_at).await?;
    tx.switch_user(user.id).await?;
    let Some(address) = db::users::claims(&mut tx, user.id).await?.map(|c| c.email) else {
        return Ok(None);
    };
    let actor = Actor { kind: "user", id: Some(user.id.to_string()), ..origin.clone() };
    let details = serde_json::json!({ "expires_at": expires_at });
    let event = actor.event("password_reset.requested", ("user", Some(user.id.to_string())), details);
    security::append_for_user(&mut tx, user.id, &event).await?;
    tx.commit().await?;
    let link = format!("{}/reset?token={}", config.issuer, token.expose()).into();
    Ok(Some(Issued { user_id: user.id, email: address, link, expires_at }))
}

/// Whether a link is usable now (for the form; setting the password is [`complete`]).
pub async fn link_usable(db: &Database, token: &str) -> Result<bool, ServiceError> {
    let mut tx = db.unscoped().await?;
    let user = db::password_resets::usable(&mut tx, &crate::secrets::sha256(token.as_bytes())).await?;
    tx.commit().await?;
    Ok(user.is_some())
}

/// Spends a link and sets the new password, in one transaction: every other open link of the
/// user is spent too, every session and token family ends, and the event is audited. `None`:
/// the link is unknown, used or expired. Returns the user and the address to tell.
pub async fn complete(
    db: &Database,
    token: &str,
    password_hash: &str,
    origin: &Actor,
) -> Result<Option<(Uuid, String)>, ServiceError> {
    let mut tx = db.unscoped().await?;
    let Some(user_id) = db::password_resets::consume(&mut tx, &crate::secrets::sha256(token.as_bytes())).await? else {
        tx.commit().await?;
        return Ok(None);
    };
    tx.switch_user(user_id).await?;
    // Disabled since the link was asked for: nothing changes (the transaction rolls back).
    let Some(user) = db::users::claims(&mut tx, user_id).await?.filter(|u| u.status == UserStatus::Active) else {
        return Ok(None);
    };
    db::users::set_password(&mut tx, user_id, password_hash).await?;
    let actor = Actor { kind: "user", id: Some(user_id.to_string()), ..origin.clone() };
    // Ends the user's other open links too.
    let ended = security::end_sessions_and_families(&mut tx, &actor, user_id, None, "password_reset").await?;
    let email = user.email;
    let details = serde_json::json!({ "sessions_ended": ended.sessions, "families_revoked": ended.families });
    let event = actor.event("password_reset.used", ("user", Some(user_id.to_string())), details);
    security::append_for_user(&mut tx, user_id, &event).await?;
    tx.commit().await?;
    Ok(Some((user_id, email)))
}
