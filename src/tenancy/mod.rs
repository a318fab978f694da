//! Tenants, memberships and roles (ARCHITECTURE.md, "Tenancy").

use uuid::Uuid;

use crate::db::audit::{self, Actor};
use crate::db::{self, Database};
use crate::identity::Email;
use crate::service_error::ServiceError;
use crate::vocabulary::TenantStatus;
use crate::vocabulary::{Role, Slug};

/// Slug of the platform tenant created at bootstrap.
pub const PLATFORM_SLUG: &str = "platform";

/// A tenant that was created.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CreatedTenant {
    pub tenant_id: Uuid,
    pub slug: String,
    pub name: String,
}

/// Creates a tenant (as the system; see [`create_tenant_by`]).
pub async fn create_tenant(
    db: &Database,
    slug: &str,
    name: &str,
    is_platform: bool,
) -> Result<CreatedTenant, ServiceError> {
    create_tenant_by(db, &Actor::system(), slug, name, is_platform).await
}

/// Creates a tenant; `tenant.created` opens its audit chain in the same transaction.
pub async fn create_tenant_by(
    db: &Database,
    actor: &Actor,
    slug: &str,
    name: &str,
    is_platform: bool,
) -> Result<CreatedTenant, ServiceError> {
    let slug = Slug::parse(slug)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ServiceError::Invalid("tenant name must be 1-200 printable characters".into()));
    }
    let id = Uuid::now_v7();
    // Request connections may not write tenants (migrations/0010): an owner-pool transaction
    // stepped down to lca_operator, for this tenant, so RLS still checks the row.
    let mut tx = db.operator(id).await?;
    match db::tenants::insert(&mut tx, id, slug.as_str(), name, is_platform).await {
        Ok(()) => {}
        Err(e) if db::unique_violation(&e).is_some() => {
            return Err(ServiceError::Conflict(format!("a tenant with slug {:?} already exists", slug.as_str())));
        }
        Err(e) => return Err(e.into()),
    }
    let details = serde_json::json!({ "slug": slug.as_str(), "name": name, "is_platform": is_platform });
    audit::append(&mut tx, &actor.event("tenant.created", ("tenant", Some(id.to_string())), details)).await?;
    tx.commit().await?;
    Ok(CreatedTenant { tenant_id: id, slug: slug.into_string(), name: name.to_owned() })
}

/// Finds an active or suspended tenant by slug, or says clearly that there is none.
pub async fn find_tenant(db: &Database, slug: &str) -> Result<db::tenants::TenantRef, ServiceError> {
    let slug = Slug::parse(slug)?;
    let mut tx = db.unscoped().await?;
    let tenant = db::tenants::by_slug(&mut tx, slug.as_str()).await?;
    tx.commit().await?;
    tenant.ok_or_else(|| ServiceError::NotFound(format!("no tenant with slug {:?}", slug.as_str())))
}

/// A membership that was added.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AddedMember {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub role: Role,
}

/// Makes the user with `email` a member of tenant `slug` with `role` (as the system; see
/// [`add_member_by`]).
pub async fn add_member(db: &Database, slug: &str, email: &str, role: Role) -> Result<AddedMember, ServiceError> {
    add_member_by(db, &Actor::system(), slug, email, role).await
}

/// Makes the user with `email` a member of tenant `slug` with `role`; `membership.added`.
pub async fn add_member_by(
    db: &Database,
    actor: &Actor,
    slug: &str,
    email: &str,
    role: Role,
) -> Result<AddedMember, ServiceError> {
    let tenant = find_tenant(db, slug).await?;
    let email = Email::parse(email)?;
    let mut tx = db.tenant(tenant.id).await?;
    let Some(user) = db::users::by_email(&mut tx, email.as_str()).await? else {
        return Err(ServiceError::NotFound(format!("no user with email {:?}", email.as_str())));
    };
    if let Some(existing) = db::memberships::role_of(&mut tx, user.id).await? {
        return Err(ServiceError::Conflict(format!(
            "{} is already a member of {slug:?} (role {existing})",
            email.as_str()
        )));
    }
    match db::memberships::insert(&mut tx, tenant.id, user.id, role).await {
        Ok(()) => {}
        // A concurrent `member add` of the same person won the race.
        Err(e) if db::unique_violation(&e).is_some() => {
            return Err(ServiceError::Conflict(format!("{} is already a member of {slug:?}", email.as_str())));
        }
        Err(e) => return Err(e.into()),
    }
    let details = serde_json::json!({ "role": role });
    audit::append(&mut tx, &actor.event("membership.added", ("user", Some(user.id.to_string())), details)).await?;
    tx.commit().await?;
    Ok(AddedMember { tenant_id: tenant.id, user_id: user.id, role })
}

