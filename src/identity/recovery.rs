//! Administrator-assisted recovery: resetting a member's second factor, and one-time recovery
//! links. Shared by the admin pages and the `user recover` command.
//!
//! Who may act on whom: a platform admin on anyone; a tenant admin only on a member of their
//! tenant *all* of whose memberships are in tenants they administer. A user's identity is
//! global, so without the second rule the admin of one tenant could take over someone who also
//! administers another tenant, or the platform.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::audit::{self, Actor};
use crate::db::{self, Database};
use crate::identity::security;
use crate::secrets::Secret;
use crate::service_error::ServiceError;
use crate::vocabulary::Role;

/// An issued link, shown once.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IssuedLink {
    pub link: String,
    pub expires_at: DateTime<Utc>,
    pub user_id: Uuid,
}

/// Whether `actor` may recover `target` as an admin of `tenant_id`: an operator (the
/// command line) may for any member; a user (kind `user`, id their uuid) as above; a service
/// account with the admin role (kind `client`) like an admin of its own tenant, or of the
/// platform when it is the platform tenant's.
pub async fn may_act(db: &Database, actor: &Actor, tenant_id: Uuid, target: Uuid) -> Result<bool, ServiceError> {
    let mut tx = db.tenant(tenant_id).await?;
    // RLS: the target's membership is visible only in a transaction of this tenant.
    let member = db::memberships::role_of(&mut tx, target).await?.is_some();
    let allowed = match (actor.kind, actor.id.as_deref()) {
        ("operator", _) => member,
        ("user", Some(admin)) if member => {
            let Ok(admin) = admin.parse::<Uuid>() else { return Ok(false) };
            let theirs = db::memberships::of_user(&mut tx, admin).await?;
            let platform = db::tenants::platform(&mut tx).await?;
            let is_platform_admin = theirs.iter().any(|m| m.role == Role::Admin && Some(m.tenant_id) == platform);
            let administers = |t: Uuid| theirs.iter().any(|m| m.role == Role::Admin && m.tenant_id == t);
            // Suspended tenants count: their admins are admins again once reactivated.
            let target_tenants = db::memberships::all_of(&mut tx, target).await?;
            is_platform_admin || (administers(tenant_id) && target_tenants.iter().all(|(t, _)| administers(*t)))
        }
        ("client", Some(client_id)) if member => {
            let owner = db::clients::owner_of(&mut tx, client_id).await?;
            let platform = db::tenants::platform(&mut tx).await?;
            let target_tenants = db::memberships::all_of(&mut tx, target).await?;
            match owner {
                // A platform admin service account, like a platform admin: anyone. Its row is
                // read in the platform's tenant (the transaction has nothing else left to do).
                Some(owner) if Some(owner) == platform => {
                    tx.switch_tenant(owner).await?;
                    db::clients::get(&mut tx, client_id).await?.is_some_and(|c| c.service_role == Some(Role::Admin))
                }
                Some(owner) if owner == tenant_id => {
                    let admin =
                        db::clients::get(&mut tx, client_id).await?.is_some_and(|c| c.service_role == Some(Role::Admin));
                    admin && target_tenants.iter().all(|(t, _)| *t == tenant_id)
                }
                _ => false,
            }
        }
        _ => false,
    };
    tx.commit().await?;
    Ok(allowed)
}

/// Whether the recovery rule ([`may_act`]) is checked. Only the admin surface's tests skip it
/// (`crate::admin::HandlerChecks`), to show that the data-level guard alone keeps an action
/// inside the tenant: the target must be a member of it, read under Row Level Security in the
/// transaction that acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Checked,
    Skipped,
}

/// Removes the target's second factor (they enrol again at the next sign-in) and ends every
/// session and token family of theirs. `None` when the actor may not (a 404 to the caller).
pub async fn reset_mfa(
    db: &Database,
    actor: &Actor,
    tenant_id: Uuid,
    target: Uuid,
) -> Result<Option<security::Ended>, ServiceError> {
    act_on_member(db, actor, tenant_id, target, MemberAction::ResetMfa, Rule::Checked).await
}

/// Signs the target out everywhere (a new security stamp; every session, half sign-in and
/// token family ends), as an administrator acting on a member. `None` when the actor may not.
pub async fn sign_out_everywhere(
    db: &Database,
    actor: &Actor,
    tenant_id: Uuid,
    target: Uuid,
) -> Result<Option<security::Ended>, ServiceError> {
    act_on_member(db, actor, tenant_id, target, MemberAction::SignOutEverywhere, Rule::Checked).await
}

/// What an administrator does to a member's sign-ins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberAction {
    ResetMfa,
    SignOutEverywhere,
}

