//! The DPoP replay cache (`dpop_proofs`, migrations/0026, RFC 9449 §11.1).

use chrono::{DateTime, Utc};

use super::Tx;

/// Records a proof by `key_hash` (SHA-256 of its key's thumbprint and its `jti`) until
/// `expires_at`; `false` when it was recorded already: a replay. One statement, so two
/// concurrent uses of one proof cannot both pass.
pub async fn first_use(tx: &mut Tx, key_hash: &[u8], expires_at: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("INSERT INTO dpop_proofs (key_hash, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(key_hash)
        .bind(expires_at)
        .execute(tx.conn())
        .await?;
    Ok(done.rows_affected() == 1)
}
