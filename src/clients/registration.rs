//! Dynamic client registration (RFC 7591) and its management (RFC 7592), off unless a tenant
//! turns it on (ARCHITECTURE.md, "Dynamic client registration"):
//!
//! - with an initial access token a tenant's administrator issued ([`issue_token`]): any
//!   client the registration rules allow, in that tenant;
//! - without one, where the tenant allows open registration: public clients only, whose
//!   redirect URIs are loopback `http` or a private-use scheme (RFC 8252 §7), so a registration
//!   cannot make this provider send codes to a web origin nobody vouched for.
//!
//! Either way the client is registered by [`super::create_client_in`], with the rules every
//! client has, audited as `client.registered`; the answer carries a registration access token
//! (only its hash is kept) for reading and deleting the registration.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{ClientRequest, CreatedClient, GRANT_AUTHORIZATION_CODE, GRANT_DEVICE_CODE, GRANT_REFRESH_TOKEN};
use crate::db::audit::{self, Actor};
use crate::db::{self, Database};
use crate::secrets::{Secret, sha256};
use crate::service_error::ServiceError;

/// Most registrations one initial access token allows, and its longest life.
pub const MAX_USES: u32 = 1000;
pub const MAX_TTL_SECS: i64 = 30 * 86400;

/// An initial access token, shown once.
#[derive(Debug)]
pub struct IssuedToken {
    pub id: Uuid,
    pub token: Secret,
    pub expires_at: DateTime<Utc>,
    pub uses: u32,
}

/// Issues an initial access token of tenant `tenant_id`, good for `uses` registrations within
/// `ttl_secs`; `registration_token.issued`.
pub async fn issue_token(
    db: &Database,
    actor: &Actor,
    tenant_id: Uuid,
    uses: u32,
    ttl_secs: i64,
) -> Result<IssuedToken, ServiceError> {
    if uses == 0 || uses > MAX_USES {
        return Err(ServiceError::Invalid(format!("an initial access token allows 1 to {MAX_USES} registrations")));
    }
    if !(60..=MAX_TTL_SECS).contains(&ttl_secs) {
        return Err(ServiceError::Invalid("an initial access token lives 60 seconds to 30 days".into()));
    }
    let token = Secret::generate();
    let (id, expires_at) = (Uuid::now_v7(), Utc::now() + Duration::seconds(ttl_secs));
    let created_by = format!("{}:{}", actor.kind, actor.id.as_deref().unwrap_or(""));
    let mut tx = db.tenant(tenant_id).await?;
    let uses_i32 = i32::try_from(uses).unwrap_or(1);
    db::registration_tokens::insert(&mut tx, id, &token.hash(), &created_by, expires_at, uses_i32).await?;
    let details = serde_json::json!({ "uses": uses, "expires_at": expires_at });
    audit::append(
        &mut tx,
        &actor.event("registration_token.issued", ("registration_token", Some(id.to_string())), details),
    )
    .await?;
    tx.commit().await?;
    Ok(IssuedToken { id, token, expires_at, uses })
}

/// How a registration request authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Authority<'a> {
    /// `Authorization: Bearer <initial access token>`.
    InitialToken(&'a str),
    /// None, in a tenant that allows open registration (named by its slug).
    Open(&'a str),
}

/// Why a registration is refused (RFC 7591 §3.2.2, RFC 6750 §3.1).
#[derive(Debug)]
pub enum Refused {
    /// 401 `invalid_token`: no usable initial access token, and no open registration there.
    Unauthorized,
    /// 400 `invalid_redirect_uri`.
    RedirectUri(String),
    /// 400 `invalid_client_metadata`.
    Metadata(String),
    /// Not the request's fault (the database): a 500, its cause logged, never shown.
    Internal(anyhow::Error),
}

/// What a client asks to be registered as (RFC 7591 §2), as the protocol layer decoded it.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub backchannel_logout_uri: Option<String>,
}

/// A registered client and its registration access token (shown once).
#[derive(Debug)]
pub struct Registered {
    pub client: CreatedClient,
    pub registration_access_token: Secret,
    pub issued_at: DateTime<Utc>,
}

/// Whether a redirect URI is one open registration accepts: loopback `http`, or a private-use
/// scheme (RFC 8252 §7.1, §7.3). The URI's own rules are `RedirectUri::parse`'s.
fn native(uri: &str) -> bool {
    match url::Url::parse(uri) {
        Ok(u) if u.scheme() == "http" => {
            matches!(
                u.host(),
                Some(url::Host::Ipv4(ip)) if ip.is_loopback()
            ) || matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
                || u.host_str() == Some("localhost")
        }
        Ok(u) => u.scheme() != "https" && u.scheme().contains('.'),
        Err(_) => false,
    }
}

