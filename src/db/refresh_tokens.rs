//! Refresh tokens (RFC 6749 §6): each belongs to a token family (`db::families`) and is used
//! once; a refresh stores its successor. A token is marked used by one atomic
//! `UPDATE … WHERE used_at IS NULL RETURNING`, so of concurrent refreshes exactly one wins, and
//! a second use is told apart as reuse (ARCHITECTURE.md, "Single-use things").

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Tx;
use super::families::{self, Family};

/// What presenting a refresh token found.
#[derive(Debug)]
pub enum RefreshUse {
    /// The token was valid and is now used; its family is returned for the new tokens.
    Rotated(Family),
    /// The token had been used before: reuse. Its family id is returned to revoke.
    Reused(Uuid),
    /// Unknown, expired, or its family is revoked or over.
    Invalid,
}

/// The tenant a refresh token belongs to (SECURITY DEFINER lookup).
pub async fn tenant_of(tx: &mut Tx, token_hash: &[u8]) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT lca_refresh_token_tenant($1)").bind(token_hash).fetch_one(tx.conn()).await
}

/// Marks a refresh token of `client_id` used, atomically, and says what it was. Another
/// client's token is `Invalid` and stays untouched.
pub async fn consume(tx: &mut Tx, token_hash: &[u8], client_id: &str) -> Result<RefreshUse, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    let used: Option<Uuid> = sqlx::query_scalar(
        "UPDATE refresh_tokens r SET used_at = now() FROM token_families f \
         WHERE r.tenant_id = $1 AND r.token_hash = $2 AND r.used_at IS NULL AND r.expires_at > now() \
           AND f.tenant_id = r.tenant_id AND f.family_id = r.family_id AND f.client_id = $3 \
         RETURNING r.family_id",
    )
    .bind(tenant_id)
    .bind(token_hash)
    .bind(client_id)
    .fetch_optional(tx.conn())
    .await?;
    if let Some(family_id) = used {
        let family = families::by_id(tx, family_id).await?;
        return Ok(match family {
            Some(f) if f.revoked_at.is_none() && f.expires_at > Utc::now() => RefreshUse::Rotated(f),
            _ => RefreshUse::Invalid,
        });
    }
    let earlier: Option<(Uuid, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT r.family_id, r.used_at FROM refresh_tokens r JOIN token_families f \
           ON f.tenant_id = r.tenant_id AND f.family_id = r.family_id \
         WHERE r.tenant_id = $1 AND r.token_hash = $2 AND f.client_id = $3",
    )
    .bind(tenant_id)
    .bind(token_hash)
    .bind(client_id)
    .fetch_optional(tx.conn())
    .await?;
    Ok(match earlier {
        Some((family_id, Some(_))) => RefreshUse::Reused(family_id),
        _ => RefreshUse::Invalid,
    })
}

/// Stores a new refresh token (its hash).
pub async fn insert(
    tx: &mut Tx,
    token_hash: &[u8],
    family_id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query("INSERT INTO refresh_tokens (tenant_id, token_hash, family_id, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(tenant_id)
        .bind(token_hash)
        .bind(family_id)
        .bind(expires_at)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// A refresh token's family, whether it can still be used, and when it expires
/// (introspection, revocation).
pub async fn state(tx: &mut Tx, token_hash: &[u8]) -> Result<Option<(Family, bool, DateTime<Utc>)>, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    let row: Option<(Uuid, bool, DateTime<Utc>)> = sqlx::query_as(
        "SELECT family_id, used_at IS NULL AND expires_at > now(), expires_at FROM refresh_tokens \
         WHERE tenant_id = $1 AND token_hash = $2",
    )
    .bind(tenant_id)
    .bind(token_hash)
    .fetch_optional(tx.conn())
    .await?;
    let Some((family_id, usable, expires_at)) = row else { return Ok(None) };
    Ok(families::by_id(tx, family_id).await?.map(|f| {
        let live = usable && f.revoked_at.is_none() && f.expires_at > Utc::now();
        (f, live, expires_at)
    }))
}
