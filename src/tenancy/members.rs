//! Memberships: adding a user to a tenant with a role, changing the role, ending the
//! membership. The `_in` functions take the tenant by id and are what the admin surface calls
//! (`crate::admin::members`); the others take a slug and an email for the command line and
//! resolve them first. Every change is audited in its own transaction.

use uuid::Uuid;

use super::find_tenant;
use crate::db::audit::{self, Actor};
use crate::db::{self, Database};
use crate::identity::Email;
use crate::service_error::ServiceError;
use crate::vocabulary::Role;

/// A membership that was added.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AddedMember {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub role: Role,
}

/// A membership after a role change or its end.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MembershipChange {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    /// The role before.
    pub previous_role: Role,
    /// The role now; `None` once removed.
    pub role: Option<Role>,
    /// Token families of the user in the tenant that were ended.
    pub families_revoked: u64,
}

/// What to do when no user has the email being added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// Refuse (`NotFound`): the command line adds existing users (`user create` makes them).
    Refuse,
    /// Create the user without a password, to set one through a recovery link: the admin
    /// surface, where a refusal would tell a tenant's admin which emails have an account
    /// somewhere.
    Invite,
}

/// Makes the user with `email` a member of tenant `slug` with `role` (as the system; see
/// [`add_member_by`]).
pub async fn add_member(db: &Database, slug: &str, email: &str, role: Role) -> Result<AddedMember, ServiceError> {
    add_member_by(db, &Actor::system(), slug, email, role).await
}

/// Makes the existing user with `email` a member of tenant `slug` with `role`.
pub async fn add_member_by(
    db: &Database,
    actor: &Actor,
    slug: &str,
    email: &str,
    role: Role,
) -> Result<AddedMember, ServiceError> {
    let tenant = find_tenant(db, slug).await?;
    add_member_in(db, actor, tenant.id, email, role, Unknown::Refuse).await
}

/// Makes the user with `email` a member of the tenant with `role`; `membership.added` (and
/// `user.invited` when [`Unknown::Invite`] created the user), in one transaction.
pub async fn add_member_in(
    db: &Database,
    actor: &Actor,
    tenant_id: Uuid,
    email: &str,
    role: Role,
    unknown: Unknown,
) -> Result<AddedMember, ServiceError> {
    let email = Email::parse(email)?;
    let mut tx = db.tenant(tenant_id).await?;
    let user_id = match (db::users::by_email(&mut tx, email.as_str()).await?, unknown) {
        (Some(user), _) => user.id,
        (None, Unknown::Refuse) => {
            return Err(ServiceError::NotFound(format!("no user with email {:?}", email.as_str())));
        }
        (None, Unknown::Invite) => {
            let id = Uuid::now_v7();
            tx.switch_user(id).await?;
            match db::users::insert_without_password(&mut tx, id, email.as_str()).await {
                Ok(()) => {}
                // Someone created this user a moment ago: ask again.
                Err(e) if db::unique_violation(&e).is_some() => {
                    return Err(ServiceError::Conflict("this user was just created; try again".into()));
                }
                Err(e) => return Err(e.into()),
            }
            audit::append(&mut tx, &actor.event("user.invited", ("user", Some(id.to_string())), serde_json::json!({})))
                .await?;
            id
        }
    };
    if db::memberships::role_of(&mut tx, user_id).await?.is_some() {
        return Err(ServiceError::Conflict(format!("{} is already a member", email.as_str())));
    }
    match db::memberships::insert(&mut tx, tenant_id, user_id, role).await {
        Ok(()) => {}
        // A concurrent add of the same person won the race.
        Err(e) if db::unique_violation(&e).is_some() => {
            return Err(ServiceError::Conflict(format!("{} is already a member", email.as_str())));
        }
        Err(e) => return Err(e.into()),
    }
    let details = serde_json::json!({ "role": role });
    audit::append(&mut tx, &actor.event("membership.added", ("user", Some(user_id.to_string())), details)).await?;
    tx.commit().await?;
    Ok(AddedMember { tenant_id, user_id, role })
}

/// The tenant and the user a membership command names.
async fn tenant_and_user(db: &Database, slug: &str, email: &str) -> Result<(Uuid, Uuid), ServiceError> {
    let tenant = find_tenant(db, slug).await?;
    let email = Email::parse(email)?;
    let mut tx = db.unscoped().await?;
    let user = db::users::by_email(&mut tx, email.as_str()).await?;
    tx.commit().await?;
    let user = user.ok_or_else(|| ServiceError::NotFound(format!("no user with email {:?}", email.as_str())))?;
    Ok((tenant.id, user.id))
}

