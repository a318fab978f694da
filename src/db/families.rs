//! Token families: what one authorization issued (its refresh tokens, `db::refresh_tokens`,
//! and the access tokens of each, `db::access_tokens`). Ending a family ends all of them.
//!
//! Whatever ends one — a replay, a membership that ended, a second factor now required, a
//! password change, a recovery, the revocation endpoint, an admin ending a session — goes
//! through [`revoke`], [`revoke_session`] or [`revoke_of_user`], which write `token_family.revoked` with the reason in the transaction
//! that ends it, so one query of the audit log lists every ended family and why. Two callers
//! record their own event instead: deleting a client ends its families in bulk
//! ([`revoke_of_client`]) and records the count in `client.deleted`, and a user ending one of
//! their devices ([`revoke_device_family_of_user`]), or an admin one of the tenant's
//! ([`revoke_device`]), records `device.revoked`.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::Tx;
use super::audit::{self, Actor};

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
    /// The APIs its authorization named (RFC 8707): a refresh may ask a token for any of them.
    pub resources: Vec<String>,
}

/// The user claims an authorization request named in its `claims` parameter (OIDC Core §5.5),
/// by location; a code keeps them until it is redeemed, then the family it begins (migration
/// 0016 bounds both lists).
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct RequestedClaims {
    /// For every ID token of the grant, refreshed ones included (OIDC Core §12.2).
    pub id_token_claims: Vec<String>,
    /// For UserInfo, on top of those of the access token's scope.
    pub userinfo_claims: Vec<String>,
}

/// Creates a family in the transaction's tenant that names no claims.
pub async fn insert(tx: &mut Tx, f: &Family) -> Result<(), sqlx::Error> {
    insert_with_claims(tx, f, &RequestedClaims::default()).await
}

/// Creates a family in the transaction's tenant with the claims its authorization named.
pub async fn insert_with_claims(tx: &mut Tx, f: &Family, claims: &RequestedClaims) -> Result<(), sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query(
        "INSERT INTO token_families (tenant_id, family_id, client_id, user_id, scope, auth_time, amr, acr, sid, \
           expires_at, id_token_claims, userinfo_claims, resources) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
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
    .bind(&claims.id_token_claims)
    .bind(&claims.userinfo_claims)
    .bind(&f.resources)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The claims a family's authorization named, by the family's id.
pub async fn requested_claims(tx: &mut Tx, family_id: Uuid) -> Result<Option<RequestedClaims>, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query_as(
        "SELECT id_token_claims, userinfo_claims FROM token_families WHERE tenant_id = $1 AND family_id = $2",
    )
    .bind(tenant_id)
    .bind(family_id)
    .fetch_optional(tx.conn())
    .await
}

/// A family by id.
pub async fn by_id(tx: &mut Tx, family_id: Uuid) -> Result<Option<Family>, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query_as(
        "SELECT family_id, client_id, user_id, scope, auth_time, amr, acr, sid, expires_at, revoked_at, resources \
         FROM token_families WHERE tenant_id = $1 AND family_id = $2",
    )
    .bind(tenant_id)
    .bind(family_id)
    .fetch_optional(tx.conn())
    .await
}

/// A family by id, recording that it refreshed now from `ip` (a device's "last seen"): the
/// read a rotation makes anyway, as an `UPDATE … RETURNING`, so no round trip is added (a
/// HOT update: no indexed column changes).
pub async fn touch(tx: &mut Tx, family_id: Uuid, ip: Option<std::net::IpAddr>) -> Result<Option<Family>, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query_as(
        "UPDATE token_families SET last_refresh_at = now(), last_refresh_ip = $3::inet \
         WHERE tenant_id = $1 AND family_id = $2 \
         RETURNING family_id, client_id, user_id, scope, auth_time, amr, acr, sid, expires_at, revoked_at, resources",
    )
    .bind(tenant_id)
    .bind(family_id)
    .bind(ip.map(|ip| ip.to_string()))
    .fetch_optional(tx.conn())
    .await
}

/// The tenants where a user has live families (SECURITY DEFINER lookup).
pub async fn tenants_of_user(tx: &mut Tx, user_id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT lca_user_family_tenants($1)").bind(user_id).fetch_all(tx.conn()).await
}

/// A family that a call ended.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Ended {
    family_id: Uuid,
    client_id: String,
    user_id: Option<Uuid>,
}

/// Ends one live family of the transaction's tenant and audits it. True if this call ended
/// it (a family already ended writes nothing, so concurrent replays write one row).
pub async fn revoke(tx: &mut Tx, actor: &Actor, family_id: Uuid, reason: &str) -> Result<bool, sqlx::Error> {
    const BY_ID: &str = "UPDATE token_families SET revoked_at = now(), revoked_reason = $3 \
         WHERE tenant_id = $1 AND family_id = $2 AND revoked_at IS NULL RETURNING family_id, client_id, user_id";
    Ok(end_audited(tx, actor, BY_ID, family_id, reason).await? == 1)
}

