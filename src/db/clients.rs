//! Client (relying party) rows.

use uuid::Uuid;

use super::Tx;
use crate::vocabulary::{ClientType, Role};

/// A client registration as it is written.
#[derive(Debug, Clone)]
pub struct NewClient<'a> {
    pub client_id: &'a str,
    pub name: &'a str,
    pub client_type: ClientType,
    pub secret_hash: Option<&'a [u8]>,
    pub token_endpoint_auth_method: &'a str,
    pub grant_types: &'a [String],
    pub redirect_uris: &'a [String],
    pub post_logout_redirect_uris: &'a [String],
    pub service_role: Option<Role>,
    pub multi_tenant: bool,
    pub signing_alg: &'a str,
    pub require_mfa: bool,
    pub require_pkce: bool,
    /// The lost-response window of refresh rotation, in seconds (0: none).
    pub refresh_grace_secs: i32,
    pub scopes: &'a [String],
    /// Authorization requests must be pushed (RFC 9126 §6).
    pub require_par: bool,
    /// Where logout tokens are POSTed (OpenID Connect Back-Channel Logout 1.0 §2.2).
    pub backchannel_logout_uri: Option<&'a str>,
}

/// Inserts a client into the transaction's tenant.
pub async fn insert(tx: &mut Tx, tenant_id: Uuid, c: &NewClient<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO clients (tenant_id, client_id, name, client_type, secret_hash, \
         token_endpoint_auth_method, grant_types, redirect_uris, post_logout_redirect_uris, \
         service_role, multi_tenant, signing_alg, require_mfa, require_pkce, scopes, refresh_grace_secs, require_par, \
         backchannel_logout_uri) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(tenant_id)
    .bind(c.client_id)
    .bind(c.name)
    .bind(c.client_type)
    .bind(c.secret_hash)
    .bind(c.token_endpoint_auth_method)
    .bind(c.grant_types)
    .bind(c.redirect_uris)
    .bind(c.post_logout_redirect_uris)
    .bind(c.service_role)
    .bind(c.multi_tenant)
    .bind(c.signing_alg)
    .bind(c.require_mfa)
    .bind(c.require_pkce)
    .bind(c.scopes)
    .bind(c.refresh_grace_secs)
    .bind(c.require_par)
    .bind(c.backchannel_logout_uri)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The tenant that owns `client_id` (SECURITY DEFINER lookup).
pub async fn tenant_of(tx: &mut Tx, client_id: &str) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT lca_client_tenant($1)").bind(client_id).fetch_one(tx.conn()).await
}

/// The tenant that owns `client_id`, whatever its status (SECURITY DEFINER lookup, for
/// operator commands and signing out).
pub async fn owner_of(tx: &mut Tx, client_id: &str) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT lca_client_owner($1)").bind(client_id).fetch_one(tx.conn()).await
}

/// What `client update` changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ClientChange<'a> {
    pub name: Option<&'a str>,
    pub redirect_uris: Option<&'a [String]>,
    pub post_logout_redirect_uris: Option<&'a [String]>,
    pub refresh_grace_secs: Option<i32>,
}

