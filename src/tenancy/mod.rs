//! Tenants, memberships and roles (ARCHITECTURE.md, "Tenancy"): tenants here, memberships in
//! [`members`].

pub mod invitations;
pub mod members;

pub use members::{AddedMember, MembershipChange, add_member, add_member_by, remove_member, set_role};

use uuid::Uuid;

use crate::db::audit::{self, Actor};
use crate::db::{self, Database};
use crate::service_error::ServiceError;
use crate::vocabulary::Slug;
use crate::vocabulary::TenantStatus;

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
    set_require_mfa_in(db, actor, tenant.id, require).await?;
    Ok(MfaPolicy { tenant_id: tenant.id, slug: slug.to_owned(), require_mfa: require })
}

/// Lets anyone register a public client with loopback or private-use redirect URIs in the
/// tenant (RFC 7591 open registration, `clients::registration`), or stops it;
/// `tenant.registration_policy_changed` when it changed. Returns whether it did.
pub async fn set_open_registration(db: &Database, actor: &Actor, slug: &str, open: bool) -> Result<bool, ServiceError> {
    let tenant = find_tenant(db, slug).await?;
    let mut tx = db.operator(tenant.id).await?;
    let changed = db::tenants::set_open_registration(&mut tx, open).await?;
    if changed {
        let details = serde_json::json!({ "open_registration": open });
        let target = ("tenant", Some(tenant.id.to_string()));
        audit::append(&mut tx, &actor.event("tenant.registration_policy_changed", target, details)).await?;
    }
    tx.commit().await?;
    Ok(changed)
}

/// Lets the tenant's login pages offer signing in with a passkey alone (no password), or
/// stops it; `tenant.sign_in_policy_changed` when it changed. Returns whether it did.
pub async fn set_passkey_sign_in(db: &Database, actor: &Actor, slug: &str, on: bool) -> Result<bool, ServiceError> {
    let tenant = find_tenant(db, slug).await?;
    let mut tx = db.operator(tenant.id).await?;
    let changed = db::tenants::set_passkey_sign_in(&mut tx, on).await?;
    if changed {
        let details = serde_json::json!({ "passkey_sign_in": on });
        let target = ("tenant", Some(tenant.id.to_string()));
        audit::append(&mut tx, &actor.event("tenant.sign_in_policy_changed", target, details)).await?;
    }
    tx.commit().await?;
    Ok(changed)
}

/// Lets the tenant's users sign in to clients of client ID metadata documents
/// (`clients::metadata_document`), or stops it; `tenant.client_metadata_policy_changed` when it
/// changed. Returns whether it did.
pub async fn set_allow_client_metadata_documents(
    db: &Database,
    actor: &Actor,
    slug: &str,
    allow: bool,
) -> Result<bool, ServiceError> {
    let tenant = find_tenant(db, slug).await?;
    let mut tx = db.operator(tenant.id).await?;
    let changed = db::tenants::set_allow_client_metadata_documents(&mut tx, allow).await?;
    if changed {
        let details = serde_json::json!({ "allow_client_metadata_documents": allow });
        let target = ("tenant", Some(tenant.id.to_string()));
        audit::append(&mut tx, &actor.event("tenant.client_metadata_policy_changed", target, details)).await?;
    }
    tx.commit().await?;
    Ok(changed)
}

/// [`set_require_mfa`] by tenant id (the admin surface); true if the policy changed (only then
/// is `tenant.mfa_policy_changed` written).
pub async fn set_require_mfa_in(
    db: &Database,
    actor: &Actor,
    tenant_id: Uuid,
    require: bool,
) -> Result<bool, ServiceError> {
    let mut tx = db.operator(tenant_id).await?;
    let changed = db::tenants::set_require_mfa(&mut tx, require).await?;
    if changed {
        let details = serde_json::json!({ "require_mfa": require });
        audit::append(
            &mut tx,
            &actor.event("tenant.mfa_policy_changed", ("tenant", Some(tenant_id.to_string())), details),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(changed)
}
