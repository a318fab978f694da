//! Tenants, for platform admins (an admin of the platform tenant acting for it): listing,
//! creating one with its first admin, suspending and reactivating, appointing an admin.
//! Everyone else is told these do not exist (`NotFound`), so a tenant admin cannot even tell
//! the routes from missing ones (ARCHITECTURE.md, "Admin surface").
//!
//! Besides the permission table, each operation checks under Row Level Security that the
//! caller's own tenant is the platform tenant: the data-level guard of actions whose writes
//! are operator writes (`Database::operator`), which RLS alone would not keep to one tenant.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Action, Caller, Cursor, Page};
use crate::config::Config;
use crate::db::{self, Database};
use crate::identity::Email;
use crate::identity::recovery::{self, Rule};
use crate::service_error::ServiceError;
use crate::tenancy::members::{self, Unknown};
use crate::tenancy::{self, TenantStatusChange};
use crate::vocabulary::{Role, Slug, TenantStatus};

/// A tenant as the platform area shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TenantView {
    pub tenant_id: Uuid,
    pub slug: String,
    pub name: String,
    #[schema(value_type = String, example = "active")]
    pub status: TenantStatus,
    pub is_platform: bool,
    pub require_mfa: bool,
    pub created_at: DateTime<Utc>,
}

impl From<db::tenants::TenantRow> for TenantView {
    fn from(t: db::tenants::TenantRow) -> Self {
        Self {
            tenant_id: t.id,
            slug: t.slug,
            name: t.name,
            status: t.status,
            is_platform: t.is_platform,
            require_mfa: t.require_mfa,
            created_at: t.created_at,
        }
    }
}

/// A new tenant and who is to be its first admin.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub slug: String,
    pub name: String,
    pub admin_email: String,
}

/// A one-time recovery link, shown once: how an admin without a password sets one.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AdminLink {
    pub link: String,
    pub expires_at: DateTime<Utc>,
}

/// Who was made admin of a tenant.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AppointedAdmin {
    pub user_id: Uuid,
    pub email: String,
    /// The role they had before (`None`: they were not a member).
    #[schema(value_type = Option<String>, example = "viewer")]
    pub previous_role: Option<Role>,
    /// They had no account and were invited (created without a password).
    pub invited: bool,
    /// When they have no password yet: a recovery link to set one, shown once.
    pub recovery_link: Option<AdminLink>,
}

/// A tenant that was created, with its first admin.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CreatedTenant {
    pub tenant: TenantView,
    pub admin: AppointedAdmin,
}

fn no_tenant() -> ServiceError {
    ServiceError::NotFound("no such tenant".into())
}

/// The permission table's check, then the data-level one: the caller's tenant, read under
/// Row Level Security, is the platform tenant. Both answer `NotFound`.
async fn platform_only(db: &Database, caller: &Caller) -> Result<(), ServiceError> {
    caller.require(Action::ManageTenants)?;
    let mut tx = db.tenant(caller.tenant_id).await?;
    let own = db::tenants::current_row(&mut tx).await?;
    tx.commit().await?;
    if own.is_some_and(|t| t.is_platform) { Ok(()) } else { Err(ServiceError::NotFound("no such resource".into())) }
}

/// A tenant's row, read in a transaction for it.
async fn row(db: &Database, tenant_id: Uuid) -> Result<Option<db::tenants::TenantRow>, ServiceError> {
    let mut tx = db.tenant(tenant_id).await?;
    let row = db::tenants::current_row(&mut tx).await?;
    tx.commit().await?;
    Ok(row)
}

/// A page of every tenant, by slug.
pub async fn list_tenants(db: &Database, caller: &Caller, cursor: &Cursor) -> Result<Page<TenantView>, ServiceError> {
    platform_only(db, caller).await?;
    let mut tx = db.unscoped().await?;
    let mut all = db::tenants::list(&mut tx).await?;
    tx.commit().await?;
    all.sort_by(|a, b| a.1.cmp(&b.1));
    let after = cursor.after.as_deref();
    let wanted = usize::try_from(cursor.fetch()).unwrap_or(usize::MAX);
    let mut rows = Vec::new();
    for (id, _) in all.into_iter().filter(|(_, slug)| after.is_none_or(|a| slug.as_str() > a)).take(wanted) {
        if let Some(r) = row(db, id).await? {
            rows.push(TenantView::from(r));
        }
    }
    Ok(cursor.page(rows, |t| t.slug.clone()))
}

