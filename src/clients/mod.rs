//! Client (relying party) registration.

pub mod redirect_uri;

use serde::Serialize;

use crate::db::audit::{self, Actor};
use crate::db::{self, Database};
use crate::error::ServiceError;
use crate::secrets::{self, Secret};
use crate::tenancy::{self, Role};
pub use redirect_uri::RedirectUri;

/// Grant types a client may be allowed (RFC 6749 §4, RFC 8628 §3.4).
pub const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
pub const GRANT_DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Signing algorithms a client may ask for its ID tokens.
pub const SIGNING_ALGS: [&str; 3] = ["RS256", "ES256", "EdDSA"];

/// What an operator asks for when registering a client.
#[derive(Debug, Clone, Default)]
pub struct ClientRequest {
    pub tenant: String,
    pub name: String,
    pub grants: Vec<String>,
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub role: Option<Role>,
    pub multi_tenant: bool,
    pub signing_alg: Option<String>,
    /// `client_secret_basic` (default) or `client_secret_post`, for confidential clients.
    pub auth_method: Option<String>,
    /// Every login through this client needs a second factor.
    pub require_mfa: bool,
}

/// A registered client. The secret is shown here once; only its hash is stored.
#[derive(Debug, Serialize)]
pub struct CreatedClient {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_secret")]
    pub client_secret: Option<Secret>,
    pub tenant: String,
    pub name: String,
    pub client_type: db::enums::ClientType,
    pub token_endpoint_auth_method: String,
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    pub multi_tenant: bool,
    pub signing_alg: String,
    pub require_mfa: bool,
}

fn expose_secret<S: serde::Serializer>(secret: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => s.serialize_str(secret.expose()),
        None => s.serialize_none(),
    }
}

/// A client by its id, from whichever tenant owns it (the owner is found through the
/// `lca_client_tenant` lookup, the row read in a transaction for that tenant).
pub async fn find(db: &Database, client_id: &str) -> Result<Option<db::clients::ClientRow>, sqlx::Error> {
    let mut tx = db.unscoped().await?;
    let tenant = db::clients::tenant_of(&mut tx, client_id).await?;
    tx.commit().await?;
    let Some(tenant) = tenant else { return Ok(None) };
    let mut tx = db.tenant(tenant).await?;
    let client = db::clients::get(&mut tx, client_id).await?;
    tx.commit().await?;
    Ok(client)
}

/// A client by its id whatever its tenant's status (`lca_client_owner`): for operator
/// commands, and for signing out, which must work for a suspended tenant's clients too.
pub async fn find_any(db: &Database, client_id: &str) -> Result<Option<db::clients::ClientRow>, sqlx::Error> {
    let mut tx = db.unscoped().await?;
    let tenant = db::clients::owner_of(&mut tx, client_id).await?;
    tx.commit().await?;
    let Some(tenant) = tenant else { return Ok(None) };
    let mut tx = db.tenant(tenant).await?;
    let client = db::clients::get(&mut tx, client_id).await?;
    tx.commit().await?;
    Ok(client)
}

/// Registers a client (as the system; see [`create_client_by`]).
pub async fn create_client(db: &Database, req: ClientRequest) -> Result<CreatedClient, ServiceError> {
    create_client_by(db, &Actor::system(), req).await
}

