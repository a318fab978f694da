//! One-time recovery links (`recovery_links`).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Tx;

/// Stores a link for a member of the transaction's tenant.
pub async fn insert(
    tx: &mut Tx,
    token_hash: &[u8],
    user_id: Uuid,
    issued_by: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO recovery_links (tenant_id, token_hash, user_id, issued_by, expires_at) \
         VALUES (NULLIF(current_setting('app.tenant_id', true), '')::uuid, $1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(issued_by)
    .bind(expires_at)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The tenant of a link, found by its hash alone (SECURITY DEFINER lookup).
pub async fn tenant_of(tx: &mut Tx, token_hash: &[u8]) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT lca_recovery_link_tenant($1)").bind(token_hash).fetch_one(tx.conn()).await
}

/// The user and issuer of a usable link, without using it.
pub async fn usable(tx: &mut Tx, token_hash: &[u8]) -> Result<Option<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT user_id, issued_by FROM recovery_links WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()",
    )
    .bind(token_hash)
    .fetch_optional(tx.conn())
    .await
}

/// Uses a link: one atomic UPDATE, so it works once however many requests race.
pub async fn consume(tx: &mut Tx, token_hash: &[u8]) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE recovery_links SET used_at = now() \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() RETURNING user_id",
    )
    .bind(token_hash)
    .fetch_optional(tx.conn())
    .await
}
