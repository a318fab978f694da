//! Invitations to a tenant (`invitations`, migrations/0022): an address and a role, found by
//! the SHA-256 of the mailed token, accepted with one atomic statement.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Tx;
use crate::vocabulary::Role;

/// An invitation as the admin surface lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRow {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub invited_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What a new invitation is.
pub struct NewInvitation<'a> {
    pub id: Uuid,
    pub token_hash: &'a [u8],
    pub email: &'a str,
    pub role: Role,
    pub invited_by: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// Revokes the tenant's open invitation of `email`, if any (inviting again replaces it).
/// Returns the id of the one revoked.
pub async fn revoke_open_for(tx: &mut Tx, email: &str) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE invitations SET revoked_at = now() \
         WHERE lower(email) = lower($1) AND accepted_at IS NULL AND revoked_at IS NULL RETURNING id",
    )
    .bind(email)
    .fetch_optional(tx.conn())
    .await
}

/// Stores an invitation in the transaction's tenant.
pub async fn insert(tx: &mut Tx, tenant_id: Uuid, new: &NewInvitation<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO invitations (tenant_id, id, token_hash, email, role, invited_by, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant_id)
    .bind(new.id)
    .bind(new.token_hash)
    .bind(new.email)
    .bind(new.role)
    .bind(new.invited_by)
    .bind(new.expires_at)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The tenant's open invitations (neither accepted, revoked nor expired), newest first.
pub async fn open(tx: &mut Tx, limit: i64) -> Result<Vec<InvitationRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, email, role, invited_by, created_at, expires_at FROM invitations \
         WHERE accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now() \
         ORDER BY created_at DESC, id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(tx.conn())
    .await
}

/// Revokes an open invitation by id; `false` when there is none.
pub async fn revoke(tx: &mut Tx, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE invitations SET revoked_at = now() \
         WHERE id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()",
    )
    .bind(id)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The tenant of an invitation, found by its hash alone (SECURITY DEFINER lookup).
pub async fn tenant_of(tx: &mut Tx, token_hash: &[u8]) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT lca_invitation_tenant($1)").bind(token_hash).fetch_one(tx.conn()).await
}

/// An open invitation by its token's hash, without spending it (for the page).
pub async fn usable(tx: &mut Tx, token_hash: &[u8]) -> Result<Option<InvitationRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, email, role, invited_by, created_at, expires_at FROM invitations \
         WHERE token_hash = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()",
    )
    .bind(token_hash)
    .fetch_optional(tx.conn())
    .await
}

/// Accepts an invitation: one atomic UPDATE, so it works once however many requests race.
pub async fn accept(tx: &mut Tx, token_hash: &[u8]) -> Result<Option<InvitationRow>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE invitations SET accepted_at = now() \
         WHERE token_hash = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now() \
         RETURNING id, email, role, invited_by, created_at, expires_at",
    )
    .bind(token_hash)
    .fetch_optional(tx.conn())
    .await
}

/// Records who accepted (the user may have been created in the same transaction).
pub async fn set_accepted_by(tx: &mut Tx, id: Uuid, user_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE invitations SET accepted_by = $2 WHERE id = $1")
        .bind(id)
        .bind(user_id)
        .execute(tx.conn())
        .await?;
    Ok(())
}
