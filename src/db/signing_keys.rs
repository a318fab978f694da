//! Signing key rows (`migrations/0004_signing_keys.sql`). The table is global, so these run in
//! transactions without a tenant, or the platform tenant's (for its audit row). Reads work in
//! any transaction; [`insert`] and [`retire_active`] need an owner-pool transaction
//! ([`Database::operator`](super::Database::operator)): request connections may only read keys
//! (`migrations/0010_runtime_login.sql`).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Tx;

/// The advisory lock that serialises creating and rotating keys across processes
/// (`"lca_keys"` in ASCII, so it is recognisable in `pg_locks`).
const KEYS_LOCK: i64 = 0x6c63_615f_6b65_7973;

/// A key as stored. `Debug` leaves out the sealed private part.
#[derive(Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    pub public_jwk: serde_json::Value,
    /// nonce || AES-256-GCM ciphertext of the private JWK (see `tokens::seal`).
    pub private_enc: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
    pub publish_until: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for KeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRow")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private_enc", &"[redacted]")
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .field("publish_until", &self.publish_until)
            .finish_non_exhaustive()
    }
}

/// A key retired by [`retire_active`].
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RetiredKey {
    pub kid: String,
    pub alg: String,
    pub publish_until: DateTime<Utc>,
}

/// Takes the keys lock until the transaction ends. Every writer takes it first, so "which
/// algorithms lack a key" followed by inserts is not a race.
pub async fn lock(tx: &mut Tx) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(KEYS_LOCK).execute(tx.conn()).await?;
    Ok(())
}

/// The algorithms that have an active (signing) key.
pub async fn active_algs(tx: &mut Tx) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT alg FROM signing_keys WHERE retired_at IS NULL").fetch_all(tx.conn()).await
}

/// The keys the JWKS publishes: active ones, then retired ones whose tokens may still be
/// alive, newest first.
pub async fn published(tx: &mut Tx) -> Result<Vec<KeyRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT kid, alg, public_jwk, private_enc, created_at, retired_at, publish_until \
         FROM signing_keys WHERE retired_at IS NULL OR publish_until > now() \
         ORDER BY retired_at IS NOT NULL, created_at DESC, kid",
    )
    .fetch_all(tx.conn())
    .await
}

/// Inserts a new active key. Fails with a unique violation on `signing_keys_active_alg_key`
/// when `alg` already has one.
pub async fn insert(
    tx: &mut Tx,
    kid: &str,
    alg: &str,
    public_jwk: &serde_json::Value,
    private_enc: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO signing_keys (kid, alg, public_jwk, private_enc) VALUES ($1, $2, $3, $4)")
        .bind(kid)
        .bind(alg)
        .bind(public_jwk)
        .bind(private_enc)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Retires every active key; each stays published for `publish_for` from now.
pub async fn retire_active(tx: &mut Tx, publish_for: Duration) -> Result<Vec<RetiredKey>, sqlx::Error> {
    // Bounded (ten years) so the interval arithmetic cannot overflow.
    let millis = publish_for.as_millis().min(10 * 365 * 24 * 3600 * 1000) as i64;
    sqlx::query_as(
        "UPDATE signing_keys \
         SET retired_at = now(), publish_until = now() + $1 * interval '1 millisecond' \
         WHERE retired_at IS NULL RETURNING kid, alg, publish_until",
    )
    .bind(millis)
    .fetch_all(tx.conn())
    .await
}
