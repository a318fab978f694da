//! Devices of the caller's tenant: the live token families begun by the device authorization
//! grant (RFC 8628), one per device a member approved. Revoking one ends its refresh and
//! access tokens; the device must ask again.
//!
//! Devices and sessions (`super::sessions`) are both live families of the tenant, told apart
//! by the grant that began them (`families::Kind`); [`live_page`] and [`count_live`] serve both.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Action, Caller, Cursor, Page};
use crate::db::Database;
use crate::db::audit;
use crate::db::families::{self, Kind, LiveRow};
use crate::service_error::ServiceError;

/// A device signed in through the device grant; read straight from `families::live_page`, so
/// the field names are its columns.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct DeviceView {
    pub family_id: Uuid,
    pub client_id: String,
    pub client_name: Option<String>,
    pub user_id: Option<Uuid>,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the family ends at the latest (refreshing never extends it).
    pub expires_at: DateTime<Utc>,
    /// When the device last refreshed (its "last seen"); `None` before its first refresh.
    pub last_refresh_at: Option<DateTime<Utc>>,
    /// The address it last refreshed from.
    pub last_refresh_ip: Option<String>,
}

/// The permission-table action that reads the families of `kind`.
fn read(kind: Kind) -> Action {
    match kind {
        Kind::Device => Action::ReadDevices,
        Kind::Session => Action::ReadSessions,
    }
}

/// A page of the tenant's live families of `kind`, of one member when `user_id` is given;
/// `family_id` is a row's key (the cursor names the last row's).
pub(super) async fn live_page<T: LiveRow>(
    db: &Database,
    caller: &Caller,
    kind: Kind,
    user_id: Option<Uuid>,
    cursor: &Cursor,
    family_id: impl Fn(&T) -> Uuid,
) -> Result<Page<T>, ServiceError> {
    caller.require(read(kind))?;
    let after = match cursor.after.as_deref() {
        Some(key) => Some(key.parse::<Uuid>().map_err(|_| ServiceError::Invalid("unreadable cursor".into()))?),
        None => None,
    };
    let mut tx = db.tenant(caller.tenant_id).await?;
    let rows = families::live_page(&mut tx, kind, user_id, after, cursor.fetch()).await?;
    tx.commit().await?;
    Ok(cursor.page(rows, |row| family_id(row).to_string()))
}

/// How many live families of `kind` the tenant has.
pub(super) async fn count_live(db: &Database, caller: &Caller, kind: Kind) -> Result<u64, ServiceError> {
    caller.require(read(kind))?;
    let mut tx = db.tenant(caller.tenant_id).await?;
    let n = families::count_live(&mut tx, kind).await?;
    tx.commit().await?;
    Ok(u64::try_from(n).unwrap_or_default())
}

/// A page of the tenant's live devices, of one member when `user_id` is given.
pub async fn list(
    db: &Database,
    caller: &Caller,
    user_id: Option<Uuid>,
    cursor: &Cursor,
) -> Result<Page<DeviceView>, ServiceError> {
    live_page(db, caller, Kind::Device, user_id, cursor, |d: &DeviceView| d.family_id).await
}

/// How many live devices the tenant has.
pub async fn count(db: &Database, caller: &Caller) -> Result<u64, ServiceError> {
    count_live(db, caller, Kind::Device).await
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