/// A tenant's status after `tenant suspend` or `tenant reactivate`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TenantStatusChange {
    pub tenant_id: Uuid,
    pub slug: String,
    pub status: TenantStatus,
    /// False when the tenant already had this status (nothing was done or recorded).
    pub changed: bool,
}

/// Suspends (`suspend`) or reactivates a tenant; `tenant.suspended` / `tenant.reactivated`.
/// A suspended tenant stops working at once: its clients are not found by the protocol, it is
/// not offered to multi-tenant clients, its tokens are not refreshed and introspect as
/// inactive. Nothing is deleted, so reactivating brings everything back.
pub async fn set_suspended(
    db: &Database,
    actor: &Actor,
    slug: &str,
    suspend: bool,
) -> Result<TenantStatusChange, ServiceError> {
    let tenant = find_tenant(db, slug).await?;
    if tenant.is_platform && suspend {
        return Err(ServiceError::Invalid("the platform tenant cannot be suspended".into()));
    }
    let (status, action) = if suspend {
        (TenantStatus::Suspended, "tenant.suspended")
    } else {
        (TenantStatus::Active, "tenant.reactivated")
    };
    let mut tx = db.operator(tenant.id).await?;
    let changed = db::tenants::set_status(&mut tx, status).await?;
    if changed {
        let event = actor.event(action, ("tenant", Some(tenant.id.to_string())), serde_json::json!({ "slug": slug }));
        audit::append(&mut tx, &event).await?;
    }
    tx.commit().await?;
    Ok(TenantStatusChange { tenant_id: tenant.id, slug: slug.to_owned(), status, changed })
}

/// A membership after `member set-role` or `member remove`.
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

/// Changes a member's role; `membership.role_changed` (with the roles before and after). The
/// next refresh carries the new role; access tokens already issued keep theirs until they
/// expire (minutes).
pub async fn set_role(
    db: &Database,
    actor: &Actor,
    slug: &str,
    email: &str,
    role: Role,
) -> Result<MembershipChange, ServiceError> {
    let (tenant_id, user_id) = tenant_and_user(db, slug, email).await?;
    let mut tx = db.tenant(tenant_id).await?;
    let Some(previous) = db::memberships::set_role(&mut tx, user_id, role).await? else {
        return Err(not_a_member(email, slug));
    };
    if previous != role {
        let details = serde_json::json!({ "from": previous, "to": role });
        let event = actor.event("membership.role_changed", ("user", Some(user_id.to_string())), details);
        audit::append(&mut tx, &event).await?;
    }
    tx.commit().await?;
    Ok(MembershipChange { tenant_id, user_id, previous_role: previous, role: Some(role), families_revoked: 0 })
}

/// Ends a membership and every token family of that user in the tenant;
/// `membership.removed`.
pub async fn remove_member(
    db: &Database,
    actor: &Actor,
    slug: &str,
    email: &str,
) -> Result<MembershipChange, ServiceError> {
    let (tenant_id, user_id) = tenant_and_user(db, slug, email).await?;
    let mut tx = db.tenant(tenant_id).await?;
    let Some(previous) = db::memberships::delete(&mut tx, user_id).await? else {
        return Err(not_a_member(email, slug));
    };
    let families = db::families::revoke_of_user(&mut tx, actor, user_id, "membership_removed").await?;
    let details = serde_json::json!({ "role": previous, "families_revoked": families });
    audit::append(&mut tx, &actor.event("membership.removed", ("user", Some(user_id.to_string())), details)).await?;
    tx.commit().await?;
    Ok(MembershipChange { tenant_id, user_id, previous_role: previous, role: None, families_revoked: families })
}

/// A tenant's MFA policy after `tenant require-mfa`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MfaPolicy {
    pub tenant_id: Uuid,
    pub slug: String,
    pub require_mfa: bool,
}

/// Requires (or stops requiring) a second factor of every member of a tenant at their next
/// sign-in for it; `tenant.mfa_policy_changed`.
pub async fn set_require_mfa(
    db: &Database,
    actor: &Actor,
    slug: &str,
    require: bool,
) -> Result<MfaPolicy, ServiceError> {
    let tenant = find_tenant(db, slug).await?;
    let mut tx = db.operator(tenant.id).await?;
    if db::tenants::set_require_mfa(&mut tx, require).await? {
        let details = serde_json::json!({ "require_mfa": require });
        audit::append(
            &mut tx,
            &actor.event("tenant.mfa_policy_changed", ("tenant", Some(tenant.id.to_string())), details),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(MfaPolicy { tenant_id: tenant.id, slug: slug.to_owned(), require_mfa: require })
}
