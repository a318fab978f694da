//! The tenant's registered APIs (`resource_servers`, migrations/0023): what a `resource`
//! parameter (RFC 8707) may name, the scopes each defines and the clients that may ask for it.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Tx;

/// A registered API.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ResourceServerRow {
    pub id: Uuid,
    pub identifier: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub client_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// The columns of a [`ResourceServerRow`] (a macro: sqlx takes only static SQL).
macro_rules! columns {
    () => {
        "id, identifier, name, scopes, client_ids, created_at"
    };
}

/// Registers an API in the transaction's tenant; `false` when the tenant has one by that
/// identifier already.
pub async fn insert(tx: &mut Tx, row: &ResourceServerRow) -> Result<bool, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    let done = sqlx::query(
        "INSERT INTO resource_servers (tenant_id, id, identifier, name, scopes, client_ids, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, identifier) DO NOTHING",
    )
    .bind(tenant_id)
    .bind(row.id)
    .bind(&row.identifier)
    .bind(&row.name)
    .bind(&row.scopes)
    .bind(&row.client_ids)
    .bind(row.created_at)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The tenant's APIs, by identifier.
pub async fn list(tx: &mut Tx) -> Result<Vec<ResourceServerRow>, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM resource_servers WHERE tenant_id = $1 ORDER BY identifier LIMIT 500"
    ))
    .bind(tenant_id)
    .fetch_all(tx.conn())
    .await
}

/// The tenant's APIs with these identifiers (those it has; unknown ones are left out).
pub async fn by_identifiers(tx: &mut Tx, identifiers: &[String]) -> Result<Vec<ResourceServerRow>, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM resource_servers WHERE tenant_id = $1 AND identifier = ANY($2) ORDER BY identifier"
    ))
    .bind(tenant_id)
    .bind(identifiers)
    .fetch_all(tx.conn())
    .await
}

/// Removes an API; the removed row, `None` when the tenant has none by that id.
pub async fn delete(tx: &mut Tx, id: Uuid) -> Result<Option<ResourceServerRow>, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query_as(concat!("DELETE FROM resource_servers WHERE tenant_id = $1 AND id = $2 RETURNING ", columns!()))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(tx.conn())
        .await
}

/// Takes a deleted client off every API's list of allowed clients.
pub async fn forget_client(tx: &mut Tx, client_id: &str) -> Result<(), sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query(
        "UPDATE resource_servers SET client_ids = array_remove(client_ids, $2) \
         WHERE tenant_id = $1 AND $2 = ANY(client_ids)",
    )
    .bind(tenant_id)
    .bind(client_id)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// An API by id.
pub async fn by_id(tx: &mut Tx, id: Uuid) -> Result<Option<ResourceServerRow>, sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query_as(concat!("SELECT ", columns!(), " FROM resource_servers WHERE tenant_id = $1 AND id = $2"))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(tx.conn())
        .await
}

/// Writes an API's name, scopes and allowed clients.
pub async fn update(tx: &mut Tx, row: &ResourceServerRow) -> Result<(), sqlx::Error> {
    let tenant_id = tx.tenant_or_nil();
    sqlx::query("UPDATE resource_servers SET name = $3, scopes = $4, client_ids = $5 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(row.id)
        .bind(&row.name)
        .bind(&row.scopes)
        .bind(&row.client_ids)
        .execute(tx.conn())
        .await?;
    Ok(())
}