/// Registers a client in a tenant after checking that the request makes sense as a whole;
/// `client.created`.
pub async fn create_client_by(db: &Database, actor: &Actor, req: ClientRequest) -> Result<CreatedClient, ServiceError> {
    let name = req.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ServiceError::Invalid("client name must be 1-200 printable characters".into()));
    }
    let grants = normalise_grants(&req.grants)?;
    let has = |g: &str| grants.iter().any(|x| x == g);
    let interactive = has(GRANT_AUTHORIZATION_CODE) || has(GRANT_DEVICE_CODE);

    if req.public && has(GRANT_CLIENT_CREDENTIALS) {
        return Err(ServiceError::Invalid("a public client cannot use client_credentials".into()));
    }
    if has(GRANT_REFRESH_TOKEN) && !interactive {
        return Err(ServiceError::Invalid(
            "refresh_token needs authorization_code or the device grant to issue the first token".into(),
        ));
    }
    let redirect_uris = parse_uris(&req.redirect_uris, "--redirect-uri")?;
    let post_logout_redirect_uris = parse_uris(&req.post_logout_redirect_uris, "--post-logout-redirect-uri")?;
    if has(GRANT_AUTHORIZATION_CODE) && redirect_uris.is_empty() {
        return Err(ServiceError::Invalid("authorization_code needs at least one --redirect-uri".into()));
    }
    let any_uri = !redirect_uris.is_empty() || !post_logout_redirect_uris.is_empty();
    if any_uri && !has(GRANT_AUTHORIZATION_CODE) {
        return Err(ServiceError::Invalid("redirect URIs are only used by the authorization_code grant".into()));
    }
    match (has(GRANT_CLIENT_CREDENTIALS), req.role) {
        (true, None) => {
            return Err(ServiceError::Invalid(
                "client_credentials needs --role: the service account's role in its tenant".into(),
            ));
        }
        (false, Some(_)) => {
            return Err(ServiceError::Invalid("--role is only for client_credentials clients".into()));
        }
        _ => {}
    }
    if req.require_mfa && !interactive {
        return Err(ServiceError::Invalid("--require-mfa is only for clients that log users in".into()));
    }
    if req.multi_tenant && !interactive {
        return Err(ServiceError::Invalid("--multi-tenant is only for clients that log users in".into()));
    }
    let signing_alg = req.signing_alg.unwrap_or_else(|| "RS256".into());
    if !SIGNING_ALGS.contains(&signing_alg.as_str()) {
        return Err(ServiceError::Invalid(format!("unknown signing alg {signing_alg:?} (RS256, ES256 or EdDSA)")));
    }
    let auth_method = match (req.public, req.auth_method.as_deref()) {
        (true, None | Some("none")) => "none",
        (true, Some(_)) => {
            return Err(ServiceError::Invalid("a public client authenticates with \"none\"".into()));
        }
        (false, None | Some("client_secret_basic")) => "client_secret_basic",
        (false, Some("client_secret_post")) => "client_secret_post",
        (false, Some(other)) => {
            return Err(ServiceError::Invalid(format!(
                "unknown auth method {other:?} (client_secret_basic or client_secret_post)"
            )));
        }
    };

    let tenant = tenancy::find_tenant(db, &req.tenant).await?;
    let client_id = secrets::random_id();
    let secret = (!req.public).then(Secret::generate);
    let secret_hash = secret.as_ref().map(Secret::hash);
    let redirect_uris: Vec<String> = redirect_uris.into_iter().map(RedirectUri::into_string).collect();
    let post_logout_redirect_uris: Vec<String> =
        post_logout_redirect_uris.into_iter().map(RedirectUri::into_string).collect();
    let client_type = if req.public { db::enums::ClientType::Public } else { db::enums::ClientType::Confidential };

    let mut tx = db.tenant(tenant.id).await?;
    db::clients::insert(
        &mut tx,
        tenant.id,
        &db::clients::NewClient {
            client_id: &client_id,
            name: &name,
            client_type,
            secret_hash: secret_hash.as_ref().map(|h| h.as_slice()),
            token_endpoint_auth_method: auth_method,
            grant_types: &grants,
            redirect_uris: &redirect_uris,
            post_logout_redirect_uris: &post_logout_redirect_uris,
            service_role: req.role,
            multi_tenant: req.multi_tenant,
            signing_alg: &signing_alg,
            require_mfa: req.require_mfa,
        },
    )
    .await?;
    let details = serde_json::json!({
        "name": name,
        "client_type": client_type,
        "grant_types": grants,
        "redirect_uris": redirect_uris,
        "post_logout_redirect_uris": post_logout_redirect_uris,
        "service_role": req.role,
        "multi_tenant": req.multi_tenant,
        "signing_alg": signing_alg,
        "require_mfa": req.require_mfa,
    });
    audit::append(&mut tx, &actor.event("client.created", ("client", Some(client_id.clone())), details)).await?;
    tx.commit().await?;

    Ok(CreatedClient {
        client_id,
        client_secret: secret,
        tenant: req.tenant,
        name,
        client_type,
        token_endpoint_auth_method: auth_method.to_owned(),
        grant_types: grants,
        redirect_uris,
        post_logout_redirect_uris,
        role: req.role,
        multi_tenant: req.multi_tenant,
        signing_alg,
        require_mfa: req.require_mfa,
    })
}

