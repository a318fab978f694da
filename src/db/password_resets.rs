//! Self-service password reset links (`password_resets`, migrations/0021): stored as the
//! SHA-256 of the token, spent with one atomic statement.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Tx;

/// Stores a link for `user_id`.
pub async fn insert(
    tx: &mut Tx,
    token_hash: &[u8],
    user_id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO password_resets (token_hash, user_id, expires_at) VALUES ($1, $2, $3)")
        .bind(token_hash)
        .bind(user_id)
        .bind(expires_at)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// The user of a usable link, without spending it (for the form).
pub async fn usable(tx: &mut Tx, token_hash: &[u8]) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT user_id FROM password_resets WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()",
    )
    .bind(token_hash)
    .fetch_optional(tx.conn())
    .await
}

/// Spends a link: one atomic UPDATE, so it works once however many requests race. Returns
/// its user.
pub async fn consume(tx: &mut Tx, token_hash: &[u8]) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE password_resets SET used_at = now() \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() RETURNING user_id",
    )
    .bind(token_hash)
    .fetch_optional(tx.conn())
    .await
}

/// Spends every other open link of the user (a password set one way ends the others).
pub async fn end_for_user(tx: &mut Tx, user_id: Uuid) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("UPDATE password_resets SET used_at = now() WHERE user_id = $1 AND used_at IS NULL")
        .bind(user_id)
        .execute(tx.conn())
        .await?;
    Ok(done.rows_affected())
}