/// Checks [`may_act`], then in one transaction: the action itself, the end of every session
/// and family of the target (a new security stamp), and the audit event in each of the
/// target's tenants. `None` when the actor may not, or the target is no member of the tenant.
pub async fn act_on_member(
    db: &Database,
    actor: &Actor,
    tenant_id: Uuid,
    target: Uuid,
    action: MemberAction,
    rule: Rule,
) -> Result<Option<security::Ended>, ServiceError> {
    if rule == Rule::Checked && !may_act(db, actor, tenant_id, target).await? {
        return Ok(None);
    }
    let (event_action, reason) = match action {
        MemberAction::ResetMfa => ("mfa.reset", "mfa_reset"),
        MemberAction::SignOutEverywhere => ("user.signed_out_everywhere", "signed_out_everywhere"),
    };
    let mut tx = db.tenant_and_user(tenant_id, target).await?;
    // The data-level guard, in the transaction that acts: the target's membership, visible
    // only in this tenant (Row Level Security).
    if db::memberships::role_of(&mut tx, target).await?.is_none() {
        return Ok(None);
    }
    if action == MemberAction::ResetMfa {
        db::mfa::reset(&mut tx, target).await?;
    }
    let ended = security::end_sessions_and_families(&mut tx, actor, target, None, reason).await?;
    let details = serde_json::json!({ "sessions_ended": ended.sessions, "families_revoked": ended.families });
    let event = actor.event(event_action, ("user", Some(target.to_string())), details);
    security::append_for_user(&mut tx, target, &event).await?;
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
) -> Result<Option<IssuedLink>, ServiceError> {
    issue_link_under(db, config, actor, tenant_id, target, Rule::Checked).await
}

/// [`issue_link`], with the recovery rule checked or (tests only) skipped; the target's
/// membership is checked in the transaction that stores the link either way.
pub async fn issue_link_under(
    db: &Database,
    config: &crate::config::Config,
    actor: &Actor,
    tenant_id: Uuid,
    target: Uuid,
    rule: Rule,
) -> Result<Option<IssuedLink>, ServiceError> {
    if rule == Rule::Checked && !may_act(db, actor, tenant_id, target).await? {
        return Ok(None);
    }
    let token = Secret::generate();
    let expires_at = Utc::now() + chrono::Duration::from_std(config.ttl.recovery_link).unwrap_or_default();
    let issued_by = format!("{}:{}", actor.kind, actor.id.as_deref().unwrap_or(""));
    let mut tx = db.tenant(tenant_id).await?;
    if db::memberships::role_of(&mut tx, target).await?.is_none() {
        return Ok(None);
    }
    db::recovery::insert(&mut tx, &token.hash(), target, &issued_by, expires_at).await?;
    let details = serde_json::json!({ "expires_at": expires_at });
    audit::append(&mut tx, &actor.event("recovery.issued", ("user", Some(target.to_string())), details)).await?;
    tx.commit().await?;
    Ok(Some(IssuedLink {
        link: format!("{}/recover?token={}", config.issuer, token.expose()),
        expires_at,
        user_id: target,
    }))
}

/// Uses a recovery link: sets the new password, removes the second factor (to be enrolled
/// again), and ends every session and token family, in one transaction with the link's single
/// use. `None` when the link is unknown, used or expired. `origin` is the request's actor
/// (kind and id are taken from the link's user).
pub async fn use_link(
    db: &Database,
    token: &str,
    password_hash: &str,
    origin: &Actor,
) -> Result<Option<Uuid>, ServiceError> {
    let token_hash = crate::secrets::sha256(token.as_bytes());
    let mut tx = db.unscoped().await?;
    let tenant = db::recovery::tenant_of(&mut tx, &token_hash).await?;
    tx.commit().await?;
    let Some(tenant_id) = tenant else { return Ok(None) };
    // Whoever issued the link must still be allowed to recover this person now (they may have
    // become an admin elsewhere since, or the issuer may have lost the role).
    let mut tx = db.tenant(tenant_id).await?;
    let Some((user_id, issued_by)) = db::recovery::usable(&mut tx, &token_hash).await? else { return Ok(None) };
    tx.commit().await?;
    if !may_act(db, &issuer(&issued_by), tenant_id, user_id).await? {
        return Ok(None);
    }
    let mut tx = db.tenant(tenant_id).await?;
    let Some(user_id) = db::recovery::consume(&mut tx, &token_hash).await? else { return Ok(None) };
    tx.switch_user(user_id).await?;
    db::users::set_password(&mut tx, user_id, password_hash).await?;
    db::mfa::reset(&mut tx, user_id).await?;
    let actor = Actor { kind: "user", id: Some(user_id.to_string()), ..origin.clone() };
    let ended = security::end_sessions_and_families(&mut tx, &actor, user_id, None, "recovery").await?;
    let details = serde_json::json!({ "sessions_ended": ended.sessions, "families_revoked": ended.families });
    let e = actor.event("recovery.used", ("user", Some(user_id.to_string())), details);
    security::append_for_user(&mut tx, user_id, &e).await?;
    tx.commit().await?;
    Ok(Some(user_id))
}

/// The actor recorded as a link's issuer (`user:<id>` or `operator:<name>`).
fn issuer(issued_by: &str) -> Actor {
    match issued_by.split_once(':') {
        Some(("user", id)) => Actor { kind: "user", id: Some(id.to_owned()), ..Actor::default() },
        Some(("operator", name)) => Actor::operator(name),
        Some(("client", id)) => Actor { kind: "client", id: Some(id.to_owned()), ..Actor::default() },
        _ => Actor { kind: "unknown", ..Actor::default() },
    }
}

/// Whether a link is usable now (for the form; using it is [`use_link`]).
pub async fn link_usable(db: &Database, token: &str) -> Result<bool, ServiceError> {
    let token_hash = crate::secrets::sha256(token.as_bytes());
    let mut tx = db.unscoped().await?;
    let tenant = db::recovery::tenant_of(&mut tx, &token_hash).await?;
    tx.commit().await?;
    let Some(tenant_id) = tenant else { return Ok(false) };
    let mut tx = db.tenant(tenant_id).await?;
    let usable = db::recovery::usable(&mut tx, &token_hash).await?.is_some();
    tx.commit().await?;
    Ok(usable)
}