/// Registers a client (RFC 7591 §3.1); `origin` is where the request came from (its kind and id
/// are replaced by who registers). The initial access token's use is spent by one statement
/// before the client is made, so a token for one registration makes one client however many
/// requests race; a registration refused after that gives the use back.
pub async fn register(
    db: &Database,
    authority: Authority<'_>,
    meta: Metadata,
    origin: &Actor,
) -> Result<Registered, Refused> {
    let grants = if meta.grant_types.is_empty() { vec![GRANT_AUTHORIZATION_CODE.to_owned()] } else { meta.grant_types };
    if !meta.response_types.iter().all(|r| r == "code") {
        return Err(Refused::Metadata("only the response_type code is supported".into()));
    }
    if let Some(g) = grants
        .iter()
        .find(|g| ![GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN, GRANT_DEVICE_CODE].contains(&g.as_str()))
    {
        return Err(Refused::Metadata(format!("the grant type {g:?} cannot be registered dynamically")));
    }
    let method = meta.token_endpoint_auth_method.as_deref().unwrap_or("client_secret_basic");
    let public = match method {
        "none" => true,
        "client_secret_basic" | "client_secret_post" => false,
        other => return Err(Refused::Metadata(format!("the token_endpoint_auth_method {other:?} is not supported"))),
    };
    for uri in meta.redirect_uris.iter().chain(&meta.post_logout_redirect_uris) {
        if let Err(why) = super::RedirectUri::parse(uri) {
            return Err(Refused::RedirectUri(format!("{uri:?}: {why}")));
        }
    }

    // Who may register, and in which tenant.
    let (tenant_id, actor, spent) = match authority {
        Authority::InitialToken(token) => {
            let hash = sha256(token.as_bytes());
            let mut tx = db.unscoped().await.map_err(internal)?;
            let tenant = db::registration_tokens::tenant_of(&mut tx, &hash).await.map_err(internal)?;
            tx.commit().await.map_err(internal)?;
            let Some(tenant) = tenant else { return Err(Refused::Unauthorized) };
            let mut tx = db.tenant(tenant).await.map_err(internal)?;
            let Some(id) = db::registration_tokens::spend(&mut tx, &hash).await.map_err(internal)? else {
                return Err(Refused::Unauthorized);
            };
            tx.commit().await.map_err(internal)?;
            // The audit log knows people, clients, operators and the system: a registration is
            // the system acting on a token's word, and says which token.
            let actor = Actor { kind: "system", id: Some(format!("registration_token:{id}")), ..origin.clone() };
            (tenant, actor, Some(id))
        }
        Authority::Open(slug) => {
            let Ok(tenant) = crate::tenancy::find_tenant(db, slug).await else { return Err(Refused::Unauthorized) };
            let mut tx = db.tenant(tenant.id).await.map_err(internal)?;
            let open = db::tenants::open_registration(&mut tx).await.map_err(internal)?;
            tx.commit().await.map_err(internal)?;
            if !open {
                return Err(Refused::Unauthorized);
            }
            if !public {
                return Err(Refused::Metadata(
                    "open registration is for public clients (token_endpoint_auth_method none)".into(),
                ));
            }
            if let Some(uri) = meta.redirect_uris.iter().chain(&meta.post_logout_redirect_uris).find(|u| !native(u)) {
                return Err(Refused::RedirectUri(format!(
                    "{uri:?}: open registration takes loopback http or private-use redirect URIs only"
                )));
            }
            (tenant.id, Actor { kind: "system", id: Some("open_registration".into()), ..origin.clone() }, None)
        }
    };

    let req = ClientRequest {
        tenant: String::new(),
        name: meta.client_name.filter(|n| !n.trim().is_empty()).unwrap_or_else(|| "Registered client".into()),
        grants,
        public,
        redirect_uris: meta.redirect_uris,
        post_logout_redirect_uris: meta.post_logout_redirect_uris,
        auth_method: (!public).then(|| method.to_owned()),
        backchannel_logout_uri: meta.backchannel_logout_uri,
        ..Default::default()
    };
    let client = match super::create_client_in(db, &actor, tenant_id, req).await {
        Ok(client) => client,
        Err(e) => {
            if let Some(id) = spent {
                let mut tx = db.tenant(tenant_id).await.map_err(internal)?;
                db::registration_tokens::refund(&mut tx, id).await.map_err(internal)?;
                tx.commit().await.map_err(internal)?;
            }
            return Err(match e {
                ServiceError::Invalid(why) => Refused::Metadata(why),
                other => internal(other),
            });
        }
    };
    let token = Secret::generate();
    let mut tx = db.tenant(tenant_id).await.map_err(internal)?;
    db::clients::set_registration_token(&mut tx, &client.client_id, &token.hash()).await.map_err(internal)?;
    let via = if spent.is_some() { "initial_access_token" } else { "open_registration" };
    let details =
        serde_json::json!({ "via": via, "client_type": client.client_type, "redirect_uris": client.redirect_uris });
    audit::append(&mut tx, &actor.event("client.registered", ("client", Some(client.client_id.clone())), details))
        .await
        .map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    Ok(Registered { client, registration_access_token: token, issued_at: Utc::now() })
}

fn internal(e: impl Into<anyhow::Error>) -> Refused {
    Refused::Internal(e.into())
}

/// The client a registration access token manages (RFC 7592 §3): its row, when `token` is
/// that client's; `None` otherwise (unknown client, another client's token, an
/// administrator's client), all alike.
pub async fn managed(
    db: &Database,
    client_id: &str,
    token: &str,
) -> Result<Option<db::clients::ClientRow>, sqlx::Error> {
    use subtle::ConstantTimeEq;
    let Some((client, mut tx)) = super::find_in_tenant(db, client_id).await? else { return Ok(None) };
    let stored = db::clients::registration_token(&mut tx, client_id).await?;
    tx.commit().await?;
    let presented = sha256(token.as_bytes());
    Ok(stored.filter(|s| bool::from(s.as_slice().ct_eq(&presented))).map(|_| client))
}
