//! Appending to the audit log: one hash chain per tenant.
//!
//! Appends to one tenant's chain are serialised by a transaction-level advisory lock on the
//! tenant, so concurrent writers never fork the chain; the row is written in the caller's
//! transaction, so the event and the action it records commit (or fail) together.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::Tx;

/// One event, as the caller describes it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Event<'a> {
    pub actor_kind: &'a str,
    pub actor_id: Option<String>,
    pub target_kind: Option<&'a str>,
    pub target_id: Option<String>,
    pub action: &'a str,
    pub outcome: &'a str,
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub details: serde_json::Value,
}

/// Appends `event` to the chain of the transaction's tenant.
pub async fn append(tx: &mut Tx, event: &Event<'_>) -> Result<(), sqlx::Error> {
    let tenant_id = tx.tenant_id().unwrap_or_default();
    // hashtextextended gives a stable 64-bit key per tenant for the advisory lock.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('audit:' || $1::text, 0))")
        .bind(tenant_id)
        .execute(tx.conn())
        .await?;
    let head: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, hash FROM audit_events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1")
            .bind(tenant_id)
            .fetch_optional(tx.conn())
            .await?;
    let (seq, prev_hash) = head.map_or((1, vec![0u8; 32]), |(seq, hash)| (seq + 1, hash));
    // Microseconds: the precision PostgreSQL stores, so the hash can be recomputed from the row.
    let now = chrono::Utc::now();
    let occurred_at = chrono::DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
    let details = if event.details.is_null() { serde_json::json!({}) } else { event.details.clone() };
    let hash = chain_hash(tenant_id, seq, occurred_at, event, &details, &prev_hash);
    sqlx::query(
        "INSERT INTO audit_events (tenant_id, seq, occurred_at, actor_kind, actor_id, target_kind, target_id, action, \
         outcome, ip, user_agent, request_id, details, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::inet, $11, $12, $13, $14, $15)",
    )
    .bind(tenant_id)
    .bind(seq)
    .bind(occurred_at)
    .bind(event.actor_kind)
    .bind(&event.actor_id)
    .bind(event.target_kind)
    .bind(&event.target_id)
    .bind(event.action)
    .bind(event.outcome)
    .bind(event.ip.map(|ip| ip.to_string()))
    .bind(&event.user_agent)
    .bind(&event.request_id)
    .bind(&details)
    .bind(&prev_hash)
    .bind(hash.as_slice())
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// SHA-256 over a canonical encoding of the row and the previous row's hash. Timestamps are
/// encoded as microseconds, the precision PostgreSQL keeps.
fn chain_hash(
    tenant_id: Uuid,
    seq: i64,
    occurred_at: chrono::DateTime<chrono::Utc>,
    e: &Event<'_>,
    details: &serde_json::Value,
    prev_hash: &[u8],
) -> [u8; 32] {
    let canonical = serde_json::json!([
        tenant_id,
        seq,
        occurred_at.timestamp_micros(),
        e.actor_kind,
        e.actor_id,
        e.target_kind,
        e.target_id,
        e.action,
        e.outcome,
        e.ip.map(|ip| ip.to_string()),
        e.user_agent,
        e.request_id,
        details,
        hex::encode(prev_hash),
    ]);
    Sha256::digest(canonical.to_string().as_bytes()).into()
}
