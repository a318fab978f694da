//! Email verification (ARCHITECTURE.md "Mail"): a one-time link mailed to the account's
//! address proves that its owner receives mail there, and sets `email_verified`.
//!
//! - A link is made for an active account whose address is not verified yet: when the account
//!   is created with a password (`user create`), and when its owner asks on the account page.
//!   At most [`PER_ACCOUNT_PER_HOUR`] an hour, so the button cannot flood a mailbox.
//! - A link names the address it was sent to: it does nothing once the account has another.
//! - Following it spends it (one atomic UPDATE), spends the user's other open links, sets
//!   `email_verified` and audits `email.verified` in each tenant of the user. Accepting an
//!   invitation verifies the address too (`tenancy::invitations`): that link came by mail as
//!   well.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::audit::Actor;
use crate::db::{self, Database};
use crate::identity::security;
use crate::secrets::{Secret, SecretString};
use crate::service_error::ServiceError;
use crate::vocabulary::UserStatus;

/// Links sent per account per hour.
pub const PER_ACCOUNT_PER_HOUR: i32 = 3;

/// The longest token a link can carry (a generated one is 43 characters).
pub const MAX_TOKEN_LEN: usize = 128;

/// A link made for an account, to be mailed to its address (by the caller, in its words).
#[derive(Debug)]
pub struct Issued {
    pub user_id: Uuid,
    pub email: String,
    /// `<issuer>/verify-email?token=…`: a one-time secret, never logged.
    pub link: SecretString,
    pub expires_at: DateTime<Utc>,
}

/// Why no link was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotIssued {
    /// The address is verified already (or the account is gone or disabled).
    NothingToVerify,
    /// The hourly allowance is spent.
    TooOften,
}

/// Makes a verification link for `user_id` and audits it (`email_verification.sent`).
pub async fn issue(
    db: &Database,
    config: &crate::config::Config,
    user_id: Uuid,
    origin: &Actor,
) -> Result<Result<Issued, NotIssued>, ServiceError> {
    let mut tx = db.user(user_id).await?;
    let Some(user) = db::users::claims(&mut tx, user_id).await? else {
        return Ok(Err(NotIssued::NothingToVerify));
    };
    if user.status != UserStatus::Active || user.profile.email_verified {
        return Ok(Err(NotIssued::NothingToVerify));
    }
    let key = crate::secrets::sha256(format!("email_verification:{user_id}").as_bytes());
    if db::rate_limits::hit(&mut tx, &key, PER_ACCOUNT_PER_HOUR, 3600).await?.is_some() {
        tx.commit().await?;
        return Ok(Err(NotIssued::TooOften));
    }
    let token = Secret::generate();
    let expires_at = Utc::now() + chrono::Duration::from_std(config.ttl.email_verification).unwrap_or_default();
    db::email_verifications::insert(&mut tx, &token.hash(), user_id, &user.email, expires_at).await?;
    let actor = Actor { kind: "user", id: Some(user_id.to_string()), ..origin.clone() };
    let details = serde_json::json!({ "expires_at": expires_at });
    let event = actor.event("email_verification.sent", ("user", Some(user_id.to_string())), details);
    security::append_for_user(&mut tx, user_id, &event).await?;
    tx.commit().await?;
    let link = format!("{}/verify-email?token={}", config.issuer, token.expose()).into();
    Ok(Ok(Issued { user_id, email: user.email, link, expires_at }))
}

/// Whether a link is usable now (for the page; verifying is [`confirm`]).
pub async fn link_usable(db: &Database, token: &str) -> Result<bool, ServiceError> {
    if token.len() > MAX_TOKEN_LEN {
        return Ok(false);
    }
    let mut tx = db.unscoped().await?;
    let user = db::email_verifications::usable(&mut tx, &crate::secrets::sha256(token.as_bytes())).await?;
    tx.commit().await?;
    Ok(user.is_some())
}

/// Spends a link and marks the address verified, in one transaction. `None`: the link is
/// unknown, used or expired, or the account is disabled or has another address now (then
/// nothing changes).
pub async fn confirm(db: &Database, token: &str, origin: &Actor) -> Result<Option<Uuid>, ServiceError> {
    if token.len() > MAX_TOKEN_LEN {
        return Ok(None);
    }
    let mut tx = db.unscoped().await?;
    let hash = crate::secrets::sha256(token.as_bytes());
    let Some((user_id, email)) = db::email_verifications::consume(&mut tx, &hash).await? else {
        tx.commit().await?;
        return Ok(None);
    };
    tx.switch_user(user_id).await?;
    let active = db::users::claims(&mut tx, user_id).await?.is_some_and(|u| u.status == UserStatus::Active);
    // Rolled back (the link stays unspent, and still does nothing) unless both hold.
    if !active || !db::users::verify_email(&mut tx, user_id, &email).await? {
        return Ok(None);
    }
    db::email_verifications::end_for_user(&mut tx, user_id).await?;
    let actor = Actor { kind: "user", id: Some(user_id.to_string()), ..origin.clone() };
    let event = actor.event("email.verified", ("user", Some(user_id.to_string())), serde_json::json!({ "by": "link" }));
    security::append_for_user(&mut tx, user_id, &event).await?;
    tx.commit().await?;
    Ok(Some(user_id))
}