/// Ends every live family of a user in the transaction's tenant, auditing each; returns how
/// many.
pub async fn revoke_of_user(tx: &mut Tx, actor: &Actor, user_id: Uuid, reason: &str) -> Result<u64, sqlx::Error> {
    const BY_USER: &str = "UPDATE token_families SET revoked_at = now(), revoked_reason = $3 \
         WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING family_id, client_id, user_id";
    end_audited(tx, actor, BY_USER, user_id, reason).await
}

/// Runs one of the ending statements above (`$1` tenant, `$2` the id it selects by, `$3` the
/// reason) and writes `token_family.revoked` for each family it ended.
async fn end_audited(
    tx: &mut Tx,
    actor: &Actor,
    statement: &'static str,
    id: Uuid,
    reason: &str,
) -> Result<u64, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    let ended: Vec<Ended> =
        sqlx::query_as(statement).bind(tenant_id).bind(id).bind(reason).fetch_all(tx.conn()).await?;
    for family in &ended {
        record(tx, actor, family, reason).await?;
    }
    Ok(u64::try_from(ended.len()).unwrap_or(u64::MAX))
}

/// Ends every live family of a client in the transaction's tenant (refresh tokens and the
/// access tokens of each); returns how many. Not audited one by one: the caller records the
/// count (`client.deleted`). A client's access tokens without a family (client credentials)
/// are [`access_tokens::revoke_of_client_without_family`](super::access_tokens::revoke_of_client_without_family).
pub async fn revoke_of_client(tx: &mut Tx, client_id: &str, reason: &str) -> Result<u64, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    let done = sqlx::query(
        "UPDATE token_families SET revoked_at = now(), revoked_reason = $3 \
         WHERE tenant_id = $1 AND client_id = $2 AND revoked_at IS NULL",
    )
    .bind(tenant_id)
    .bind(client_id)
    .bind(reason)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected())
}

// Families begun by a device authorization grant (RFC 8628), which the account page lists
// and lets the user end one by one.

/// Marks a family as begun by the device grant (the account page lists those).
pub async fn mark_begun_by_device(tx: &mut Tx, family_id: Uuid) -> Result<(), sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query("UPDATE token_families SET origin_grant = 'device_code' WHERE tenant_id = $1 AND family_id = $2")
        .bind(tenant_id)
        .bind(family_id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// A live device family of a user, for the account page.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeviceFamily {
    pub family_id: Uuid,
    pub client_id: String,
    pub client_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The user's live device families in the transaction's tenant.
pub async fn device_families_of_user(tx: &mut Tx, user_id: Uuid) -> Result<Vec<DeviceFamily>, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query_as(
        "SELECT f.family_id, f.client_id, c.name AS client_name, f.created_at FROM token_families f \
           LEFT JOIN clients c ON c.tenant_id = f.tenant_id AND c.client_id = f.client_id \
         WHERE f.tenant_id = $1 AND f.user_id = $2 AND f.origin_grant = 'device_code' \
           AND f.revoked_at IS NULL AND f.expires_at > now() \
         ORDER BY f.created_at LIMIT 100",
    )
    .bind(tenant_id)
    .bind(user_id)
    .fetch_all(tx.conn())
    .await
}

/// Revokes one live device family of the user; returns its client when this call revoked it.
/// Not audited here: the account page records `device.revoked` in the same transaction.
pub async fn revoke_device_family_of_user(
    tx: &mut Tx,
    user_id: Uuid,
    family_id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query_scalar(
        "UPDATE token_families SET revoked_at = now(), revoked_reason = 'device_revoked' \
         WHERE tenant_id = $1 AND family_id = $2 AND user_id = $3 AND origin_grant = 'device_code' \
           AND revoked_at IS NULL \
         RETURNING client_id",
    )
    .bind(tenant_id)
    .bind(family_id)
    .bind(user_id)
    .fetch_optional(tx.conn())
    .await
}

async fn record(tx: &mut Tx, actor: &Actor, family: &Ended, reason: &str) -> Result<(), sqlx::Error> {
    let details = serde_json::json!({
        "reason": reason,
        "client_id": family.client_id,
        "user_id": family.user_id,
    });
    audit::append(
        tx,
        &actor.event("token_family.revoked", ("token_family", Some(family.family_id.to_string())), details),
    )
    .await
}

// The admin surface's views of the tenant's live families: devices (begun by the device
// grant) and sessions (every other family a sign-in through a client began).

/// Which live families an admin list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Begun by the device grant (`origin_grant = 'device_code'`).
    Device,
    /// Begun by any other grant (a sign-in through a client).
    Session,
}

