//! Issued access tokens. The tokens are JWTs that verify on their own; a row per `jti` is
//! what lets introspection (RFC 7662), userinfo and revocation (RFC 7009) see one revoked,
//! directly or through its family (`db::families`).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Tx;

/// Records an issued access token.
pub async fn insert(
    tx: &mut Tx,
    jti: Uuid,
    family_id: Option<Uuid>,
    client_id: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
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
pub async fn is_active(tx: &mut Tx, jti: Uuid) -> Result<bool, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
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

/// The claims the authorization behind an access token named for UserInfo (OIDC Core §5.5),
/// read from its family (`db::families::RequestedClaims`); none for a token of no family
/// (client credentials) or an unknown `jti`.
pub async fn userinfo_claims(tx: &mut Tx, jti: Uuid) -> Result<Vec<String>, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    let names: Option<Vec<String>> = sqlx::query_scalar(
        "SELECT f.userinfo_claims FROM access_tokens a \
           JOIN token_families f ON f.tenant_id = a.tenant_id AND f.family_id = a.family_id \
         WHERE a.tenant_id = $1 AND a.jti = $2",
    )
    .bind(tenant_id)
    .bind(jti)
    .fetch_optional(tx.conn())
    .await?;
    Ok(names.unwrap_or_default())
}

/// Revokes an access token issued to `client_id`. True if it was revoked now.
pub async fn revoke(tx: &mut Tx, jti: Uuid, client_id: &str) -> Result<bool, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
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

/// Revokes a client's live access tokens that belong to no family (client credentials) in
/// the transaction's tenant; returns how many. The rest end with their families
/// ([`families::revoke_of_client`](super::families::revoke_of_client)).
pub async fn revoke_of_client_without_family(tx: &mut Tx, client_id: &str) -> Result<u64, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    let done = sqlx::query(
        "UPDATE access_tokens SET revoked_at = now() \
         WHERE tenant_id = $1 AND client_id = $2 AND family_id IS NULL AND revoked_at IS NULL AND expires_at > now()",
    )
    .bind(tenant_id)
    .bind(client_id)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected())
}