/// One tenant by slug.
pub async fn get_tenant(db: &Database, caller: &Caller, slug: &str) -> Result<TenantView, ServiceError> {
    platform_only(db, caller).await?;
    let tenant = find(db, slug).await?;
    row(db, tenant.id).await?.map(TenantView::from).ok_or_else(no_tenant)
}

async fn find(db: &Database, slug: &str) -> Result<db::tenants::TenantRef, ServiceError> {
    if Slug::parse(slug).is_err() {
        return Err(no_tenant());
    }
    tenancy::find_tenant(db, slug).await.map_err(|e| match e {
        ServiceError::NotFound(_) => no_tenant(),
        other => other,
    })
}

/// Creates a tenant (`tenant.created`) and makes `admin_email` its admin (invited when they
/// have no account); an admin without a password gets a recovery link in the answer.
pub async fn create_tenant(
    db: &Database,
    config: &Config,
    caller: &Caller,
    new: NewTenant,
) -> Result<CreatedTenant, ServiceError> {
    platform_only(db, caller).await?;
    // Checked before the tenant exists, so a bad email leaves no tenant without an admin.
    let email = Email::parse(&new.admin_email)?;
    let created = tenancy::create_tenant_by(db, &caller.actor, &new.slug, &new.name, false).await?;
    let admin = make_admin(db, config, caller, created.tenant_id, email.as_str()).await?;
    let tenant = row(db, created.tenant_id).await?.map(TenantView::from).ok_or_else(no_tenant)?;
    Ok(CreatedTenant { tenant, admin })
}

/// Suspends or reactivates a tenant (`tenant.suspended` / `tenant.reactivated`); the platform
/// tenant cannot be suspended.
pub async fn set_suspended(
    db: &Database,
    caller: &Caller,
    slug: &str,
    suspend: bool,
) -> Result<TenantStatusChange, ServiceError> {
    platform_only(db, caller).await?;
    find(db, slug).await?;
    tenancy::set_suspended(db, &caller.actor, slug, suspend).await
}

/// Makes `email` an admin of tenant `slug`: adds them (invited when they have no account) or
/// promotes the member they are.
pub async fn appoint_admin(
    db: &Database,
    config: &Config,
    caller: &Caller,
    slug: &str,
    email: &str,
) -> Result<AppointedAdmin, ServiceError> {
    platform_only(db, caller).await?;
    let email = Email::parse(email)?;
    let tenant = find(db, slug).await?;
    make_admin(db, config, caller, tenant.id, email.as_str()).await
}

/// Adds or promotes `email` as admin of `tenant_id`, and issues a recovery link when they have
/// no password.
async fn make_admin(
    db: &Database,
    config: &Config,
    caller: &Caller,
    tenant_id: Uuid,
    email: &str,
) -> Result<AppointedAdmin, ServiceError> {
    let before = user_by_email(db, email).await?;
    let existing_role = match &before {
        Some(user) => {
            let mut tx = db.tenant(tenant_id).await?;
            let role = db::memberships::role_of(&mut tx, user.id).await?;
            tx.commit().await?;
            role
        }
        None => None,
    };
    let user_id = match (&before, existing_role) {
        (Some(user), Some(_)) => {
            members::set_role_in(db, &caller.actor, tenant_id, user.id, Role::Admin).await?;
            user.id
        }
        _ => members::add_member_in(db, &caller.actor, tenant_id, email, Role::Admin, Unknown::Invite).await?.user_id,
    };
    let has_password = before.as_ref().is_some_and(|u| u.password_hash.is_some());
    let recovery_link = if has_password {
        None
    } else {
        // A platform admin may recover anyone (`recovery::may_act`), which the checks above
        // established; `may_act` itself knows platform admins only as users, not as service
        // accounts of the platform tenant. The membership is checked in the transaction that
        // stores the link either way.
        let rule = if caller.platform_admin { Rule::Skipped } else { Rule::Checked };
        recovery::issue_link_under(db, config, &caller.actor, tenant_id, user_id, rule)
            .await?
            .map(|l| AdminLink { link: l.link, expires_at: l.expires_at })
    };
    Ok(AppointedAdmin {
        user_id,
        email: email.to_owned(),
        previous_role: existing_role,
        invited: before.is_none(),
        recovery_link,
    })
}

async fn user_by_email(db: &Database, email: &str) -> Result<Option<db::users::UserByEmail>, ServiceError> {
    let mut tx = db.unscoped().await?;
    let user = db::users::by_email(&mut tx, email).await?;
    tx.commit().await?;
    Ok(user)
}