/// What `client update` asks for: each list given replaces the registered one.
#[derive(Debug, Clone, Default)]
pub struct ClientUpdate {
    pub client_id: String,
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
}

/// A client as it is after a change.
#[derive(Debug, Clone, Serialize)]
pub struct UpdatedClient {
    pub client_id: String,
    pub tenant_id: uuid::Uuid,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// The fields that were given.
    pub changed: Vec<&'static str>,
}

fn no_client(client_id: &str) -> ServiceError {
    ServiceError::NotFound(format!("no client with id {client_id:?}"))
}

/// Changes a client's name and redirect URIs; `client.updated` (with the old and new values).
pub async fn update_client(db: &Database, actor: &Actor, req: ClientUpdate) -> Result<UpdatedClient, ServiceError> {
    let client = find_any(db, &req.client_id).await?.ok_or_else(|| no_client(&req.client_id))?;
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
    if changed.is_empty() {
        return Err(ServiceError::Invalid(
            "nothing to change: give --name, --redirect-uri or --post-logout-redirect-uri".into(),
        ));
    }
    let change = db::clients::ClientChange {
        name: name.as_deref(),
        redirect_uris: redirect_uris.as_deref(),
        post_logout_redirect_uris: post_logout.as_deref(),
    };
    let mut tx = db.tenant(client.tenant_id).await?;
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

/// Replaces a confidential client's secret; the old one stops working at once, tokens already
/// issued stay valid. `client.secret_rotated`.
pub async fn rotate_secret(db: &Database, actor: &Actor, client_id: &str) -> Result<RotatedSecret, ServiceError> {
    let client = find_any(db, client_id).await?.ok_or_else(|| no_client(client_id))?;
    if client.client_type != db::enums::ClientType::Confidential {
        return Err(ServiceError::Invalid("a public client has no secret".into()));
    }
    let secret = Secret::generate();
    let mut tx = db.tenant(client.tenant_id).await?;
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
    let client = find_any(db, client_id).await?.ok_or_else(|| no_client(client_id))?;
    let mut tx = db.tenant(client.tenant_id).await?;
    if !db::clients::delete(&mut tx, &client.client_id).await? {
        return Err(no_client(client_id));
    }
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

/// Accepts the grant names (and `device_code` for the RFC 8628 URN), without duplicates.
fn normalise_grants(grants: &[String]) -> Result<Vec<String>, ServiceError> {
    if grants.is_empty() {
        return Err(ServiceError::Invalid("name at least one --grant".into()));
    }
    let mut out: Vec<String> = Vec::new();
    for g in grants {
        let g = match g.as_str() {
            "device_code" | GRANT_DEVICE_CODE => GRANT_DEVICE_CODE,
            GRANT_AUTHORIZATION_CODE => GRANT_AUTHORIZATION_CODE,
            GRANT_REFRESH_TOKEN => GRANT_REFRESH_TOKEN,
            GRANT_CLIENT_CREDENTIALS => GRANT_CLIENT_CREDENTIALS,
            other => {
                return Err(ServiceError::Invalid(format!(
                    "unknown grant {other:?} (authorization_code, refresh_token, client_credentials or device_code)"
                )));
            }
        };
        if !out.iter().any(|x| x == g) {
            out.push(g.to_owned());
        }
    }
    Ok(out)
}

fn parse_uris(raw: &[String], flag: &str) -> Result<Vec<RedirectUri>, ServiceError> {
    let mut out: Vec<RedirectUri> = Vec::new();
    for r in raw {
        let uri = RedirectUri::parse(r).map_err(|why| ServiceError::Invalid(format!("{flag} {r:?}: {why}")))?;
        if !out.contains(&uri) {
            out.push(uri);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Grant names are normalised, deduplicated, and unknown ones refused.
    #[test]
    fn grants() {
        let g = normalise_grants(&["device_code".into(), "refresh_token".into(), "device_code".into()]).unwrap();
        assert_eq!(g, [GRANT_DEVICE_CODE, GRANT_REFRESH_TOKEN]);
        assert!(normalise_grants(&["implicit".into()]).is_err());
        assert!(normalise_grants(&[]).is_err());
    }
}
