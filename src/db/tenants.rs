//! Tenant rows.

use uuid::Uuid;

use super::Tx;
use crate::vocabulary::TenantStatus;

/// A tenant as the lookup function returns it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantRef {
    pub id: Uuid,
    pub status: TenantStatus,
    pub is_platform: bool,
}

/// Inserts a tenant. The transaction must be an operator transaction opened for `id`
/// ([`Database::operator`](super::Database::operator)): request connections may not write
/// tenants (`migrations/0010_runtime_login.sql`).
pub async fn insert(tx: &mut Tx, id: Uuid, slug: &str, name: &str, is_platform: bool) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO tenants (id, slug, name, is_platform) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(slug)
        .bind(name)
        .bind(is_platform)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Finds a tenant by slug (SECURITY DEFINER lookup: works before a tenant is chosen).
pub async fn by_slug(tx: &mut Tx, slug: &str) -> Result<Option<TenantRef>, sqlx::Error> {
    sqlx::query_as("SELECT id, status, is_platform FROM lca_tenant_by_slug($1)")
        .bind(slug)
        .fetch_optional(tx.conn())
        .await
}

/// The platform tenant's id, once bootstrap has created it.
pub async fn platform(tx: &mut Tx) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT lca_platform_tenant()").fetch_one(tx.conn()).await
}

/// The transaction's own tenant: (slug, status).
pub async fn current(tx: &mut Tx) -> Result<Option<(String, TenantStatus)>, sqlx::Error> {
    sqlx::query_as("SELECT slug, status FROM tenants").fetch_optional(tx.conn()).await
}

/// The transaction's own tenant as the admin surface shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantRow {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub status: TenantStatus,
    pub is_platform: bool,
    pub require_mfa: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The transaction's own tenant, whole.
pub async fn current_row(tx: &mut Tx) -> Result<Option<TenantRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, slug, name, status, is_platform, require_mfa, created_at FROM tenants")
        .fetch_optional(tx.conn())
        .await
}

/// Sets whether anyone may register a public client in the tenant (migrations/0027); true if
/// it changed. An operator transaction (`Database::operator`).
pub async fn set_open_registration(tx: &mut Tx, open: bool) -> Result<bool, sqlx::Error> {
    let tenant_id = tx.tenant_id().unwrap_or_default();
    let done = sqlx::query("UPDATE tenants SET open_registration = $2 WHERE id = $1 AND open_registration <> $2")
        .bind(tenant_id)
        .bind(open)
        .execute(tx.conn())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets whether the tenant's login pages offer signing in with a passkey alone
/// (migrations/0029); true if it changed. An operator transaction (`Database::operator`).
pub async fn set_passkey_sign_in(tx: &mut Tx, on: bool) -> Result<bool, sqlx::Error> {
    let tenant_id = tx.tenant_id().unwrap_or_default();
    let done = sqlx::query("UPDATE tenants SET passkey_sign_in = $2 WHERE id = $1 AND passkey_sign_in <> $2")
        .bind(tenant_id)
        .bind(on)
        .execute(tx.conn())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether the transaction's tenant offers signing in with a passkey alone.
pub async fn passkey_sign_in(tx: &mut Tx) -> Result<bool, sqlx::Error> {
    let on: Option<bool> = sqlx::query_scalar("SELECT passkey_sign_in FROM tenants").fetch_optional(tx.conn()).await?;
    Ok(on.unwrap_or(false))
}

/// Whether the transaction's tenant lets anyone register a public client, and is active.
pub async fn open_registration(tx: &mut Tx) -> Result<bool, sqlx::Error> {
    let open: Option<bool> = sqlx::query_scalar("SELECT open_registration AND status = 'active' FROM tenants")
        .fetch_optional(tx.conn())
        .await?;
    Ok(open.unwrap_or(false))
}

/// Sets whether the tenant's users may sign in to clients of client ID metadata documents
/// (migrations/0030); true if it changed. An operator transaction (`Database::operator`).
pub async fn set_allow_client_metadata_documents(tx: &mut Tx, allow: bool) -> Result<bool, sqlx::Error> {
    let tenant_id = tx.tenant_id().unwrap_or_default();
    let done = sqlx::query(
        "UPDATE tenants SET allow_client_metadata_documents = $2 WHERE id = $1 AND allow_client_metadata_documents <> $2",
    )
    .bind(tenant_id)
    .bind(allow)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether the transaction's tenant lets its users sign in to clients of client ID metadata
/// documents.
pub async fn allows_client_metadata_documents(tx: &mut Tx) -> Result<bool, sqlx::Error> {
    let allow: Option<bool> =
        sqlx::query_scalar("SELECT allow_client_metadata_documents FROM tenants").fetch_optional(tx.conn()).await?;
    Ok(allow.unwrap_or(false))
}

/// Of `tenants`, the active ones that allow clients of client ID metadata documents
/// (SECURITY DEFINER lookup: the tenant choice happens before a tenant is set).
pub async fn allowing_client_metadata_documents(tx: &mut Tx, tenants: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT lca_client_metadata_tenants($1)").bind(tenants).fetch_all(tx.conn()).await
}

/// Whether any active tenant allows clients of client ID metadata documents (SECURITY
/// DEFINER lookup): until one does, no document is fetched.
pub async fn any_allows_client_metadata_documents(tx: &mut Tx) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT lca_client_metadata_enabled()").fetch_one(tx.conn()).await
}

/// Every tenant's id and slug (SECURITY DEFINER lookup; for operator commands).
pub async fn list(tx: &mut Tx) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, slug FROM lca_tenant_list()").fetch_all(tx.conn()).await
}

/// Whether the transaction's tenant requires MFA of every member.
pub async fn requires_mfa(tx: &mut Tx) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query_scalar("SELECT require_mfa FROM tenants").fetch_optional(tx.conn()).await?.unwrap_or(false))
}

/// Sets the transaction's tenant's status; true if it changed.
/// Operator transactions only, like [`insert`].
pub async fn set_status(tx: &mut Tx, status: TenantStatus) -> Result<bool, sqlx::Error> {
    let tenant_id = tx.tenant_id().unwrap_or_default();
    let done = sqlx::query("UPDATE tenants SET status = $2 WHERE id = $1 AND status <> $2")
        .bind(tenant_id)
        .bind(status)
        .execute(tx.conn())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets whether the transaction's tenant requires MFA; true if it changed. Operator
/// transactions only, like [`insert`].
pub async fn set_require_mfa(tx: &mut Tx, require: bool) -> Result<bool, sqlx::Error> {
    let tenant_id = tx.tenant_id().unwrap_or_default();
    let done = sqlx::query("UPDATE tenants SET require_mfa = $2 WHERE id = $1 AND require_mfa <> $2")
        .bind(tenant_id)
        .bind(require)
        .execute(tx.conn())
        .await?;
    Ok(done.rows_affected() == 1)
}
