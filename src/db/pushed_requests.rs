//! Pushed authorization requests (`pushed_authorization_requests`, migrations/0024, RFC 9126):
//! kept by the SHA-256 of their `request_uri`'s random part, used once.

use chrono::{DateTime, Utc};

use super::Tx;

/// Keeps a checked request of `client_id` in the transaction's tenant: `params` is its
/// parameters as a JSON list of `[name, value]` pairs, in order.
pub async fn insert(
    tx: &mut Tx,
    uri_hash: &[u8],
    client_id: &str,
    params: &serde_json::Value,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query(
        "INSERT INTO pushed_authorization_requests (tenant_id, uri_hash, client_id, params, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(tenant_id)
    .bind(uri_hash)
    .bind(client_id)
    .bind(params)
    .bind(expires_at)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Uses the unexpired, unused request of `client_id` with this hash, in one statement: the
/// parameters, or `None` (unknown, expired, used, another client's: the last left untouched).
pub async fn consume(tx: &mut Tx, uri_hash: &[u8], client_id: &str) -> Result<Option<serde_json::Value>, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query_scalar(
        "UPDATE pushed_authorization_requests SET used_at = now() \
         WHERE tenant_id = $1 AND uri_hash = $2 AND client_id = $3 AND used_at IS NULL AND expires_at > now() \
         RETURNING params",
    )
    .bind(tenant_id)
    .bind(uri_hash)
    .bind(client_id)
    .fetch_optional(tx.conn())
    .await
}
