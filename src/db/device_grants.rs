//! Device authorization grants (RFC 8628), the rows of `device_grants`: the device code, the
//! user code and where the request is. Every state change is one atomic statement on the
//! grant's row (see `migrations/0009_device.sql`).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Tx;
use crate::vocabulary::DeviceGrantStatus;

/// Stores a new pending grant in the transaction's tenant. `Ok(false)` when the user code is
/// taken already (the caller draws another).
pub async fn insert(
    tx: &mut Tx,
    device_code_hash: &[u8],
    user_code_hash: &[u8],
    client_id: &str,
    scope: &str,
    expires_at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    let done = sqlx::query(
        "INSERT INTO device_grants (tenant_id, device_code_hash, user_code_hash, client_id, scope, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_code_hash) DO NOTHING",
    )
    .bind(tenant_id)
    .bind(device_code_hash)
    .bind(user_code_hash)
    .bind(client_id)
    .bind(scope)
    .bind(expires_at)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The tenant of a device code (SECURITY DEFINER lookup).
pub async fn code_tenant(tx: &mut Tx, device_code_hash: &[u8]) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT lca_device_code_tenant($1)").bind(device_code_hash).fetch_one(tx.conn()).await
}

/// The tenant of a pending, unexpired grant by its user code (SECURITY DEFINER lookup).
pub async fn user_code_tenant(tx: &mut Tx, user_code_hash: &[u8]) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT lca_user_code_tenant($1)").bind(user_code_hash).fetch_one(tx.conn()).await
}

/// A pending grant as the device page shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingGrant {
    pub client_id: String,
    pub scope: String,
    pub expires_at: DateTime<Utc>,
}

/// The pending, unexpired grant of a user code in the transaction's tenant.
pub async fn pending_by_user_code(tx: &mut Tx, user_code_hash: &[u8]) -> Result<Option<PendingGrant>, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query_as(
        "SELECT client_id, scope, expires_at FROM device_grants \
         WHERE tenant_id = $1 AND user_code_hash = $2 AND status = 'pending' AND expires_at > now()",
    )
    .bind(tenant_id)
    .bind(user_code_hash)
    .fetch_optional(tx.conn())
    .await
}

/// Who decides, from their browser session.
#[derive(Debug, Clone)]
pub struct Decider<'a> {
    pub user_id: Uuid,
    /// The security stamp of the deciding session; redemption refuses an approval once the
    /// user's stamp has changed (ARCHITECTURE.md, "Security stamp").
    pub stamp: Uuid,
    pub auth_time: DateTime<Utc>,
    pub amr: &'a [String],
    pub acr: &'a str,
    pub sid: &'a str,
}

/// Approves or denies a pending, unexpired grant, atomically: of two decisions only the first
/// counts. Returns the client of the grant decided, `None` when there was none to decide.
pub async fn decide(
    tx: &mut Tx,
    user_code_hash: &[u8],
    approve: bool,
    who: &Decider<'_>,
) -> Result<Option<String>, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query_scalar(
        "UPDATE device_grants SET status = CASE WHEN $3 THEN 'approved' ELSE 'denied' END, decided_at = now(), \
           user_id = $4, auth_time = $5, amr = $6, acr = $7, sid = $8, security_stamp = $9 \
         WHERE tenant_id = $1 AND user_code_hash = $2 AND status = 'pending' AND expires_at > now() \
         RETURNING client_id",
    )
    .bind(tenant_id)
    .bind(user_code_hash)
    .bind(approve)
    .bind(who.user_id)
    .bind(who.auth_time)
    .bind(who.amr)
    .bind(who.acr)
    .bind(who.sid)
    .bind(who.stamp)
    .fetch_optional(tx.conn())
    .await
}

/// What one poll of the token endpoint found.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Poll {
    pub status: DeviceGrantStatus,
    pub expired: bool,
    /// This poll came sooner than the interval after the previous one (RFC 8628 §3.5).
    pub too_fast: bool,
    pub interval_secs: i32,
    pub family_id: Option<Uuid>,
}

/// Records a poll of a grant of `client_id`, atomically: the row is locked, the poll time
/// stored, and the interval raised by 5 s when this poll came too fast (a pending grant
/// only). `None` for an unknown code or another client's.
pub async fn poll(tx: &mut Tx, device_code_hash: &[u8], client_id: &str) -> Result<Option<Poll>, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query_as(
        "WITH prev AS ( \
           SELECT tenant_id, device_code_hash, status, \
                  status = 'pending' AND last_polled_at IS NOT NULL \
                    AND last_polled_at > now() - make_interval(secs => interval_secs) AS too_fast \
           FROM device_grants WHERE tenant_id = $1 AND device_code_hash = $2 AND client_id = $3 FOR UPDATE) \
         UPDATE device_grants d SET last_polled_at = now(), \
           interval_secs = CASE WHEN prev.too_fast THEN d.interval_secs + 5 ELSE d.interval_secs END \
         FROM prev WHERE d.tenant_id = prev.tenant_id AND d.device_code_hash = prev.device_code_hash \
         RETURNING d.status, d.expires_at <= now() AS expired, prev.too_fast, d.interval_secs, d.family_id",
    )
    .bind(tenant_id)
    .bind(device_code_hash)
    .bind(client_id)
    .fetch_optional(tx.conn())
    .await
}

/// The approval a redemption consumes.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Approval {
    pub user_id: Uuid,
    pub scope: String,
    pub auth_time: DateTime<Utc>,
    pub amr: Vec<String>,
    pub acr: String,
    pub sid: String,
    /// The approving user's security stamp is unchanged since the approval (as for codes:
    /// `authorization_codes::ConsumedCode::stamp_current`).
    pub stamp_current: bool,
}

/// Consumes an approved, unexpired grant, recording the family its tokens join. `None` when
/// it is not (or no longer) approved.
pub async fn consume(
    tx: &mut Tx,
    device_code_hash: &[u8],
    client_id: &str,
    family_id: Uuid,
) -> Result<Option<Approval>, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query_as(
        "UPDATE device_grants d SET status = 'consumed', consumed_at = now(), family_id = $4 \
         WHERE tenant_id = $1 AND device_code_hash = $2 AND client_id = $3 AND status = 'approved' \
           AND expires_at > now() AND user_id IS NOT NULL \
         RETURNING user_id, scope, auth_time, amr, acr, sid, \
           coalesce(security_stamp = (SELECT u.security_stamp FROM users u WHERE u.id = d.user_id), false) \
             AS stamp_current",
    )
    .bind(tenant_id)
    .bind(device_code_hash)
    .bind(client_id)
    .bind(family_id)
    .fetch_optional(tx.conn())
    .await
}

/// Refuses the user's approved requests not yet redeemed in the transaction's tenant (their
/// password changed, their second factor was reset): the device must be approved again.
pub async fn deny_approved_of_user(tx: &mut Tx, user_id: Uuid) -> Result<u64, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    Ok(sqlx::query(
        "UPDATE device_grants SET status = 'denied' WHERE tenant_id = $1 AND user_id = $2 AND status = 'approved'",
    )
    .bind(tenant_id)
    .bind(user_id)
    .execute(tx.conn())
    .await?
    .rows_affected())
}
