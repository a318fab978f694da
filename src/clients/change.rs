//! Changes to a registered client, each audited in the transaction that makes it: its name and
//! redirect URIs (`client.updated`), a new secret (`client.secret_rotated`), deletion with
//! everything it was issued (`client.deleted`).

use serde::Serialize;

use super::RedirectUri;
use super::{GRANT_AUTHORIZATION_CODE, find_any, parse_uris};
use crate::db::audit::{self, Actor};
use crate::db::{self, Database};
use crate::secrets::Secret;
use crate::service_error::ServiceError;
use crate::vocabulary::ClientType;

/// What `client update` asks for: each list given replaces the registered one.
#[derive(Debug, Clone, Default)]
pub struct ClientUpdate {
    pub client_id: String,
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// The lost-response grace window of refresh rotation, in seconds.
    pub refresh_grace_secs: Option<u32>,
}

/// A client as it is after a change.
#[derive(Debug, Clone, Serialize)]
pub struct UpdatedClient {
    pub client_id: String,
    pub tenant_id: uuid::Uuid,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub refresh_grace_secs: i32,
    /// The fields that were given.
    pub changed: Vec<&'static str>,
}

fn no_client(client_id: &str) -> ServiceError {
    ServiceError::NotFound(format!("no client with id {client_id:?}"))
}

/// The tenant that owns `client_id`, whatever its status: the command line names a client by
/// its id alone.
async fn owner(db: &Database, client_id: &str) -> Result<uuid::Uuid, ServiceError> {
    Ok(find_any(db, client_id).await?.ok_or_else(|| no_client(client_id))?.tenant_id)
}

/// Changes a client's name and redirect URIs, wherever it is (the command line); see
/// [`update_client_in`].
pub async fn update_client(db: &Database, actor: &Actor, req: ClientUpdate) -> Result<UpdatedClient, ServiceError> {
    let tenant_id = owner(db, &req.client_id).await?;
    update_client_in(db, actor, tenant_id, req).await
}

/// Changes the name and redirect URIs of a client of tenant `tenant_id`; `client.updated`
/// (with the old and new values). The client is read and changed in one transaction of that
/// tenant, so another tenant's client is `NotFound` (Row Level Security).
pub async fn update_client_in(
    db: &Database,
    actor: &Actor,
    tenant_id: uuid::Uuid,
    req: ClientUpdate,
) -> Result<UpdatedClient, ServiceError> {
    let mut tx = db.tenant(tenant_id).await?;
    let client = db::clients::get(&mut tx, &req.client_id).await?.ok_or_else(|| no_client(&req.client_id))?;
    let name = match &req.name {
        Some(n) => {
            let n = n.trim();
            if n.is_empty() || n.chars().count() > 200 || n.chars().any(char::is_control) {
                return Err(ServiceError::Invalid("client name must be 1-200 printable characters".into()));
            }
            Some(n.to_owned())
        }
        None => None,
    };
    let code_grant = client.grant_types.iter().any(|g| g == GRANT_AUTHORIZATION_CODE);
    let uris = |given: &Option<Vec<String>>, flag: &str| -> Result<Option<Vec<String>>, ServiceError> {
        let Some(given) = given else { return Ok(None) };
        if !code_grant {
            return Err(ServiceError::Invalid("redirect URIs are only used by the authorization_code grant".into()));
        }
        Ok(Some(parse_uris(given, flag)?.into_iter().map(RedirectUri::into_string).collect()))
    };
    let redirect_uris = uris(&req.redirect_uris, "--redirect-uri")?;
    if redirect_uris.as_ref().is_some_and(Vec::is_empty) {
        return Err(ServiceError::Invalid("authorization_code needs at least one --redirect-uri".into()));
    }
    let post_logout = uris(&req.post_logout_redirect_uris, "--post-logout-redirect-uri")?;
    let grace = req.refresh_grace_secs.map(|secs| super::refresh_grace(secs, &client.grant_types)).transpose()?;
    let mut changed = Vec::new();
    let mut details = serde_json::Map::new();
    let mut note = |field: &'static str, before: serde_json::Value, after: serde_json::Value| {
        changed.push(field);
        details.insert(field.into(), serde_json::json!({ "from": before, "to": after }));
    };
    if let Some(n) = &name {
        note("name", client.name.clone().into(), n.clone().into());
    }
    if let Some(u) = &redirect_uris {
        note("redirect_uris", client.redirect_uris.clone().into(), u.clone().into());
    }
    if let Some(u) = &post_logout {
        note("post_logout_redirect_uris", client.post_logout_redirect_uris.clone().into(), u.clone().into());
    }
    if let Some(g) = grace {
        note("refresh_grace_secs", client.refresh_grace_secs.into(), g.into());
    }
    if changed.is_empty() {
        return Err(ServiceError::Invalid(
            "nothing to change: give --name, --redirect-uri, --post-logout-redirect-uri or --refresh-grace-secs".into(),
        ));
    }
    let change = db::clients::ClientChange {
        name: name.as_deref(),
        redirect_uris: redirect_uris.as_deref(),
        post_logout_redirect_uris: post_logout.as_deref(),
        refresh_grace_secs: grace,
    };
    if !db::clients::update(&mut tx, &client.client_id, &change).await? {
        return Err(no_client(&req.client_id));
    }
    let event = actor.event("client.updated", ("client", Some(client.client_id.clone())), details.into());
    audit::append(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(UpdatedClient {
        client_id: client.client_id,
        tenant_id: client.tenant_id,
        name: name.unwrap_or(client.name),
        redirect_uris: redirect_uris.unwrap_or(client.redirect_uris),
        post_logout_redirect_uris: post_logout.unwrap_or(client.post_logout_redirect_uris),
        refresh_grace_secs: grace.unwrap_or(client.refresh_grace_secs),
        changed,
    })
}

