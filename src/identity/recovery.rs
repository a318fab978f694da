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

/// What an actor administers: everything (an operator at the command line, a platform admin
/// person or service account), or the tenants where they are admin.
struct Powers {
    platform: bool,
    admin_of: Vec<Uuid>,
}

impl Powers {
    fn administers(&self, tenant_id: Uuid) -> bool {
        self.platform || self.admin_of.contains(&tenant_id)
    }
}

/// The actor's powers, read in `tx` (which is left in the tenant it was in).
async fn powers(tx: &mut db::Tx, actor: &Actor) -> Result<Powers, sqlx::Error> {
    let none = Powers { platform: false, admin_of: Vec::new() };
    let platform = db::tenants::platform(tx).await?;
    Ok(match (actor.kind, actor.id.as_deref()) {
        ("operator", _) => Powers { platform: true, admin_of: Vec::new() },
        ("user", Some(id)) => {
            let Ok(id) = id.parse::<Uuid>() else { return Ok(none) };
            let theirs = db::memberships::of_user(tx, id).await?;
            let admin_of: Vec<Uuid> = theirs.iter().filter(|m| m.role == Role::Admin).map(|m| m.tenant_id).collect();
            Powers { platform: platform.is_some_and(|p| admin_of.contains(&p)), admin_of }
        }
        // A service account with the admin role administers its own tenant, or everything
        // when that is the platform. Its row is read in its tenant, then the transaction goes
        // back to where it was.
        ("client", Some(client_id)) => {
            let (Some(owner), Some(here)) = (db::clients::owner_of(tx, client_id).await?, tx.tenant_id()) else {
                return Ok(none);
            };
            tx.switch_tenant(owner).await?;
            let admin = db::clients::get(tx, client_id).await?.is_some_and(|c| c.service_role == Some(Role::Admin));
            tx.switch_tenant(here).await?;
            match admin {
                true if Some(owner) == platform => Powers { platform: true, admin_of: Vec::new() },
                true => Powers { platform: false, admin_of: vec![owner] },
                false => none,
            }
        }
        _ => none,
    })
}

/// The data-level half of the rule, read in the transaction that acts (a transaction of
/// `tenant_id`): the target is a member of this tenant (Row Level Security shows no other
/// tenant's memberships), and every other tenant they belong to is one the actor administers
/// too — whatever they do to a person (a new stamp, ended sessions, a new password) reaches
/// all of that person's tenants. Suspended tenants count: their admins are admins again once
/// reactivated.
pub(super) async fn within_reach(tx: &mut db::Tx, actor: &Actor, target: Uuid) -> Result<bool, sqlx::Error> {
    if db::memberships::role_of(tx, target).await?.is_none() {
        return Ok(false);
    }
    let powers = powers(tx, actor).await?;
    let target_tenants = db::memberships::all_of(tx, target).await?;
    Ok(target_tenants.iter().all(|(t, _)| powers.administers(*t) || Some(*t) == tx.tenant_id()))
}

/// Whether `actor` may recover `target` as an admin of `tenant_id`: the actor administers
/// `tenant_id` (an operator and a platform admin administer every tenant; a user or a service
/// account with the admin role, their own), and the target is [`within_reach`].
pub async fn may_act(db: &Database, actor: &Actor, tenant_id: Uuid, target: Uuid) -> Result<bool, ServiceError> {
    let mut tx = db.tenant(tenant_id).await?;
    let allowed = powers(&mut tx, actor).await?.administers(tenant_id) && within_reach(&mut tx, actor, target).await?;
    tx.commit().await?;
    Ok(allowed)
}

/// Whether the handler half of the recovery rule (the actor administers the tenant, in
/// [`may_act`]) is checked. Only the admin surface's tests skip it
/// (`crate::admin::HandlerChecks`), to show that the data-level half ([`within_reach`], read
/// in the transaction that acts and never skipped) alone keeps an action inside what the actor
/// may touch.
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
    // The data-level guard, in the transaction that acts.
    if !within_reach(&mut tx, actor, target).await? {
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
    if !within_reach(&mut tx, actor, target).await? {
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