fn not_a_member(email: &str, slug: &str) -> ServiceError {
    ServiceError::NotFound(format!("{email} is not a member of {slug:?}"))
}

/// Changes a member's role by tenant slug and email (see [`set_role_in`]).
pub async fn set_role(
    db: &Database,
    actor: &Actor,
    slug: &str,
    email: &str,
    role: Role,
) -> Result<MembershipChange, ServiceError> {
    let (tenant_id, user_id) = tenant_and_user(db, slug, email).await?;
    set_role_in(db, actor, tenant_id, user_id, role).await?.ok_or_else(|| not_a_member(email, slug))
}

/// Changes a member's role; `membership.role_changed` (with the roles before and after).
/// `None` when the user is not a member. The next refresh carries the new role, and the admin
/// surface reads roles at every request; access tokens already issued keep their `roles`
/// until they expire (minutes). The last admin cannot be demoted but by the operator.
pub async fn set_role_in(
    db: &Database,
    actor: &Actor,
    tenant_id: Uuid,
    user_id: Uuid,
    role: Role,
) -> Result<Option<MembershipChange>, ServiceError> {
    let mut tx = db.tenant(tenant_id).await?;
    if role != Role::Admin {
        refuse_if_last_admin(&mut tx, actor, user_id, "demote").await?;
    }
    let Some(previous) = db::memberships::set_role(&mut tx, user_id, role).await? else {
        return Ok(None);
    };
    if previous != role {
        let details = serde_json::json!({ "from": previous, "to": role });
        let event = actor.event("membership.role_changed", ("user", Some(user_id.to_string())), details);
        audit::append(&mut tx, &event).await?;
    }
    tx.commit().await?;
    Ok(Some(MembershipChange { tenant_id, user_id, previous_role: previous, role: Some(role), families_revoked: 0 }))
}

/// Ends a membership by tenant slug and email (see [`remove_member_in`]).
pub async fn remove_member(
    db: &Database,
    actor: &Actor,
    slug: &str,
    email: &str,
) -> Result<MembershipChange, ServiceError> {
    let (tenant_id, user_id) = tenant_and_user(db, slug, email).await?;
    remove_member_in(db, actor, tenant_id, user_id).await?.ok_or_else(|| not_a_member(email, slug))
}

/// Ends a membership and every token family of that user in the tenant;
/// `membership.removed`. `None` when the user is not a member. The last admin cannot be
/// removed but by the operator.
pub async fn remove_member_in(
    db: &Database,
    actor: &Actor,
    tenant_id: Uuid,
    user_id: Uuid,
) -> Result<Option<MembershipChange>, ServiceError> {
    let mut tx = db.tenant(tenant_id).await?;
    refuse_if_last_admin(&mut tx, actor, user_id, "remove").await?;
    let Some(previous) = db::memberships::delete(&mut tx, user_id).await? else {
        return Ok(None);
    };
    db::logout_notices::enqueue(&mut tx, user_id, None, "membership_removed").await?;
    let families = db::families::revoke_of_user(&mut tx, actor, user_id, "membership_removed").await?;
    let details = serde_json::json!({ "role": previous, "families_revoked": families });
    audit::append(&mut tx, &actor.event("membership.removed", ("user", Some(user_id.to_string())), details)).await?;
    tx.commit().await?;
    Ok(Some(MembershipChange { tenant_id, user_id, previous_role: previous, role: None, families_revoked: families }))
}

/// Refuses to take the admin role from the tenant's only admin, on the admin surface: a
/// tenant left without one can only be repaired from the server. The operator at the command
/// line is that repair, and may. The admins' rows are locked first, so two admins demoting
/// each other at once cannot both succeed.
async fn refuse_if_last_admin(tx: &mut db::Tx, actor: &Actor, user_id: Uuid, what: &str) -> Result<(), ServiceError> {
    if actor.kind == "operator" {
        return Ok(());
    }
    let admins = db::memberships::lock_admins(tx).await?;
    if admins == [user_id] {
        return Err(ServiceError::Conflict(format!(
            "cannot {what} the only admin of this tenant: make someone else admin first"
        )));
    }
    Ok(())
}
