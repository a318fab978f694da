//! Administrator-assisted recovery: resetting a member's second factor, and one-time recovery
//! links. Shared by the admin pages and the `user recover` command.
//!
//! Who may act on whom: a platform admin on anyone; a tenant admin only on a member of their
//! tenant *all* of whose memberships are in tenants they administer. A user's identity is
//! global, so without the second rule the admin of one tenant could take over someone who also
//! administers another tenant, or the platform.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::{self, Database, audit};
use crate::error::ServiceError;
use crate::identity::security;
use crate::secrets::Secret;

/// Who acts: for the audit row and the permission check.
#[derive(Debug, Clone)]
pub enum Actor {
    /// A signed-in administrator (user id).
    Admin(Uuid),
    /// The command line (operator name).
    Operator(String),
}

impl Actor {
    fn kind_and_id(&self) -> (&'static str, String) {
        match self {
            Actor::Admin(id) => ("user", id.to_string()),
            Actor::Operator(name) => ("operator", name.clone()),
        }
    }
}

/// Where the request came from (none for the command line).
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// An issued link, shown once.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IssuedLink {
    pub link: String,
    pub expires_at: DateTime<Utc>,
    pub user_id: Uuid,
}

/// Whether `actor` may recover `target` as an admin of `tenant_id`. Operators may.
pub async fn may_act(db: &Database, actor: &Actor, tenant_id: Uuid, target: Uuid) -> Result<bool, ServiceError> {
    let mut tx = db.tenant(tenant_id).await?;
    // RLS: the target's membership is visible only in a transaction of this tenant.
    let member = db::memberships::role_of(&mut tx, target).await?.is_some();
    let allowed = match actor {
        Actor::Operator(_) => member,
        Actor::Admin(admin) if member => {
            let theirs = db::memberships::of_user(&mut tx, *admin).await?;
            let platform = db::tenants::platform(&mut tx).await?;
            let is_platform_admin = theirs.iter().any(|m| m.role == "admin" && Some(m.tenant_id) == platform);
            let administers = |t: Uuid| theirs.iter().any(|m| m.role == "admin" && m.tenant_id == t);
            let target_tenants = db::memberships::of_user(&mut tx, target).await?;
            is_platform_admin || (administers(tenant_id) && target_tenants.iter().all(|m| administers(m.tenant_id)))
        }
        Actor::Admin(_) => false,
    };
    tx.commit().await?;
    Ok(allowed)
}

fn event<'a>(action: &'a str, actor: &'a Actor, target: Uuid, origin: &Origin) -> audit::Event<'a> {
    let (kind, id) = actor.kind_and_id();
    audit::Event {
        actor_kind: kind,
        actor_id: Some(id),
        target_kind: Some("user"),
        target_id: Some(target.to_string()),
        action,
        outcome: "success",
        ip: origin.ip,
        user_agent: origin.user_agent.clone(),
        request_id: origin.request_id.clone(),
        details: serde_json::json!({}),
    }
}

/// Removes the target's second factor (they enrol again at the next sign-in) and ends every
/// session and token family of theirs. `None` when the actor may not (a 404 to the caller).
pub async fn reset_mfa(
    db: &Database,
    actor: &Actor,
    tenant_id: Uuid,
    target: Uuid,
    origin: &Origin,
) -> Result<Option<security::Ended>, ServiceError> {
    if !may_act(db, actor, tenant_id, target).await? {
        return Ok(None);
    }
    let mut tx = db.tenant_and_user(tenant_id, target).await?;
    db::mfa::reset(&mut tx, target).await?;
    let ended = security::end_sessions_and_families(&mut tx, target, None, "mfa_reset").await?;
    let mut e = event("mfa.reset", actor, target, origin);
    e.details = serde_json::json!({ "sessions_ended": ended.sessions, "families_revoked": ended.families });
    audit::append(&mut tx, &e).await?;
    tx.commit().await?;
    Ok(Some(ended))
}

/// Issues a one-time recovery link for the target (256 random bits; only its hash is kept).
pub async fn issue_link(
    db: &Database,
    config: &crate::config::Config,
    actor: &Actor,
    tenant_id: Uuid,
    target: Uuid,
    origin: &Origin,
) -> Result<Option<IssuedLink>, ServiceError> {
    if !may_act(db, actor, tenant_id, target).await? {
        return Ok(None);
    }
    let token = Secret::generate();
    let expires_at = Utc::now() + chrono::Duration::from_std(config.ttl.recovery_link).unwrap_or_default();
    let (kind, id) = actor.kind_and_id();
    let mut tx = db.tenant(tenant_id).await?;
    db::recovery::insert(&mut tx, &token.hash(), target, &format!("{kind}:{id}"), expires_at).await?;
    let mut e = event("recovery.issued", actor, target, origin);
    e.details = serde_json::json!({ "expires_at": expires_at });
    audit::append(&mut tx, &e).await?;
    tx.commit().await?;
    Ok(Some(IssuedLink {
        link: format!("{}/recover?token={}", config.issuer, token.expose()),
        expires_at,
        user_id: target,
    }))
}

/// Uses a recovery link: sets the new password, removes the second factor (to be enrolled
/// again), and ends every session and token family, in one transaction with the link's single
/// use. `None` when the link is unknown, used or expired.
pub async fn use_link(
    db: &Database,
    token: &str,
    password_hash: &str,
    origin: &Origin,
) -> Result<Option<Uuid>, ServiceError> {
    let token_hash = crate::secrets::sha256(token.as_bytes());
    let mut tx = db.unscoped().await?;
    let tenant = db::recovery::tenant_of(&mut tx, &token_hash).await?;
    tx.commit().await?;
    let Some(tenant_id) = tenant else { return Ok(None) };
    let mut tx = db.tenant(tenant_id).await?;
    let Some(user_id) = db::recovery::consume(&mut tx, &token_hash).await? else { return Ok(None) };
    tx.switch_user(user_id).await?;
    db::mfa::set_password(&mut tx, user_id, password_hash).await?;
    db::mfa::reset(&mut tx, user_id).await?;
    let ended = security::end_sessions_and_families(&mut tx, user_id, None, "recovery").await?;
    let mut e = audit::Event {
        actor_kind: "user",
        actor_id: Some(user_id.to_string()),
        target_kind: Some("user"),
        target_id: Some(user_id.to_string()),
        action: "recovery.used",
        outcome: "success",
        ip: origin.ip,
        user_agent: origin.user_agent.clone(),
        request_id: origin.request_id.clone(),
        details: serde_json::json!({}),
    };
    e.details = serde_json::json!({ "sessions_ended": ended.sessions, "families_revoked": ended.families });
    audit::append(&mut tx, &e).await?;
    tx.commit().await?;
    Ok(Some(user_id))
}

/// Whether a link is usable now (for the form; using it is [`use_link`]).
pub async fn link_usable(db: &Database, token: &str) -> Result<bool, ServiceError> {
    let token_hash = crate::secrets::sha256(token.as_bytes());
    let mut tx = db.unscoped().await?;
    let tenant = db::recovery::tenant_of(&mut tx, &token_hash).await?;
    tx.commit().await?;
    let Some(tenant_id) = tenant else { return Ok(false) };
    let mut tx = db.tenant(tenant_id).await?;
    let usable = db::recovery::peek(&mut tx, &token_hash).await?.is_some();
    tx.commit().await?;
    Ok(usable)
}
