//! Devices of the caller's tenant: the live token families begun by the device authorization
//! grant (RFC 8628), one per device a member approved. Revoking one ends its refresh and
//! access tokens; the device must ask again.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Action, Caller, Cursor, Page};
use crate::db::Database;
use crate::db::audit;
use crate::db::families::{self, Kind, LiveFamily};
use crate::service_error::ServiceError;

/// A device signed in through the device grant.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DeviceView {
    pub family_id: Uuid,
    pub client_id: String,
    pub client_name: Option<String>,
    pub user_id: Option<Uuid>,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the family ends at the latest (refreshing never extends it).
    pub expires_at: DateTime<Utc>,
}

impl From<LiveFamily> for DeviceView {
    fn from(f: LiveFamily) -> Self {
        Self {
            family_id: f.family_id,
            client_id: f.client_id,
            client_name: f.client_name,
            user_id: f.user_id,
            email: f.email,
            created_at: f.created_at,
            expires_at: f.expires_at,
        }
    }
}

/// A page cursor's key read back as a family id.
pub(super) fn family_after(cursor: &Cursor) -> Result<Option<Uuid>, ServiceError> {
    match cursor.after.as_deref() {
        Some(key) => Ok(Some(key.parse::<Uuid>().map_err(|_| ServiceError::Invalid("unreadable cursor".into()))?)),
        None => Ok(None),
    }
}

/// A page of the tenant's live devices, of one member when `user_id` is given.
pub async fn list(
    db: &Database,
    caller: &Caller,
    user_id: Option<Uuid>,
    cursor: &Cursor,
) -> Result<Page<DeviceView>, ServiceError> {
    caller.require(Action::ReadDevices)?;
    let after = family_after(cursor)?;
    let mut tx = db.tenant(caller.tenant_id).await?;
    let rows = families::live_page(&mut tx, Kind::Device, user_id, after, cursor.fetch()).await?;
    tx.commit().await?;
    Ok(cursor.page(rows.into_iter().map(DeviceView::from).collect(), |d| d.family_id.to_string()))
}

/// Revokes a device (its family's refresh and access tokens); `device.revoked` with reason
/// `device_revoked`. `NotFound` when the id is not a live device family of this tenant.
pub async fn revoke(db: &Database, caller: &Caller, family_id: Uuid) -> Result<(), ServiceError> {
    caller.require(Action::ManageDevices)?;
    let mut tx = db.tenant(caller.tenant_id).await?;
    let Some((client_id, user_id)) = families::revoke_device(&mut tx, family_id).await? else {
        return Err(ServiceError::NotFound("no such device".into()));
    };
    let details = serde_json::json!({ "client_id": client_id, "user_id": user_id, "reason": "device_revoked" });
    let event = caller.actor.event("device.revoked", ("token_family", Some(family_id.to_string())), details);
    audit::append(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(())
}
