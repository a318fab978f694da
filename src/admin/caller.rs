//! Who is acting on the admin surface: a member of one tenant with their role *now*, or a
//! service account with its role now. The HTTP edge builds a [`Caller`] from an access token
//! (`tid`) or a browser session (a tenant among the user's own memberships), never from a
//! tenant id the caller sends (ARCHITECTURE.md, "Admin surface"). The operator at the command
//! line, who names the tenant, acts in it as its admin ([`Caller::operator`]).

use uuid::Uuid;

use super::permissions::{Action, Need};
use crate::db::audit::Actor;
use crate::db::{self, Database};
use crate::service_error::ServiceError;
use crate::vocabulary::{Role, TenantStatus};

/// Who acts: a user, a service account (a confidential client with a role), or the operator
/// at the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User(Uuid),
    Service(String),
    Operator,
}

/// Whether handlers check the permission table. Only tests turn the checks off
/// (`AppState::without_handler_checks`), to show that Row Level Security alone still keeps
/// every tenant's rows apart (`tests/it/admin_rls.rs`); nothing in configuration can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HandlerChecks {
    #[default]
    Enforced,
    /// Tests only.
    Disabled,
}

/// A member (or service account) acting for one tenant with one role.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant_id: Uuid,
    pub slug: String,
    pub tenant_name: String,
    pub role: Role,
    /// An admin of the platform tenant, acting for it.
    pub platform_admin: bool,
    pub principal: Principal,
    /// The audit actor of what this caller does (who, and from where).
    pub actor: Actor,
    checks: HandlerChecks,
}

impl Caller {
    /// The user as a member of `tenant_id`, with their role read now (a demotion takes effect
    /// at the next request); `None` when they are not a member or the tenant is suspended.
    /// `actor` carries the request's address; its kind and id are set here.
    pub async fn user(
        db: &Database,
        tenant_id: Uuid,
        user_id: Uuid,
        actor: Actor,
        checks: HandlerChecks,
    ) -> Result<Option<Caller>, ServiceError> {
        let mut tx = db.tenant(tenant_id).await?;
        let role = db::memberships::role_of(&mut tx, user_id).await?;
        let tenant = db::tenants::current_row(&mut tx).await?;
        tx.commit().await?;
        let (Some(role), Some(tenant)) = (role, tenant) else { return Ok(None) };
        let actor = Actor { kind: "user", id: Some(user_id.to_string()), ..actor };
        Ok(Self::in_tenant(tenant, role, Principal::User(user_id), actor, checks))
    }

    /// A service account of `tenant_id` with its role now; `None` when the client is gone,
    /// has no role, or the tenant is suspended.
    pub async fn service(
        db: &Database,
        tenant_id: Uuid,
        client_id: &str,
        actor: Actor,
        checks: HandlerChecks,
    ) -> Result<Option<Caller>, ServiceError> {
        let mut tx = db.tenant(tenant_id).await?;
        let client = db::clients::get(&mut tx, client_id).await?;
        let tenant = db::tenants::current_row(&mut tx).await?;
        tx.commit().await?;
        let (Some(client), Some(tenant)) = (client, tenant) else { return Ok(None) };
        let Some(role) = client.service_role else { return Ok(None) };
        let actor = Actor { kind: "client", id: Some(client.client_id.clone()), ..actor };
        Ok(Self::in_tenant(tenant, role, Principal::Service(client.client_id), actor, checks))
    }

    /// The operator of the command line acting in the tenant `slug` as its admin, whatever
    /// the tenant's status: whoever runs the command line holds the database already. Never
    /// a platform admin: platform actions are commands of their own.
    pub async fn operator(db: &Database, slug: &str, actor: Actor) -> Result<Caller, ServiceError> {
        let tenant = crate::tenancy::find_tenant(db, slug).await?;
        let mut tx = db.tenant(tenant.id).await?;
        let row = db::tenants::current_row(&mut tx).await?;
        tx.commit().await?;
        let row = row.ok_or_else(|| ServiceError::NotFound(format!("no tenant {slug:?}")))?;
        Ok(Caller {
            tenant_id: row.id,
            platform_admin: false,
            slug: row.slug,
            tenant_name: row.name,
            role: Role::Admin,
            principal: Principal::Operator,
            actor,
            checks: HandlerChecks::Enforced,
        })
    }

    /// The caller of an active tenant; `None` for a suspended one.
    fn in_tenant(
        tenant: db::tenants::TenantRow,
        role: Role,
        principal: Principal,
        actor: Actor,
        checks: HandlerChecks,
    ) -> Option<Caller> {
        (tenant.status == TenantStatus::Active).then(|| Caller {
            tenant_id: tenant.id,
            platform_admin: tenant.is_platform && role == Role::Admin,
            slug: tenant.slug,
            tenant_name: tenant.name,
            role,
            principal,
            actor,
            checks,
        })
    }

    /// Whether the permission table lets this caller take `action`.
    pub fn may(&self, action: Action) -> bool {
        action.allowed(self.role, self.platform_admin)
    }

    /// The handler's check against the permission table: `Forbidden` for a member whose role
    /// is too low, `NotFound` for a platform action asked by anyone but a platform admin.
    pub fn require(&self, action: Action) -> Result<(), ServiceError> {
        if self.checks == HandlerChecks::Disabled || self.may(action) {
            return Ok(());
        }
        match action.need() {
            Need::PlatformAdmin => Err(ServiceError::NotFound("no such resource".into())),
            Need::Role(least) => Err(ServiceError::Forbidden(format!(
                "this needs the {least} role in {:?}; you are {}",
                self.slug, self.role
            ))),
        }
    }

    /// The user behind this caller, if it is one.
    pub fn user_id(&self) -> Option<Uuid> {
        match &self.principal {
            Principal::User(id) => Some(*id),
            Principal::Service(_) | Principal::Operator => None,
        }
    }

    /// Whether the handlers check the table (see [`HandlerChecks`]).
    pub fn checks(&self) -> HandlerChecks {
        self.checks
    }
}
