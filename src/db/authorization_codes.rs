//! Authorization codes (RFC 6749 §4.1): issued by `/authorize`, redeemed once at `/token`.
//!
//! Named for the table (`authorization_codes`), not "codes": device codes (`db::device_grants`),
//! backup codes (`db::mfa`) and recovery links (`db::recovery`) are other single-use values.
//! A code is consumed by one atomic `UPDATE … WHERE consumed_at IS NULL RETURNING`, so of any
//! number of concurrent redemptions exactly one sees a row (ARCHITECTURE.md, "Single-use
//! things").

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Tx;
use super::families::RequestedClaims;

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
    /// The APIs (resource indicators, RFC 8707) the request named: the access tokens of the
    /// grant are meant for them (`clients::resources`).
    pub resources: Vec<String>,
    /// The DPoP key the code is bound to (RFC 9449 §10), if the request named one.
    pub dpop_jkt: Option<String>,
}

/// A code consumed by [`consume`].
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConsumedCode {
    #[sqlx(flatten)]
    pub grant: CodeGrant,
    /// The claims the authorization request named, for the family the redemption begins.
    #[sqlx(flatten)]
    pub claims: RequestedClaims,
    /// The user's security stamp is still the one the code was issued under: no password
    /// change, MFA reset, recovery or "sign out everywhere" since.
    pub stamp_current: bool,
}

/// Stores a new code (its hash) in the transaction's tenant, naming no claims.
pub async fn insert(
    tx: &mut Tx,
    code_hash: &[u8],
    grant: &CodeGrant,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    insert_with_claims(tx, code_hash, grant, &RequestedClaims::default(), expires_at).await
}

/// Stores a new code (its hash) in the transaction's tenant with the claims its request named.
pub async fn insert_with_claims(
    tx: &mut Tx,
    code_hash: &[u8],
    grant: &CodeGrant,
    claims: &RequestedClaims,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query(
        "INSERT INTO authorization_codes (tenant_id, code_hash, client_id, user_id, redirect_uri, scope, nonce, \
         code_challenge, auth_time, amr, acr, sid, expires_at, security_stamp, id_token_claims, userinfo_claims, resources, dpop_jkt) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
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
    .bind(&claims.id_token_claims)
    .bind(&claims.userinfo_claims)
    .bind(&grant.resources)
    .bind(&grant.dpop_jkt)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The tenant a code belongs to (SECURITY DEFINER lookup).
pub async fn tenant_of(tx: &mut Tx, code_hash: &[u8]) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT lca_code_tenant($1)").bind(code_hash).fetch_one(tx.conn()).await
}

/// Consumes an unexpired, unused code issued to `client_id`, recording the family its
/// redemption creates, and says whether the user's security stamp is still the code's (the
/// user must be visible in the tenant: a former member's code reads as stale). `None` when the
/// code is unknown, expired, already used, or another client's (which leaves it untouched, so
/// presenting it elsewhere cannot burn it).
pub async fn consume(
    tx: &mut Tx,
    code_hash: &[u8],
    client_id: &str,
    family_id: Uuid,
) -> Result<Option<ConsumedCode>, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query_as(
        "UPDATE authorization_codes c SET consumed_at = now(), family_id = $4 \
         WHERE tenant_id = $1 AND code_hash = $2 AND client_id = $3 AND consumed_at IS NULL AND expires_at > now() \
         RETURNING client_id, user_id, redirect_uri, scope, nonce, code_challenge, auth_time, amr, acr, sid, \
           security_stamp, resources, dpop_jkt, id_token_claims, userinfo_claims, coalesce(security_stamp = (SELECT u.security_stamp FROM users u WHERE u.id = c.user_id), \
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
pub async fn family_of_redeemed(tx: &mut Tx, code_hash: &[u8], client_id: &str) -> Result<Option<Uuid>, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
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
