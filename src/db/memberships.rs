//! Membership rows: (tenant, user, role).

use uuid::Uuid;

use super::Tx;
use crate::tenancy::Role;

/// One of a user's memberships, with the tenant's slug and name (SECURITY DEFINER lookup).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MembershipOf {
    pub tenant_id: Uuid,
    pub slug: String,
    pub name: String,
    pub role: String,
}

/// Inserts a membership in the transaction's tenant.
pub async fn insert(tx: &mut Tx, tenant_id: Uuid, user_id: Uuid, role: Role) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3)")
        .bind(tenant_id)
        .bind(user_id)
        .bind(role.as_str())
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// The user's role in the transaction's tenant.
pub async fn role_of(tx: &mut Tx, user_id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT role FROM memberships WHERE user_id = $1").bind(user_id).fetch_optional(tx.conn()).await
}

/// Every active tenant the user belongs to.
pub async fn of_user(tx: &mut Tx, user_id: Uuid) -> Result<Vec<MembershipOf>, sqlx::Error> {
    sqlx::query_as("SELECT tenant_id, slug, name, role FROM lca_memberships_of($1)")
        .bind(user_id)
        .fetch_all(tx.conn())
        .await
}

/// The members of the transaction's tenant: (user id, email, role, has TOTP).
pub async fn members(tx: &mut Tx) -> Result<Vec<(Uuid, String, String, bool)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT m.user_id, u.email, m.role, u.totp_secret IS NOT NULL \
         FROM memberships m JOIN users u ON u.id = m.user_id ORDER BY u.email LIMIT 1000",
    )
    .fetch_all(tx.conn())
    .await
}
