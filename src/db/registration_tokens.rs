//! Initial access tokens of dynamic client registration (`registration_tokens`,
//! migrations/0027, RFC 7591 §3), found by the SHA-256 of the token.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Tx;

/// Stores a token in the transaction's tenant.
pub async fn insert(
    tx: &mut Tx,
    id: Uuid,
    token_hash: &[u8],
    created_by: &str,
    expires_at: DateTime<Utc>,
    uses: i32,
) -> Result<(), sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query(
        "INSERT INTO registration_tokens (tenant_id, id, token_hash, created_by, expires_at, uses_left) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant_id)
    .bind(id)
    .bind(token_hash)
    .bind(created_by)
    .bind(expires_at)
    .bind(uses)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The tenant of an open token (`lca_registration_token_tenant`).
pub async fn tenant_of(tx: &mut Tx, token_hash: &[u8]) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT lca_registration_token_tenant($1)").bind(token_hash).fetch_one(tx.conn()).await
}

/// Spends one use of an open token of the transaction's tenant, in one statement: its id, or
/// `None` (used up, expired, unknown).
pub async fn spend(tx: &mut Tx, token_hash: &[u8]) -> Result<Option<Uuid>, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query_scalar(
        "UPDATE registration_tokens SET uses_left = uses_left - 1 \
         WHERE tenant_id = $1 AND token_hash = $2 AND uses_left > 0 AND expires_at > now() RETURNING id",
    )
    .bind(tenant_id)
    .bind(token_hash)
    .fetch_optional(tx.conn())
    .await
}

/// Gives back the use a refused registration spent.
pub async fn refund(tx: &mut Tx, id: Uuid) -> Result<(), sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query("UPDATE registration_tokens SET uses_left = uses_left + 1 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}