/// A confidential client's new secret, shown once.
#[derive(Debug, Serialize)]
pub struct RotatedSecret {
    pub client_id: String,
    #[serde(serialize_with = "expose_one")]
    pub client_secret: Secret,
}

fn expose_one<S: serde::Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose())
}

/// Replaces a confidential client's secret, wherever it is (the command line); see
/// [`rotate_secret_in`].
pub async fn rotate_secret(db: &Database, actor: &Actor, client_id: &str) -> Result<RotatedSecret, ServiceError> {
    let tenant_id = owner(db, client_id).await?;
    rotate_secret_in(db, actor, tenant_id, client_id).await
}

/// Replaces the secret of a confidential client of tenant `tenant_id`; the old one stops
/// working at once, tokens already issued stay valid. `client.secret_rotated`.
pub async fn rotate_secret_in(
    db: &Database,
    actor: &Actor,
    tenant_id: uuid::Uuid,
    client_id: &str,
) -> Result<RotatedSecret, ServiceError> {
    let mut tx = db.tenant(tenant_id).await?;
    let client = db::clients::get(&mut tx, client_id).await?.ok_or_else(|| no_client(client_id))?;
    if client.client_type != ClientType::Confidential {
        return Err(ServiceError::Invalid("a public client has no secret".into()));
    }
    let secret = Secret::generate();
    if !db::clients::set_secret_hash(&mut tx, &client.client_id, &secret.hash()).await? {
        return Err(no_client(client_id));
    }
    let event = actor.event("client.secret_rotated", ("client", Some(client.client_id.clone())), serde_json::json!({}));
    audit::append(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(RotatedSecret { client_id: client.client_id, client_secret: secret })
}

/// What deleting a client ended.
#[derive(Debug, Clone, Serialize)]
pub struct DeletedClient {
    pub client_id: String,
    pub tenant_id: uuid::Uuid,
    pub families_revoked: u64,
    pub access_tokens_revoked: u64,
}

/// Deletes a client and ends everything it was issued; `client.deleted`. The client, the
/// revocation in its own tenant and the event are one transaction; a multi-tenant client's
/// families in other tenants are revoked after it, one transaction per tenant (the client is
/// gone by then, so none of them can be refreshed in between).
pub async fn delete_client(db: &Database, actor: &Actor, client_id: &str) -> Result<DeletedClient, ServiceError> {
    let tenant_id = owner(db, client_id).await?;
    delete_client_in(db, actor, tenant_id, client_id).await
}

/// [`delete_client`] for a client of tenant `tenant_id`, read in that tenant's transaction
/// (another tenant's client is `NotFound`).
pub async fn delete_client_in(
    db: &Database,
    actor: &Actor,
    tenant_id: uuid::Uuid,
    client_id: &str,
) -> Result<DeletedClient, ServiceError> {
    let mut tx = db.tenant(tenant_id).await?;
    let client = db::clients::get(&mut tx, client_id).await?.ok_or_else(|| no_client(client_id))?;
    if !db::clients::delete(&mut tx, &client.client_id).await? {
        return Err(no_client(client_id));
    }
    db::resource_servers::forget_client(&mut tx, &client.client_id).await?;
    let mut families = db::families::revoke_of_client(&mut tx, &client.client_id, "client_deleted").await?;
    let mut tokens = db::access_tokens::revoke_of_client_without_family(&mut tx, &client.client_id).await?;
    let details = serde_json::json!({
        "name": client.name,
        "families_revoked": families,
        "access_tokens_revoked": tokens,
    });
    audit::append(&mut tx, &actor.event("client.deleted", ("client", Some(client.client_id.clone())), details)).await?;
    tx.commit().await?;
    if client.multi_tenant {
        let mut tx = db.unscoped().await?;
        let tenants = db::tenants::list(&mut tx).await?;
        tx.commit().await?;
        for (tenant_id, _) in tenants.into_iter().filter(|(id, _)| *id != client.tenant_id) {
            let mut tx = db.tenant(tenant_id).await?;
            let f = db::families::revoke_of_client(&mut tx, &client.client_id, "client_deleted").await?;
            let t = db::access_tokens::revoke_of_client_without_family(&mut tx, &client.client_id).await?;
            tx.commit().await?;
            families += f;
            tokens += t;
        }
    }
    Ok(DeletedClient {
        client_id: client.client_id,
        tenant_id: client.tenant_id,
        families_revoked: families,
        access_tokens_revoked: tokens,
    })
}
