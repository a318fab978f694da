//! A user's passkeys (migrations/0029), in a transaction for that user
//! ([`super::Database::user`]). The credential is kept as the JSON webauthn-rs writes; what it
//! means is `identity::passkeys`' business.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Tx;

/// One passkey as the account page lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PasskeyLine {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// One passkey as a ceremony needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredPasskey {
    pub id: Uuid,
    pub credential: sqlx::types::Json<serde_json::Value>,
}

/// The user's passkeys, oldest first.
pub async fn of_user(tx: &mut Tx, user_id: Uuid) -> Result<Vec<PasskeyLine>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, created_at, last_used_at FROM passkeys WHERE user_id = $1 ORDER BY created_at, id")
        .bind(user_id)
        .fetch_all(tx.conn())
        .await
}

/// The user's credentials, for a ceremony's allowed and excluded lists.
pub async fn credentials(tx: &mut Tx, user_id: Uuid) -> Result<Vec<StoredPasskey>, sqlx::Error> {
    sqlx::query_as("SELECT id, credential FROM passkeys WHERE user_id = $1 ORDER BY created_at, id")
        .bind(user_id)
        .fetch_all(tx.conn())
        .await
}

/// The user's passkey with this credential id, locked until the transaction ends: two
/// sign-ins with one credential take turns, so the second sees the first's counter.
pub async fn by_credential_id(
    tx: &mut Tx,
    user_id: Uuid,
    credential_id: &[u8],
) -> Result<Option<StoredPasskey>, sqlx::Error> {
    sqlx::query_as("SELECT id, credential FROM passkeys WHERE user_id = $1 AND credential_id = $2 FOR UPDATE")
        .bind(user_id)
        .bind(credential_id)
        .fetch_optional(tx.conn())
        .await
}

/// Stores a new passkey; false when its credential id is registered already (to this user or
/// another: the unique index sees every row, whoever's transaction this is).
pub async fn add(
    tx: &mut Tx,
    user_id: Uuid,
    id: Uuid,
    credential_id: &[u8],
    name: &str,
    credential: &serde_json::Value,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO passkeys (id, user_id, credential_id, name, credential) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (credential_id) DO NOTHING",
    )
    .bind(id)
    .bind(user_id)
    .bind(credential_id)
    .bind(name)
    .bind(sqlx::types::Json(credential))
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a sign-in with the passkey: its last use, and its credential as the ceremony left
/// it (the signature counter and backup state move).
pub async fn used(tx: &mut Tx, id: Uuid, credential: &serde_json::Value) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE passkeys SET last_used_at = now(), credential = $2 WHERE id = $1")
        .bind(id)
        .bind(sqlx::types::Json(credential))
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Removes one of the user's passkeys; its name, or `None` when the user has no such passkey.
pub async fn remove(tx: &mut Tx, user_id: Uuid, id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("DELETE FROM passkeys WHERE user_id = $1 AND id = $2 RETURNING name")
        .bind(user_id)
        .bind(id)
        .fetch_optional(tx.conn())
        .await
}
