//! Clients (relying parties and service accounts) of the caller's tenant: listing, reading,
//! registering, changing, a new secret, deletion. The work is `crate::clients`, by tenant id;
//! here are the permission check and the admin surface's own rules: no service account above
//! the caller's role, and no multi-tenant client from a tenant caller.

use super::{Action, Caller, Cursor, HandlerChecks, Page};
use crate::clients::change::{self, ClientUpdate, DeletedClient, RotatedSecret, UpdatedClient};
use crate::clients::{self, ADMIN_SCOPE, ClientRequest, CreatedClient};
use crate::db::{self, Database};
use crate::service_error::ServiceError;
use crate::vocabulary::{ClientType, Role};
use chrono::{DateTime, Utc};

/// A client as the admin surface shows it: never its secret nor the secret's hash.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    #[schema(value_type = String, example = "confidential")]
    pub client_type: ClientType,
    /// `client_secret_basic`, `client_secret_post` or `none`.
    pub token_endpoint_auth_method: String,
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// The scopes the client may ask for (`admin` when it may call the admin API).
    pub scopes: Vec<String>,
    /// A service account's role in the tenant (client credentials only).
    #[schema(value_type = Option<String>, example = "viewer")]
    pub role: Option<Role>,
    pub multi_tenant: bool,
    pub signing_alg: String,
    pub require_pkce: bool,
    pub require_mfa: bool,
    /// The lost-response grace window of refresh rotation, in seconds (0: none).
    pub refresh_grace_secs: i32,
    /// Whether the client may ask for the `admin` scope.
    pub admin_api: bool,
    /// Authorization requests must be pushed (RFC 9126 §6).
    pub require_pushed_authorization_requests: bool,
    /// Where logout tokens are POSTed (OpenID Connect Back-Channel Logout 1.0).
    pub backchannel_logout_uri: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<db::clients::ClientListing> for ClientView {
    fn from(c: db::clients::ClientListing) -> Self {
        Self {
            admin_api: c.scopes.iter().any(|s| s == ADMIN_SCOPE),
            client_id: c.client_id,
            name: c.name,
            client_type: c.client_type,
            token_endpoint_auth_method: c.token_endpoint_auth_method,
            grant_types: c.grant_types,
            redirect_uris: c.redirect_uris,
            post_logout_redirect_uris: c.post_logout_redirect_uris,
            scopes: c.scopes,
            role: c.service_role,
            multi_tenant: c.multi_tenant,
            signing_alg: c.signing_alg,
            require_pkce: c.require_pkce,
            require_mfa: c.require_mfa,
            refresh_grace_secs: c.refresh_grace_secs,
            require_pushed_authorization_requests: c.require_par,
            backchannel_logout_uri: c.backchannel_logout_uri,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// What a caller asks for when registering a client (the admin surface's half of
/// [`ClientRequest`]: the tenant is the caller's).
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    pub name: String,
    /// `authorization_code`, `refresh_token`, `client_credentials`, `device_code`.
    pub grants: Vec<String>,
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// A service account's role (client credentials only); at most the caller's own.
    pub role: Option<Role>,
    /// Refused to tenant callers (see [`create`]).
    pub multi_tenant: bool,
    pub signing_alg: Option<String>,
    pub auth_method: Option<String>,
    pub require_mfa: bool,
    /// The client may ask for the `admin` scope.
    pub admin_api: bool,
    /// A confidential client may leave PKCE out (see [`ClientRequest::pkce_optional`]).
    pub pkce_optional: bool,
    /// The lost-response grace window (see [`ClientRequest::refresh_grace_secs`]).
    pub refresh_grace_secs: u32,
    /// Authorization requests must be pushed (see [`ClientRequest::require_par`]).
    pub require_par: bool,
    /// See [`ClientRequest::backchannel_logout_uri`].
    pub backchannel_logout_uri: Option<String>,
}

/// Bounds on what a caller may send: redirect URIs per list and their length, grant and
/// option words.
pub const MAX_URIS: usize = 20;
pub const MAX_URI_LEN: usize = 2000;
const MAX_WORDS: usize = 8;
const MAX_WORD_LEN: usize = 64;

fn bounded_uris(uris: &[String], what: &str) -> Result<(), ServiceError> {
    if uris.len() > MAX_URIS || uris.iter().any(|u| u.len() > MAX_URI_LEN) {
        return Err(ServiceError::Invalid(format!(
            "{what}: at most {MAX_URIS} URIs of at most {MAX_URI_LEN} characters"
        )));
    }
    Ok(())
}

fn bounded_word(word: Option<&str>, what: &str) -> Result<(), ServiceError> {
    if word.is_some_and(|w| w.len() > MAX_WORD_LEN) {
        return Err(ServiceError::Invalid(format!("{what}: at most {MAX_WORD_LEN} characters")));
    }
    Ok(())
}

fn no_client() -> ServiceError {
    ServiceError::NotFound("no such client".into())
}

/// A page of the tenant's clients, by client id.
pub async fn list(db: &Database, caller: &Caller, cursor: &Cursor) -> Result<Page<ClientView>, ServiceError> {
    caller.require(Action::ReadClients)?;
    let mut tx = db.tenant(caller.tenant_id).await?;
    let rows = db::clients::page(&mut tx, cursor.after.as_deref(), cursor.fetch()).await?;
    tx.commit().await?;
    Ok(cursor.page(rows.into_iter().map(ClientView::from).collect(), |c| c.client_id.clone()))
}

/// How many clients the tenant has.
pub async fn count(db: &Database, caller: &Caller) -> Result<u64, ServiceError> {
    caller.require(Action::ReadClients)?;
    let mut tx = db.tenant(caller.tenant_id).await?;
    let n = db::clients::count(&mut tx).await?;
    tx.commit().await?;
    Ok(u64::try_from(n).unwrap_or_default())
}

/// One client; `NotFound` for any client id that is not the caller's tenant's.
pub async fn get(db: &Database, caller: &Caller, client_id: &str) -> Result<ClientView, ServiceError> {
    caller.require(Action::ReadClients)?;
    let mut tx = db.tenant(caller.tenant_id).await?;
    let row = db::clients::listing(&mut tx, client_id).await?;
    tx.commit().await?;
    row.map(ClientView::from).ok_or_else(no_client)
}

/// The most a client can do in its tenant: a service account acts with its role; a client of
/// the admin API receives its users' admin tokens (its redirect URIs get their codes, and a
/// phishing admin client could ask an admin's consent), so it counts as admin.
fn power(role: Option<Role>, admin_api: bool) -> Option<Role> {
    if admin_api { Some(Role::Admin) } else { role }
}

/// Refuses to let a caller register or manage a client that can do more than they can: an
/// editor who rotated an admin service account's secret, or pointed an admin-API client's
/// redirect URIs at their own server, would hold an admin's tokens.
fn within_reach(caller: &Caller, power: Option<Role>) -> Result<(), ServiceError> {
    match power {
        Some(p) if p > caller.role && caller.checks() == HandlerChecks::Enforced => Err(ServiceError::Forbidden(
            format!("this client can act as {p} (a service account's role, or the admin API); you are {}", caller.role),
        )),
        _ => Ok(()),
    }
}

/// The client as the caller may manage it: `NotFound` outside their tenant, `Forbidden` when
/// it can do more than they can.
async fn reachable(db: &Database, caller: &Caller, client_id: &str) -> Result<(), ServiceError> {
    let mut tx = db.tenant(caller.tenant_id).await?;
    let row = db::clients::listing(&mut tx, client_id).await?;
    tx.commit().await?;
    let row = row.ok_or_else(no_client)?;
    within_reach(caller, power(row.service_role, row.scopes.iter().any(|s| s == ADMIN_SCOPE)))
}

/// Registers a client in the caller's tenant; its secret is in the answer, once.
///
/// Two rules beyond the permission table. No client can do more than the caller
/// ([`within_reach`]: an editor cannot mint an admin service account and act through it). A
/// multi-tenant client receives tokens for other tenants' users, so only the operator (the
/// command line) or a platform admin may register one.
pub async fn create(db: &Database, caller: &Caller, new: NewClient) -> Result<CreatedClient, ServiceError> {
    caller.require(Action::ManageClients)?;
    within_reach(caller, power(new.role, new.admin_api))?;
    if new.grants.len() > MAX_WORDS {
        return Err(ServiceError::Invalid(format!("at most {MAX_WORDS} grants")));
    }
    for g in &new.grants {
        bounded_word(Some(g), "grant")?;
    }
    bounded_word(new.signing_alg.as_deref(), "signing_alg")?;
    bounded_word(new.auth_method.as_deref(), "token_endpoint_auth_method")?;
    bounded_uris(&new.redirect_uris, "redirect_uris")?;
    bounded_uris(&new.post_logout_redirect_uris, "post_logout_redirect_uris")?;
    if new.multi_tenant && !caller.platform_admin {
        return Err(ServiceError::Forbidden(
            "a multi-tenant client receives tokens for other tenants' users: only a platform admin or the \
             operator may register one"
                .into(),
        ));
    }
    let req = ClientRequest {
        tenant: caller.slug.clone(),
        name: new.name,
        grants: new.grants,
        public: new.public,
        redirect_uris: new.redirect_uris,
        post_logout_redirect_uris: new.post_logout_redirect_uris,
        role: new.role,
        multi_tenant: new.multi_tenant,
        signing_alg: new.signing_alg,
        auth_method: new.auth_method,
        require_mfa: new.require_mfa,
        admin_api: new.admin_api,
        pkce_optional: new.pkce_optional,
        refresh_grace_secs: new.refresh_grace_secs,
        require_par: new.require_par,
        backchannel_logout_uri: new.backchannel_logout_uri,
    };
    clients::create_client_in(db, &caller.actor, caller.tenant_id, req).await
}

/// What may change on a registered client; each list given replaces the registered one.
#[derive(Debug, Clone, Default)]
pub struct ClientChange {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub refresh_grace_secs: Option<u32>,
}

/// Changes a client's name or redirect URIs; `client.updated`.
pub async fn update(
    db: &Database,
    caller: &Caller,
    client_id: &str,
    change: ClientChange,
) -> Result<UpdatedClient, ServiceError> {
    caller.require(Action::ManageClients)?;
    reachable(db, caller, client_id).await?;
    bounded_uris(change.redirect_uris.as_deref().unwrap_or_default(), "redirect_uris")?;
    bounded_uris(change.post_logout_redirect_uris.as_deref().unwrap_or_default(), "post_logout_redirect_uris")?;
    let req = ClientUpdate {
        client_id: client_id.to_owned(),
        name: change.name,
        redirect_uris: change.redirect_uris,
        post_logout_redirect_uris: change.post_logout_redirect_uris,
        refresh_grace_secs: change.refresh_grace_secs,
    };
    change::update_client_in(db, &caller.actor, caller.tenant_id, req).await.map_err(hide_id)
}

/// A confidential client's new secret, shown once; the old one stops working at once.
pub async fn rotate_secret(db: &Database, caller: &Caller, client_id: &str) -> Result<RotatedSecret, ServiceError> {
    caller.require(Action::ManageClients)?;
    reachable(db, caller, client_id).await?;
    change::rotate_secret_in(db, &caller.actor, caller.tenant_id, client_id).await.map_err(hide_id)
}

/// Deletes a client and ends everything it was issued; `client.deleted`.
pub async fn delete(db: &Database, caller: &Caller, client_id: &str) -> Result<DeletedClient, ServiceError> {
    caller.require(Action::ManageClients)?;
    reachable(db, caller, client_id).await?;
    change::delete_client_in(db, &caller.actor, caller.tenant_id, client_id).await.map_err(hide_id)
}

/// The same `NotFound` as [`get`], whatever the lower layer said about the id.
fn hide_id(e: ServiceError) -> ServiceError {
    match e {
        ServiceError::NotFound(_) => no_client(),
        other => other,
    }
}
