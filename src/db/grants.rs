//! Authorization codes, token families, refresh tokens and issued access tokens.
//!
//! Every single-use thing is consumed by one atomic `UPDATE … WHERE … IS NULL RETURNING`, so
//! of any number of concurrent redemptions exactly one sees a row.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Tx;

/// The grant an authorization code stands for.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CodeGrant {
    pub client_id: String,
    pub user_id: Uuid,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: DateTime<Utc>,
    pub amr: Vec<String>,
    pub acr: String,
    pub sid: String,
    /// The user's security stamp when the code was issued (ARCHITECTURE.md, "Security stamp").
    pub security_stamp: Option<Uuid>,
}

/// A code consumed by [`consume_code`].
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConsumedCode {
    #[sqlx(flatten)]
    pub grant: CodeGrant,
    /// The user's security stamp is still the one the code was issued under: no password
    /// change, MFA reset, recovery or "sign out everywhere" since.
    pub stamp_current: bool,
}

fn tenant(tx: &Tx) -> Uuid {
    tx.tenant_id().unwrap_or_default()
}

/// Stores a new code (its hash) in the transaction's tenant.
pub async fn insert_code(
    tx: &mut Tx,
    code_hash: &[u8],
    grant: &CodeGrant,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let tenant_id = tenant(tx);
    sqlx::query(
        "INSERT INTO authorization_codes (tenant_id, code_hash, client_id, user_id, redirect_uri, scope, nonce, \
         code_challenge, auth_time, amr, acr, sid, expires_at, security_stamp) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(tenant_id)
    .bind(code_hash)
    .bind(&grant.client_id)
    .bind(grant.user_id)
    .bind(&grant.redirect_uri)
    .bind(&grant.scope)
    .bind(&grant.nonce)
    .bind(&grant.code_challenge)
    .bind(grant.auth_time)
    .bind(&grant.amr)
    .bind(&grant.acr)
    .bind(&grant.sid)
    .bind(expires_at)
    .bind(grant.security_stamp)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The tenant a code belongs to (SECURITY DEFINER lookup).
pub async fn code_tenant(tx: &mut Tx, code_hash: &[u8]) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT lca_code_tenant($1)").bind(code_hash).fetch_one(tx.conn()).await
}

/// Consumes an unexpired, unused code issued to `client_id`, recording the family its
/// redemption creates, and says whether the user's security stamp is still the code's (the
/// user must be visible in the tenant: a former member's code reads as stale). `None` when the
/// code is unknown, expired, already used, or another client's (which leaves it untouched, so
/// presenting it elsewhere cannot burn it).
pub async fn consume_code(
    tx: &mut Tx,
    code_hash: &[u8],
    client_id: &str,
    family_id: Uuid,
) -> Result<Option<ConsumedCode>, sqlx::Error> {
    let tenant_id = tenant(tx);
    sqlx::query_as(
        "UPDATE authorization_codes c SET consumed_at = now(), family_id = $4 \
         WHERE tenant_id = $1 AND code_hash = $2 AND client_id = $3 AND consumed_at IS NULL AND expires_at > now() \
         RETURNING client_id, user_id, redirect_uri, scope, nonce, code_challenge, auth_time, amr, acr, sid, \
           security_stamp, coalesce(security_stamp = (SELECT u.security_stamp FROM users u WHERE u.id = c.user_id), \
             false) AS stamp_current",
    )
    .bind(tenant_id)
    .bind(code_hash)
    .bind(client_id)
    .bind(family_id)
    .fetch_optional(tx.conn())
    .await
}

/// For a code of `client_id` that was already redeemed: the family that redemption created.
/// Another client presenting the code learns and ends nothing.
pub async fn redeemed_code_family(tx: &mut Tx, code_hash: &[u8], client_id: &str) -> Result<Option<Uuid>, sqlx::Error> {
    let tenant_id = tenant(tx);
    let family: Option<Option<Uuid>> = sqlx::query_scalar(
        "SELECT family_id FROM authorization_codes \
         WHERE tenant_id = $1 AND code_hash = $2 AND client_id = $3 AND consumed_at IS NOT NULL",
    )
    .bind(tenant_id)
    .bind(code_hash)
    .bind(client_id)
    .fetch_optional(tx.conn())
    .await?;
    Ok(family.flatten())
}

/// A token family: what one authorization issued.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Family {
    pub family_id: Uuid,
    pub client_id: String,
    pub user_id: Option<Uuid>,
    pub scope: String,
    pub auth_time: Option<DateTime<Utc>>,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub sid: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Creates a family in the transaction's tenant.
pub async fn insert_family(tx: &mut Tx, f: &Family) -> Result<(), sqlx::Error> {
    let tenant_id = tenant(tx);
    sqlx::query(
        "INSERT INTO token_families (tenant_id, family_id, client_id, user_id, scope, auth_time, amr, acr, sid, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(tenant_id)
    .bind(f.family_id)
    .bind(&f.client_id)
    .bind(f.user_id)
    .bind(&f.scope)
    .bind(f.auth_time)
    .bind(&f.amr)
    .bind(&f.acr)
    .bind(&f.sid)
    .bind(f.expires_at)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// A family that a call ended.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Ended {
    pub family_id: Uuid,
    pub client_id: String,
    pub user_id: Option<Uuid>,
}

/// Revokes a family (and so every token it issued). `Some` if this call revoked it.
pub async fn revoke_family(tx: &mut Tx, family_id: Uuid, reason: &str) -> Result<Option<Ended>, sqlx::Error> {
    let tenant_id = tenant(tx);
    sqlx::query_as(
        "UPDATE token_families SET revoked_at = now(), revoked_reason = $3 \
         WHERE tenant_id = $1 AND family_id = $2 AND revoked_at IS NULL RETURNING family_id, client_id, user_id",
    )
    .bind(tenant_id)
    .bind(family_id)
    .bind(reason)
    .fetch_optional(tx.conn())
    .await
}

/// Revokes every live family of a user in the transaction's tenant; returns those ended.
pub async fn revoke_user_families(tx: &mut Tx, user_id: Uuid, reason: &str) -> Result<Vec<Ended>, sqlx::Error> {
    let tenant_id = tenant(tx);
    sqlx::query_as(
        "UPDATE token_families SET revoked_at = now(), revoked_reason = $3 \
         WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING family_id, client_id, user_id",
    )
    .bind(tenant_id)
    .bind(user_id)
    .bind(reason)
    .fetch_all(tx.conn())
    .await
}

/// Revokes everything a client was issued in the transaction's tenant: its live families
/// (refresh tokens and the access tokens of each) and its access tokens without a family
/// (client credentials). Returns (families, access tokens) revoked.
pub async fn revoke_client_grants(tx: &mut Tx, client_id: &str, reason: &str) -> Result<(u64, u64), sqlx::Error> {
    let tenant_id = tenant(tx);
    let families = sqlx::query(
        "UPDATE token_families SET revoked_at = now(), revoked_reason = $3 \
         WHERE tenant_id = $1 AND client_id = $2 AND revoked_at IS NULL",
    )
    .bind(tenant_id)
    .bind(client_id)
    .bind(reason)
    .execute(tx.conn())
    .await?;
    let tokens = sqlx::query(
        "UPDATE access_tokens SET revoked_at = now() \
         WHERE tenant_id = $1 AND client_id = $2 AND family_id IS NULL AND revoked_at IS NULL AND expires_at > now()",
    )
    .bind(tenant_id)
    .bind(client_id)
    .execute(tx.conn())
    .await?;
    Ok((families.rows_affected(), tokens.rows_affected()))
}

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
pub async fn refresh_tenant(tx: &mut Tx, token_hash: &[u8]) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT lca_refresh_token_tenant($1)").bind(token_hash).fetch_one(tx.conn()).await
}

/// Marks a refresh token of `client_id` used, atomically, and says what it was. Another
/// client's token is `Invalid` and stays untouched.
pub async fn use_refresh(tx: &mut Tx, token_hash: &[u8], client_id: &str) -> Result<RefreshUse, sqlx::Error> {
    let tenant_id = tenant(tx);
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
        let family = family(tx, family_id).await?;
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

/// A family by id.
pub async fn family(tx: &mut Tx, family_id: Uuid) -> Result<Option<Family>, sqlx::Error> {
    let tenant_id = tenant(tx);
    sqlx::query_as(
        "SELECT family_id, client_id, user_id, scope, auth_time, amr, acr, sid, expires_at, revoked_at \
         FROM token_families WHERE tenant_id = $1 AND family_id = $2",
    )
    .bind(tenant_id)
    .bind(family_id)
    .fetch_optional(tx.conn())
    .await
}

/// Stores a new refresh token (its hash).
pub async fn insert_refresh(
    tx: &mut Tx,
    token_hash: &[u8],
    family_id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let tenant_id = tenant(tx);
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
pub async fn refresh_state(
    tx: &mut Tx,
    token_hash: &[u8],
) -> Result<Option<(Family, bool, DateTime<Utc>)>, sqlx::Error> {
    let tenant_id = tenant(tx);
    let row: Option<(Uuid, bool, DateTime<Utc>)> = sqlx::query_as(
        "SELECT family_id, used_at IS NULL AND expires_at > now(), expires_at FROM refresh_tokens \
         WHERE tenant_id = $1 AND token_hash = $2",
    )
    .bind(tenant_id)
    .bind(token_hash)
    .fetch_optional(tx.conn())
    .await?;
    let Some((family_id, usable, expires_at)) = row else { return Ok(None) };
    Ok(family(tx, family_id).await?.map(|f| {
        let live = usable && f.revoked_at.is_none() && f.expires_at > Utc::now();
        (f, live, expires_at)
    }))
}

/// Records an issued access token.
pub async fn insert_access(
    tx: &mut Tx,
    jti: Uuid,
    family_id: Option<Uuid>,
    client_id: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let tenant_id = tenant(tx);
    sqlx::query(
        "INSERT INTO access_tokens (tenant_id, jti, family_id, client_id, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(tenant_id)
    .bind(jti)
    .bind(family_id)
    .bind(client_id)
    .bind(expires_at)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Whether an access token is unexpired, neither it nor its family is revoked, and its tenant
/// is not suspended.
pub async fn access_active(tx: &mut Tx, jti: Uuid) -> Result<bool, sqlx::Error> {
    let tenant_id = tenant(tx);
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM access_tokens a \
           LEFT JOIN token_families f ON f.tenant_id = a.tenant_id AND f.family_id = a.family_id \
         WHERE a.tenant_id = $1 AND a.jti = $2 AND a.revoked_at IS NULL AND a.expires_at > now() \
           AND f.revoked_at IS NULL \
           AND EXISTS (SELECT 1 FROM tenants t WHERE t.id = a.tenant_id AND t.status = 'active'))",
    )
    .bind(tenant_id)
    .bind(jti)
    .fetch_one(tx.conn())
    .await
}

/// Revokes an access token issued to `client_id`. True if it was revoked now.
pub async fn revoke_access(tx: &mut Tx, jti: Uuid, client_id: &str) -> Result<bool, sqlx::Error> {
    let tenant_id = tenant(tx);
    let done = sqlx::query(
        "UPDATE access_tokens SET revoked_at = now() \
         WHERE tenant_id = $1 AND jti = $2 AND client_id = $3 AND revoked_at IS NULL",
    )
    .bind(tenant_id)
    .bind(jti)
    .bind(client_id)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The tenants where a user has live families (SECURITY DEFINER lookup).
pub async fn user_family_tenants(tx: &mut Tx, user_id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT lca_user_family_tenants($1)").bind(user_id).fetch_all(tx.conn()).await
}
