//! Email verification links (`email_verifications`, migrations/0022): stored as the SHA-256
//! of the token with the address they were sent to, spent with one atomic statement.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Tx;

/// Stores a link for `user_id`'s address `email`.
pub async fn insert(
    tx: &mut Tx,
    token_hash: &[u8],
    user_id: Uuid,
    email: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO email_verifications (token_hash, user_id, email, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(token_hash)
        .bind(user_id)
        .bind(email)
        .bind(expires_at)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// The user of a usable link, without spending it (for the page).
pub async fn usable(tx: &mut Tx, token_hash: &[u8]) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT user_id FROM email_verifications WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()",
    )
    .bind(token_hash)
    .fetch_optional(tx.conn())
    .await
}

/// Spends a link: one atomic UPDATE. Returns its user and the address it was sent to.
pub async fn consume(tx: &mut Tx, token_hash: &[u8]) -> Result<Option<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE email_verifications SET used_at = now() \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() RETURNING user_id, email",
    )
    .bind(token_hash)
    .fetch_optional(tx.conn())
    .await
}

/// Spends every open link of the user (the address is verified, one way or another).
pub async fn end_for_user(tx: &mut Tx, user_id: Uuid) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("UPDATE email_verifications SET used_at = now() WHERE user_id = $1 AND used_at IS NULL")
        .bind(user_id)
        .execute(tx.conn())
        .await?;
    Ok(done.rows_affected())
}
