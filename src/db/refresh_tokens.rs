//! Refresh tokens (RFC 6749 §6): each belongs to a token family (`db::families`) and is used
//! once; a refresh stores its successor. A token is marked used by one atomic
//! `UPDATE … WHERE used_at IS NULL RETURNING`, so of concurrent refreshes exactly one wins, and
//! a second use is told apart as reuse (ARCHITECTURE.md, "Single-use things").
//!
//! A client with a lost-response grace window (`clients.refresh_grace_secs`) may present a
//! just-used token again within the window and get the pair its use issued, kept sealed on the
//! used token's row ([`keep_successor`]), as long as the successor itself is unused
//! (ARCHITECTURE.md, "Tokens").

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
    /// The token was used within the client's grace window, its successor is still unused and
    /// its family live: a retry after a lost response, answered with the pair its use issued.
    Retry {
        family_id: Uuid,
        /// The pair as [`keep_successor`] sealed it.
        sealed: Vec<u8>,
        /// When the token was used (the pair was issued).
        used_at: DateTime<Utc>,
    },
    /// Unknown, expired, or its family is revoked or over.
    Invalid,
}

/// The tenant a refresh token belongs to (SECURITY DEFINER lookup).
pub async fn tenant_of(tx: &mut Tx, token_hash: &[u8]) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT lca_refresh_token_tenant($1)").bind(token_hash).fetch_one(tx.conn()).await
}

/// Marks a refresh token of `client_id` used, atomically, and says what it was. Another
/// client's token is `Invalid` and stays untouched. `grace_secs` is the client's lost-response
/// window (0: none). A rotation records `ip` as the family's last refresh.
pub async fn consume(
    tx: &mut Tx,
    token_hash: &[u8],
    client_id: &str,
    grace_secs: i32,
    ip: Option<std::net::IpAddr>,
) -> Result<RefreshUse, sqlx::Error> {
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
        let family = families::touch(tx, family_id, ip).await?;
        return Ok(match family {
            Some(f) if f.revoked_at.is_none() && f.expires_at > Utc::now() => RefreshUse::Rotated(f),
            _ => RefreshUse::Invalid,
        });
    }
    // Not usable: used before (a retry inside the window, or reuse), or unknown. Under READ
    // COMMITTED a presentation that waited on the row lock of the use that won sees that use
    // committed here, its sealed pair included.
    let earlier: Option<Earlier> = sqlx::query_as(
        "SELECT r.family_id, r.used_at, \
                CASE WHEN r.used_at > now() - make_interval(secs => $4) AND s.used_at IS NULL \
                      AND f.revoked_at IS NULL AND f.expires_at > now() \
                     THEN r.successor_sealed END AS retry \
           FROM refresh_tokens r JOIN token_families f \
             ON f.tenant_id = r.tenant_id AND f.family_id = r.family_id \
           LEFT JOIN refresh_tokens s ON s.tenant_id = r.tenant_id AND s.token_hash = r.successor_hash \
         WHERE r.tenant_id = $1 AND r.token_hash = $2 AND f.client_id = $3",
    )
    .bind(tenant_id)
    .bind(token_hash)
    .bind(client_id)
    .bind(f64::from(grace_secs.max(0)))
    .fetch_optional(tx.conn())
    .await?;
    Ok(match earlier {
        Some(Earlier { family_id, used_at: Some(used_at), retry: Some(sealed) }) if grace_secs > 0 => {
            RefreshUse::Retry { family_id, sealed, used_at }
        }
        Some(Earlier { family_id, used_at: Some(_), .. }) => RefreshUse::Reused(family_id),
        _ => RefreshUse::Invalid,
    })
}

/// A refresh token that was not usable, as [`consume`] reads it.
#[derive(sqlx::FromRow)]
struct Earlier {
    family_id: Uuid,
    used_at: Option<DateTime<Utc>>,
    /// The sealed pair, when a retry is within the grace window.
    retry: Option<Vec<u8>>,
}

/// Keeps the pair that using `token_hash` issued, sealed, beside its successor's hash, for a
/// retry within the grace window; wipes the pair an earlier rotation of the family kept, so a
/// family holds one at most. One statement.
pub async fn keep_successor(
    tx: &mut Tx,
    family_id: Uuid,
    token_hash: &[u8],
    successor_hash: &[u8],
    sealed: &[u8],
) -> Result<(), sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query(
        "UPDATE refresh_tokens SET \
           successor_hash = CASE WHEN token_hash = $3 THEN $4 ELSE successor_hash END, \
           successor_sealed = CASE WHEN token_hash = $3 THEN $5 END \
         WHERE tenant_id = $1 AND family_id = $2 AND (token_hash = $3 OR successor_sealed IS NOT NULL)",
    )
    .bind(tenant_id)
    .bind(family_id)
    .bind(token_hash)
    .bind(successor_hash)
    .bind(sealed)
    .execute(tx.conn())
    .await?;
    Ok(())
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
