//! The caller's tenant's settings: its name and status to read, and whether every member needs
//! a second factor, to read and change.

use chrono::{DateTime, Utc};

use super::{Action, Caller};
use crate::db::{self, Database};
use crate::service_error::ServiceError;
use crate::tenancy;
use crate::vocabulary::TenantStatus;

/// The tenant as its settings page and `GET /settings` show it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TenantSettings {
    pub slug: String,
    pub name: String,
    #[schema(value_type = String, example = "active")]
    pub status: TenantStatus,
    /// Every member needs a second factor at their next sign-in for this tenant.
    pub require_mfa: bool,
    pub created_at: DateTime<Utc>,
}

/// What may change; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct SettingsChange {
    pub require_mfa: Option<bool>,
}

/// The caller's tenant's settings.
pub async fn get(db: &Database, caller: &Caller) -> Result<TenantSettings, ServiceError> {
    caller.require(Action::ReadSettings)?;
    let mut tx = db.tenant(caller.tenant_id).await?;
    let row = db::tenants::current_row(&mut tx).await?;
    tx.commit().await?;
    let row = row.ok_or_else(|| ServiceError::NotFound("no such tenant".into()))?;
    Ok(TenantSettings {
        slug: row.slug,
        name: row.name,
        status: row.status,
        require_mfa: row.require_mfa,
        created_at: row.created_at,
    })
}

/// Changes the caller's tenant's settings; `tenant.mfa_policy_changed` when the MFA policy
/// changed (an operator transaction for this tenant: request connections may not write
/// tenants, ARCHITECTURE.md "Admin surface"). Answers the settings as they are after.
pub async fn update(db: &Database, caller: &Caller, change: SettingsChange) -> Result<TenantSettings, ServiceError> {
    caller.require(Action::ManageSettings)?;
    if change.require_mfa.is_none() {
        return Err(ServiceError::Invalid("nothing to change: give require_mfa".into()));
    }
    if let Some(require) = change.require_mfa {
        tenancy::set_require_mfa_in(db, &caller.actor, caller.tenant_id, require).await?;
    }
    get(db, caller).await
}
