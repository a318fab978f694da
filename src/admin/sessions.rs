//! Sessions of the caller's tenant: the live token families that a sign-in through one of its
//! clients began (every family not begun by the device grant, which are devices,
//! `super::devices`). Ending one ends its refresh and access tokens.
//!
//! A person's browser sign-in at this provider is not a tenant's row: it is theirs, across
//! every tenant they belong to. An admin ends it only by signing the member out everywhere
//! (`super::members::act_on`), which also ends the member's families.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::devices::{count_live, live_page};
use super::{Action, Caller, Cursor, Page};
use crate::db::Database;
use crate::db::families::{self, Kind};
use crate::service_error::ServiceError;

/// A live session: what one sign-in through a client issued; read straight from
/// `families::live_page`, so the field names are its columns.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct SessionView {
    pub family_id: Uuid,
    pub client_id: String,
    pub client_name: Option<String>,
    pub user_id: Option<Uuid>,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the family ends at the latest (refreshing never extends it).
    pub expires_at: DateTime<Utc>,
    /// When the user authenticated for it.
    pub auth_time: Option<DateTime<Utc>>,
    /// The authentication context class (a second factor or not).
    pub acr: Option<String>,
    /// When the session's client last refreshed its tokens, and from where.
    pub last_refresh_at: Option<DateTime<Utc>>,
    pub last_refresh_ip: Option<String>,
}

/// A page of the tenant's live sessions, of one member when `user_id` is given.
pub async fn list(
    db: &Database,
    caller: &Caller,
    user_id: Option<Uuid>,
    cursor: &Cursor,
) -> Result<Page<SessionView>, ServiceError> {
    live_page(db, caller, Kind::Session, user_id, cursor, |s: &SessionView| s.family_id).await
}

/// How many live sessions the tenant has.
pub async fn count(db: &Database, caller: &Caller) -> Result<u64, ServiceError> {
    count_live(db, caller, Kind::Session).await
}
/// Ends one session; `token_family.revoked` with reason `ended_by_admin`. `NotFound` when the
/// id is not a live session of this tenant (a device is ended through `super::devices`).
pub async fn end(db: &Database, caller: &Caller, family_id: Uuid) -> Result<(), ServiceError> {
    caller.require(Action::EndSessions)?;
    let mut tx = db.tenant(caller.tenant_id).await?;
    if !families::revoke_session(&mut tx, &caller.actor, family_id, "ended_by_admin").await? {
        return Err(ServiceError::NotFound("no such session".into()));
    }
    tx.commit().await?;
    Ok(())
}