/// Updates a client of the transaction's tenant; false if there is none.
pub async fn update(tx: &mut Tx, client_id: &str, c: &ClientChange<'_>) -> Result<bool, sqlx::Error> {
    let tenant_id = tx.tenant_id().unwrap_or_default();
    let done = sqlx::query(
        "UPDATE clients SET name = COALESCE($3, name), redirect_uris = COALESCE($4, redirect_uris), \
         post_logout_redirect_uris = COALESCE($5, post_logout_redirect_uris), \
         refresh_grace_secs = COALESCE($6, refresh_grace_secs), updated_at = now() \
         WHERE tenant_id = $1 AND client_id = $2",
    )
    .bind(tenant_id)
    .bind(client_id)
    .bind(c.name)
    .bind(c.redirect_uris)
    .bind(c.post_logout_redirect_uris)
    .bind(c.refresh_grace_secs)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Replaces a confidential client's secret hash; false if there is no such client.
pub async fn set_secret_hash(tx: &mut Tx, client_id: &str, secret_hash: &[u8]) -> Result<bool, sqlx::Error> {
    let tenant_id = tx.tenant_id().unwrap_or_default();
    let done = sqlx::query(
        "UPDATE clients SET secret_hash = $3, updated_at = now() \
         WHERE tenant_id = $1 AND client_id = $2 AND client_type = 'confidential'",
    )
    .bind(tenant_id)
    .bind(client_id)
    .bind(secret_hash)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes a client of the transaction's tenant; false if there is none.
pub async fn delete(tx: &mut Tx, client_id: &str) -> Result<bool, sqlx::Error> {
    let tenant_id = tx.tenant_id().unwrap_or_default();
    let done = sqlx::query("DELETE FROM clients WHERE tenant_id = $1 AND client_id = $2")
        .bind(tenant_id)
        .bind(client_id)
        .execute(tx.conn())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A client as the protocol reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientRow {
    pub tenant_id: Uuid,
    pub client_id: String,
    pub name: String,
    pub client_type: ClientType,
    pub secret_hash: Option<Vec<u8>>,
    pub token_endpoint_auth_method: String,
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub service_role: Option<Role>,
    pub multi_tenant: bool,
    pub signing_alg: String,
    pub require_pkce: bool,
    /// Logins through this client need a second factor.
    pub require_mfa: bool,
    /// The lost-response window of refresh rotation, in seconds (0: none).
    pub refresh_grace_secs: i32,
    /// Authorization requests must be pushed (RFC 9126 §6).
    pub require_par: bool,
    /// For a client of a client ID metadata document (migrations/0030): until when the stored
    /// document may be used without fetching it again. `None` for every other client.
    pub metadata_expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl ClientRow {
    /// Whether the client is described by a client ID metadata document (its client_id is the
    /// document's URL).
    pub fn is_metadata_document(&self) -> bool {
        self.metadata_expires_at.is_some()
    }
}

/// A client of the transaction's tenant.
pub async fn get(tx: &mut Tx, client_id: &str) -> Result<Option<ClientRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT tenant_id, client_id, name, client_type, secret_hash, token_endpoint_auth_method, grant_types, \
         redirect_uris, post_logout_redirect_uris, scopes, service_role, multi_tenant, signing_alg, require_pkce, \
         require_mfa, refresh_grace_secs, require_par, metadata_expires_at FROM clients WHERE client_id = $1",
    )
    .bind(client_id)
    .fetch_optional(tx.conn())
    .await
}

/// A client of the transaction's tenant as the admin surface lists it: everything but the
/// secret's hash.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientListing {
    pub client_id: String,
    pub name: String,
    pub client_type: ClientType,
    pub token_endpoint_auth_method: String,
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub service_role: Option<Role>,
    pub multi_tenant: bool,
    pub signing_alg: String,
    pub require_pkce: bool,
    pub require_mfa: bool,
    pub refresh_grace_secs: i32,
    pub require_par: bool,
    pub backchannel_logout_uri: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// The columns of a [`ClientListing`] (a macro: sqlx takes only static SQL).
macro_rules! listing_select {
    ($rest:literal) => {
        concat!(
            "SELECT client_id, name, client_type, token_endpoint_auth_method, grant_types, redirect_uris, \
             post_logout_redirect_uris, scopes, service_role, multi_tenant, signing_alg, require_pkce, require_mfa, \
             refresh_grace_secs, require_par, backchannel_logout_uri, created_at, updated_at FROM clients ",
            $rest
        )
    };
}

/// Up to `limit` clients of the transaction's tenant after `after`, by client id.
pub async fn page(tx: &mut Tx, after: Option<&str>, limit: i64) -> Result<Vec<ClientListing>, sqlx::Error> {
    let tenant_id = tx.tenant_id().unwrap_or_default();
    sqlx::query_as(listing_select!(
        "WHERE tenant_id = $1 AND ($2::text IS NULL OR client_id > $2) ORDER BY client_id LIMIT $3"
    ))
    .bind(tenant_id)
    .bind(after)
    .bind(limit)
    .fetch_all(tx.conn())
    .await
}

/// How many clients the transaction's tenant has (every row [`page`] would list).
pub async fn count(tx: &mut Tx) -> Result<i64, sqlx::Error> {
    let tenant_id = tx.tenant_id().unwrap_or_default();
    sqlx::query_scalar("SELECT count(*) FROM clients WHERE tenant_id = $1").bind(tenant_id).fetch_one(tx.conn()).await
}

/// One client of the transaction's tenant, as listed.
pub async fn listing(tx: &mut Tx, client_id: &str) -> Result<Option<ClientListing>, sqlx::Error> {
    let tenant_id = tx.tenant_id().unwrap_or_default();
    sqlx::query_as(listing_select!("WHERE tenant_id = $1 AND client_id = $2"))
        .bind(tenant_id)
        .bind(client_id)
        .fetch_optional(tx.conn())
        .await
}

/// Keeps the hash of a dynamically registered client's registration access token (RFC 7592).
pub async fn set_registration_token(tx: &mut Tx, client_id: &str, hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE clients SET registration_token_hash = $2 WHERE client_id = $1")
        .bind(client_id)
        .bind(hash)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// The hash of a client's registration access token; `None` for a client an administrator
/// registered (it has none).
pub async fn registration_token(tx: &mut Tx, client_id: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
    let hash: Option<Option<Vec<u8>>> =
        sqlx::query_scalar("SELECT registration_token_hash FROM clients WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(tx.conn())
            .await?;
    Ok(hash.flatten())
}

/// The stored document of a client of a client ID metadata document, its row locked until the
/// transaction ends (so concurrent re-fetches write one after the other); `None` when there is
/// no such client in the transaction's tenant.
pub async fn lock_metadata_document(tx: &mut Tx, client_id: &str) -> Result<Option<serde_json::Value>, sqlx::Error> {
    let doc: Option<Option<serde_json::Value>> =
        sqlx::query_scalar("SELECT metadata_document FROM clients WHERE client_id = $1 FOR UPDATE")
            .bind(client_id)
            .fetch_optional(tx.conn())
            .await?;
    Ok(doc.flatten())
}

/// Writes a client of a client ID metadata document into the transaction's tenant: inserted,
/// or its registration replaced by the document's when it exists (`ON CONFLICT`, so two
/// first uses racing make one row). Never touches a client that has no document. Returns
/// whether the row was inserted, or `None` when a client without a document holds the id.
pub async fn upsert_metadata_client(
    tx: &mut Tx,
    c: &NewClient<'_>,
    document: &serde_json::Value,
    expires_at: chrono::DateTime<chrono::Utc>,
) -> Result<Option<bool>, sqlx::Error> {
    let tenant_id = tx.tenant_id().unwrap_or_default();
    sqlx::query_scalar(
        "INSERT INTO clients (tenant_id, client_id, name, client_type, secret_hash, \
         token_endpoint_auth_method, grant_types, redirect_uris, post_logout_redirect_uris, \
         service_role, multi_tenant, signing_alg, require_mfa, require_pkce, scopes, refresh_grace_secs, require_par, \
         backchannel_logout_uri, metadata_document, metadata_expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) \
         ON CONFLICT (tenant_id, client_id) DO UPDATE SET name = EXCLUDED.name, grant_types = EXCLUDED.grant_types, \
         redirect_uris = EXCLUDED.redirect_uris, post_logout_redirect_uris = EXCLUDED.post_logout_redirect_uris, \
         scopes = EXCLUDED.scopes, metadata_document = EXCLUDED.metadata_document, \
         metadata_expires_at = EXCLUDED.metadata_expires_at, updated_at = now() \
         WHERE clients.metadata_document IS NOT NULL \
         RETURNING (xmax = 0)",
    )
    .bind(tenant_id)
    .bind(c.client_id)
    .bind(c.name)
    .bind(c.client_type)
    .bind(c.secret_hash)
    .bind(c.token_endpoint_auth_method)
    .bind(c.grant_types)
    .bind(c.redirect_uris)
    .bind(c.post_logout_redirect_uris)
    .bind(c.service_role)
    .bind(c.multi_tenant)
    .bind(c.signing_alg)
    .bind(c.require_mfa)
    .bind(c.require_pkce)
    .bind(c.scopes)
    .bind(c.refresh_grace_secs)
    .bind(c.require_par)
    .bind(c.backchannel_logout_uri)
    .bind(document)
    .bind(expires_at)
    .fetch_optional(tx.conn())
    .await
}
