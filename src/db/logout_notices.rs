//! Back-channel logout notices (`logout_notices`, migrations/0025): an outbox written in the
//! transaction of what ended a user's sessions, delivered by `crate::backchannel`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Tx;

/// A notice to deliver.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Notice {
    pub id: Uuid,
    pub client_id: String,
    pub uri: String,
    pub user_id: Uuid,
    pub sid: Option<String>,
    pub attempts: i32,
    pub signing_alg: Option<String>,
}

/// Writes one notice for each live token family of `user_id` in the transaction's tenant
/// whose client has a back-channel logout URI (one per client and session), naming the
/// session when `sid` is given only that session's families. Run before the families are
/// ended. Returns how many were written.
pub async fn enqueue(tx: &mut Tx, user_id: Uuid, sid: Option<&str>, reason: &str) -> Result<u64, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    let done = sqlx::query(
        "INSERT INTO logout_notices (tenant_id, id, client_id, uri, user_id, sid, reason) \
         SELECT DISTINCT ON (f.client_id, f.sid) $1, gen_random_uuid(), f.client_id, c.backchannel_logout_uri, \
                f.user_id, f.sid, $4 \
         FROM token_families f JOIN clients c ON c.client_id = f.client_id \
         WHERE f.tenant_id = $1 AND f.user_id = $2 AND f.revoked_at IS NULL AND f.expires_at > now() \
           AND c.backchannel_logout_uri IS NOT NULL AND ($3::text IS NULL OR f.sid = $3)",
    )
    .bind(tenant_id)
    .bind(user_id)
    .bind(sid)
    .bind(reason)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected())
}

/// The tenants with a notice due now (`lca_logout_notice_tenants`).
pub async fn due_tenants(tx: &mut Tx) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT lca_logout_notice_tenants()").fetch_all(tx.conn()).await
}

/// Claims up to `limit` notices of the transaction's tenant that are due, for one delivery
/// attempt: their next attempt moves `lease_secs` ahead, so no other worker (another instance's)
/// takes them while this one posts, and none is lost if this one dies. One statement
/// (`SKIP LOCKED`: rows another worker is claiming are left to it).
pub async fn claim(tx: &mut Tx, limit: i64, lease_secs: i64) -> Result<Vec<Notice>, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query_as(
        "UPDATE logout_notices n SET next_attempt_at = now() + make_interval(secs => $3) \
         FROM (SELECT id FROM logout_notices \
               WHERE tenant_id = $1 AND delivered_at IS NULL AND abandoned_at IS NULL AND next_attempt_at <= now() \
               ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) due \
         WHERE n.tenant_id = $1 AND n.id = due.id \
         RETURNING n.id, n.client_id, n.uri, n.user_id, n.sid, n.attempts, \
           (SELECT c.signing_alg FROM clients c WHERE c.client_id = n.client_id) AS signing_alg",
    )
    .bind(tenant_id)
    .bind(limit)
    .bind(lease_secs as f64)
    .fetch_all(tx.conn())
    .await
}

/// Records a delivery.
pub async fn delivered(tx: &mut Tx, id: Uuid) -> Result<(), sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query(
        "UPDATE logout_notices SET delivered_at = now(), attempts = attempts + 1, last_error = NULL \
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(id)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Records a failed attempt: the next one at `next`, or none (`None`: given up).
pub async fn failed(tx: &mut Tx, id: Uuid, error: &str, next: Option<DateTime<Utc>>) -> Result<(), sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query(
        "UPDATE logout_notices SET attempts = attempts + 1, last_error = left($3, 500), \
           next_attempt_at = coalesce($4, next_attempt_at), abandoned_at = CASE WHEN $4 IS NULL THEN now() END \
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(id)
    .bind(error)
    .bind(next)
    .execute(tx.conn())
    .await?;
    Ok(())
}