/// A row of [`live_page`]: any struct whose fields are some of its columns (`family_id`,
/// `client_id`, `client_name`, `user_id`, `email`, `created_at`, `expires_at`, `auth_time`,
/// `acr`, `last_refresh_at`, `last_refresh_ip`), so that each admin view of a family is read straight from the query.
pub trait LiveRow: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin {}

impl<T: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin> LiveRow for T {}

/// The live families of a kind in the transaction's tenant (`$1` the tenant, `$2` whether the
/// kind is [`Kind::Device`]) between a select and the rest of a statement (a macro: sqlx takes
/// only static SQL).
macro_rules! live_of_kind {
    ($select:literal, $rest:literal) => {
        concat!(
            $select,
            " WHERE f.tenant_id = $1 AND f.revoked_at IS NULL AND f.expires_at > now() \
               AND ((f.origin_grant IS NOT DISTINCT FROM 'device_code') = $2) ",
            $rest
        )
    };
}

/// Up to `limit` live families of `kind` in the transaction's tenant after `after` (by family
/// id, which is time-ordered), of one user when `user_id` is given, with their client's name
/// and their user's email.
pub async fn live_page<R: LiveRow>(
    tx: &mut Tx,
    kind: Kind,
    user_id: Option<Uuid>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<R>, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query_as(live_of_kind!(
        "SELECT f.family_id, f.client_id, c.name AS client_name, f.user_id, u.email, f.created_at, f.expires_at, \
                f.auth_time, f.acr, f.last_refresh_at, host(f.last_refresh_ip) AS last_refresh_ip \
           FROM token_families f \
           LEFT JOIN clients c ON c.tenant_id = f.tenant_id AND c.client_id = f.client_id \
           LEFT JOIN users u ON u.id = f.user_id",
        "AND ($3::uuid IS NULL OR f.user_id = $3) AND ($4::uuid IS NULL OR f.family_id > $4) \
         ORDER BY f.family_id LIMIT $5"
    ))
    .bind(tenant_id)
    .bind(kind == Kind::Device)
    .bind(user_id)
    .bind(after)
    .bind(limit)
    .fetch_all(tx.conn())
    .await
}

/// How many live families of `kind` the transaction's tenant has.
pub async fn count_live(tx: &mut Tx, kind: Kind) -> Result<i64, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query_scalar(live_of_kind!("SELECT count(*) FROM token_families f", ""))
        .bind(tenant_id)
        .bind(kind == Kind::Device)
        .fetch_one(tx.conn())
        .await
}

/// Ends one live device family of the transaction's tenant, whoever's it is; returns its
/// client and user when this call ended it. Not audited here: the admin surface records
/// `device.revoked`, as the account page does for a user's own device.
pub async fn revoke_device(tx: &mut Tx, family_id: Uuid) -> Result<Option<(String, Option<Uuid>)>, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query_as(
        "UPDATE token_families SET revoked_at = now(), revoked_reason = 'device_revoked' \
         WHERE tenant_id = $1 AND family_id = $2 AND origin_grant = 'device_code' \
           AND revoked_at IS NULL AND expires_at > now() \
         RETURNING client_id, user_id",
    )
    .bind(tenant_id)
    .bind(family_id)
    .fetch_optional(tx.conn())
    .await
}

/// Ends one live session family (not begun by the device grant) of the transaction's tenant,
/// with `token_family.revoked` and `reason`, like [`revoke`]; true if this call ended it.
pub async fn revoke_session(tx: &mut Tx, actor: &Actor, family_id: Uuid, reason: &str) -> Result<bool, sqlx::Error> {
    const SESSION: &str = "UPDATE token_families SET revoked_at = now(), revoked_reason = $3 \
         WHERE tenant_id = $1 AND family_id = $2 AND revoked_at IS NULL AND expires_at > now() \
           AND origin_grant IS DISTINCT FROM 'device_code' RETURNING family_id, client_id, user_id";
    Ok(end_audited(tx, actor, SESSION, family_id, reason).await? == 1)
}

/// Binds a family's refresh tokens to a DPoP key (its RFC 7638 thumbprint, RFC 9449 §5).
pub async fn bind_dpop(tx: &mut Tx, family_id: Uuid, jkt: &str) -> Result<(), sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query("UPDATE token_families SET dpop_jkt = $3 WHERE tenant_id = $1 AND family_id = $2")
        .bind(tenant_id)
        .bind(family_id)
        .bind(jkt)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// The DPoP key a family's refresh tokens are bound to, if any.
pub async fn dpop_jkt(tx: &mut Tx, family_id: Uuid) -> Result<Option<String>, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    let jkt: Option<Option<String>> =
        sqlx::query_scalar("SELECT dpop_jkt FROM token_families WHERE tenant_id = $1 AND family_id = $2")
            .bind(tenant_id)
            .bind(family_id)
            .fetch_optional(tx.conn())
            .await?;
    Ok(jkt.flatten())
}
