//! Membership rows: (tenant, user, role).

use uuid::Uuid;

use super::Tx;
use crate::vocabulary::Role;

/// One of a user's memberships, with the tenant's slug and name (SECURITY DEFINER lookup).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MembershipOf {
    pub tenant_id: Uuid,
    pub slug: String,
    pub name: String,
    pub role: Role,
}

/// Inserts a membership in the transaction's tenant.
pub async fn insert(tx: &mut Tx, tenant_id: Uuid, user_id: Uuid, role: Role) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3)")
        .bind(tenant_id)
        .bind(user_id)
        .bind(role)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// The user's role in the transaction's tenant.
pub async fn role_of(tx: &mut Tx, user_id: Uuid) -> Result<Option<Role>, sqlx::Error> {
    sqlx::query_scalar("SELECT role FROM memberships WHERE user_id = $1").bind(user_id).fetch_optional(tx.conn()).await
}

/// Changes the user's role in the transaction's tenant; returns the role before, or `None`
/// when the user is not a member. One statement: the old role is read from the locked row.
pub async fn set_role(tx: &mut Tx, user_id: Uuid, role: Role) -> Result<Option<Role>, sqlx::Error> {
    let tenant_id = tx.tenant_id().unwrap_or_default();
    sqlx::query_scalar(
        "UPDATE memberships m SET role = $3 FROM memberships old \
         WHERE m.tenant_id = $1 AND m.user_id = $2 AND old.tenant_id = m.tenant_id AND old.user_id = m.user_id \
         RETURNING old.role",
    )
    .bind(tenant_id)
    .bind(user_id)
    .bind(role)
    .fetch_optional(tx.conn())
    .await
}

/// Locks the admin memberships of the transaction's tenant and returns their users.
pub async fn lock_admins(tx: &mut Tx) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT user_id FROM memberships WHERE role = 'admin' ORDER BY user_id FOR UPDATE")
        .fetch_all(tx.conn())
        .await
}

/// Ends the user's membership of the transaction's tenant; returns the role it had.
pub async fn delete(tx: &mut Tx, user_id: Uuid) -> Result<Option<Role>, sqlx::Error> {
    let tenant_id = tx.tenant_id().unwrap_or_default();
    sqlx::query_scalar("DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2 RETURNING role")
        .bind(tenant_id)
        .bind(user_id)
        .fetch_optional(tx.conn())
        .await
}

/// Every active tenant the user belongs to.
pub async fn of_user(tx: &mut Tx, user_id: Uuid) -> Result<Vec<MembershipOf>, sqlx::Error> {
    sqlx::query_as("SELECT tenant_id, slug, name, role FROM lca_memberships_of($1)")
        .bind(user_id)
        .fetch_all(tx.conn())
        .await
}

/// The members of the transaction's tenant: (user id, email, role, has a second factor).
pub async fn members(tx: &mut Tx) -> Result<Vec<(Uuid, String, Role, bool)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT m.user_id, u.email, m.role, \
                u.totp_secret IS NOT NULL OR EXISTS (SELECT 1 FROM passkeys k WHERE k.user_id = m.user_id) \
         FROM memberships m JOIN users u ON u.id = m.user_id ORDER BY u.email LIMIT 1000",
    )
    .fetch_all(tx.conn())
    .await
}

/// A member of the transaction's tenant, for the admin surface.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    pub user_id: Uuid,
    pub email: String,
    pub role: Role,
    pub mfa_enrolled: bool,
    pub joined_at: chrono::DateTime<chrono::Utc>,
}

/// The columns of a [`MemberRow`] (a macro: sqlx takes only static SQL).
macro_rules! member_select {
    ($rest:literal) => {
        concat!(
            "SELECT m.user_id, u.email, m.role, \
                    (u.totp_secret IS NOT NULL OR EXISTS (SELECT 1 FROM passkeys k WHERE k.user_id = m.user_id)) AS mfa_enrolled, \
                    m.created_at AS joined_at \
             FROM memberships m JOIN users u ON u.id = m.user_id ",
            $rest
        )
    };
}

/// Up to `limit` members of the transaction's tenant after `after`, by user id.
pub async fn page(tx: &mut Tx, after: Option<Uuid>, limit: i64) -> Result<Vec<MemberRow>, sqlx::Error> {
    sqlx::query_as(member_select!("WHERE $1::uuid IS NULL OR m.user_id > $1 ORDER BY m.user_id LIMIT $2"))
        .bind(after)
        .bind(limit)
        .fetch_all(tx.conn())
        .await
}

/// How many members the transaction's tenant has (every row [`page`] would list).
pub async fn count(tx: &mut Tx) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM memberships m JOIN users u ON u.id = m.user_id").fetch_one(tx.conn()).await
}

/// One member of the transaction's tenant.
pub async fn member(tx: &mut Tx, user_id: Uuid) -> Result<Option<MemberRow>, sqlx::Error> {
    sqlx::query_as(member_select!("WHERE m.user_id = $1")).bind(user_id).fetch_optional(tx.conn()).await
}

/// Every membership of a user, whatever the tenant's status: (tenant, role) (SECURITY
/// DEFINER lookup; for recovery's permission rule).
pub async fn all_of(tx: &mut Tx, user_id: Uuid) -> Result<Vec<(Uuid, Role)>, sqlx::Error> {
    sqlx::query_as("SELECT tenant_id, role FROM lca_memberships_any_status($1)")
        .bind(user_id)
        .fetch_all(tx.conn())
        .await
}
