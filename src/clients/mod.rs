//! Client (relying party) registration and lookup; changes to a registered client (update,
//! new secret, deletion) are in [`change`]; the APIs clients ask tokens for, in [`resources`];
//! clients described by a client ID metadata document, in [`metadata_document`].

pub mod change;
pub mod metadata_document;
pub mod redirect_uri;
pub mod registration;
pub mod resources;

use serde::Serialize;

use crate::db::audit::{self, Actor};
use crate::db::{self, Database, Tx};
use crate::secrets::{self, Secret};
use crate::service_error::ServiceError;
use crate::tenancy;
use crate::vocabulary::Role;
pub use redirect_uri::RedirectUri;

/// Grant types a client may be allowed (RFC 6749 §4, RFC 8628 §3.4).
pub const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
pub const GRANT_DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The scopes every client may ask for; `admin` only when registered for the admin API.
pub const DEFAULT_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];
pub const ADMIN_SCOPE: &str = "admin";

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
    /// The client may ask for the `admin` scope (tokens for the admin API).
    pub admin_api: bool,
    /// A confidential client may leave PKCE out of its authorization requests, for relying
    /// parties that do not send it (the OpenID conformance suite is one). Public clients always
    /// need PKCE.
    pub pkce_optional: bool,
    /// The lost-response grace window of refresh rotation, in seconds (0, the default: none;
    /// at most [`MAX_REFRESH_GRACE_SECS`]). Within it, presenting the refresh token just used
    /// again returns the pair that use issued, for devices that lose a reply on a flaky network
    /// (ARCHITECTURE.md, "Tokens").
    pub refresh_grace_secs: u32,
    /// Authorization requests must be pushed to `/par` first (RFC 9126 §6).
    pub require_par: bool,
    /// Where logout tokens are POSTed when a user's session with the client ends (OpenID
    /// Connect Back-Channel Logout 1.0 §2.2): https, or http on a loopback address.
    pub backchannel_logout_uri: Option<String>,
}

/// The longest lost-response grace window a client may have (migration 0017 holds it too).
pub const MAX_REFRESH_GRACE_SECS: u32 = 300;

/// A registered client. The secret is shown here once; only its hash is stored.
#[derive(Debug, Serialize)]
pub struct CreatedClient {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_secret")]
    pub client_secret: Option<Secret>,
    pub tenant: String,
    pub name: String,
    pub client_type: crate::vocabulary::ClientType,
    pub token_endpoint_auth_method: String,
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    pub multi_tenant: bool,
    pub signing_alg: String,
    pub require_mfa: bool,
    /// Authorization requests must carry PKCE (always so for public clients).
    pub require_pkce: bool,
    /// The lost-response grace window of refresh rotation, in seconds.
    pub refresh_grace_secs: u32,
    /// The scopes the client may ask for.
    pub scopes: Vec<String>,
    /// Authorization requests must be pushed (RFC 9126 §6).
    pub require_pushed_authorization_requests: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
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
    let Some((client, tx)) = find_in_tenant(db, client_id).await? else { return Ok(None) };
    tx.commit().await?;
    Ok(Some(client))
}

/// [`find`], and the transaction of the client's tenant it was read in, for a request that
/// goes on in that tenant (the token endpoint's `client_credentials`).
pub async fn find_in_tenant(
    db: &Database,
    client_id: &str,
) -> Result<Option<(db::clients::ClientRow, Tx)>, sqlx::Error> {
    let Some(mut tx) = db.for_client(client_id).await? else { return Ok(None) };
    Ok(db::clients::get(&mut tx, client_id).await?.map(|client| (client, tx)))
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

/// Registers a client in the tenant `req.tenant` names (by slug: the command line); see
/// [`create_client_in`].
pub async fn create_client_by(db: &Database, actor: &Actor, req: ClientRequest) -> Result<CreatedClient, ServiceError> {
    let tenant = tenancy::find_tenant(db, &req.tenant).await?;
    create_client_in(db, actor, tenant.id, req).await
}

/// Registers a client in the tenant `tenant_id` after checking that the request makes sense as
/// a whole ([`check`]); `client.created`. `req.tenant` is only echoed in the answer (the admin
/// surface passes the caller's slug): the tenant is `tenant_id`, never looked up from it.
pub async fn create_client_in(
    db: &Database,
    actor: &Actor,
    tenant_id: uuid::Uuid,
    req: ClientRequest,
) -> Result<CreatedClient, ServiceError> {
    let tenant = req.tenant.clone();
    let c = check(req)?;
    let client_id = secrets::random_id();
    let secret = (!c.public).then(Secret::generate);
    let secret_hash = secret.as_ref().map(Secret::hash);

    let mut tx = db.tenant(tenant_id).await?;
    db::clients::insert(&mut tx, tenant_id, &c.new_client(&client_id, secret_hash.as_ref().map(|h| h.as_slice())))
        .await?;
    audit::append(&mut tx, &actor.event("client.created", ("client", Some(client_id.clone())), c.details())).await?;
    tx.commit().await?;

    Ok(CreatedClient {
        client_id,
        client_secret: secret,
        tenant,
        name: c.name,
        client_type: c.client_type,
        token_endpoint_auth_method: c.auth_method.to_owned(),
        grant_types: c.grants,
        redirect_uris: c.redirect_uris,
        post_logout_redirect_uris: c.post_logout_redirect_uris,
        role: c.role,
        multi_tenant: c.multi_tenant,
        signing_alg: c.signing_alg,
        require_mfa: c.require_mfa,
        require_pkce: c.require_pkce,
        refresh_grace_secs: c.refresh_grace_secs.unsigned_abs(),
        scopes: c.scopes,
        require_pushed_authorization_requests: c.require_par,
        backchannel_logout_uri: c.backchannel_logout_uri,
    })
}

/// A client request that passed every rule of a client ([`check`]), as it is written.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    pub name: String,
    pub public: bool,
    pub client_type: crate::vocabulary::ClientType,
    pub auth_method: &'static str,
    pub grants: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub role: Option<Role>,
    pub multi_tenant: bool,
    pub signing_alg: String,
    pub require_mfa: bool,
    pub require_pkce: bool,
    pub refresh_grace_secs: i32,
    pub scopes: Vec<String>,
    pub require_par: bool,
    pub backchannel_logout_uri: Option<String>,
}

impl Checked {
    /// The row of this client under `client_id`.
    pub(crate) fn new_client<'a>(
        &'a self,
        client_id: &'a str,
        secret_hash: Option<&'a [u8]>,
    ) -> db::clients::NewClient<'a> {
        db::clients::NewClient {
            client_id,
            name: &self.name,
            client_type: self.client_type,
            secret_hash,
            token_endpoint_auth_method: self.auth_method,
            grant_types: &self.grants,
            redirect_uris: &self.redirect_uris,
            post_logout_redirect_uris: &self.post_logout_redirect_uris,
            service_role: self.role,
            multi_tenant: self.multi_tenant,
            signing_alg: &self.signing_alg,
            require_mfa: self.require_mfa,
            require_pkce: self.require_pkce,
            refresh_grace_secs: self.refresh_grace_secs,
            scopes: &self.scopes,
            require_par: self.require_par,
            backchannel_logout_uri: self.backchannel_logout_uri.as_deref(),
        }
    }

    /// What the audit log keeps of it.
    pub(crate) fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "client_type": self.client_type,
            "grant_types": self.grants,
            "redirect_uris": self.redirect_uris,
            "post_logout_redirect_uris": self.post_logout_redirect_uris,
            "service_role": self.role,
            "multi_tenant": self.multi_tenant,
            "signing_alg": self.signing_alg,
            "require_mfa": self.require_mfa,
            "require_pkce": self.require_pkce,
            "refresh_grace_secs": self.refresh_grace_secs,
            "scopes": self.scopes,
            "require_pushed_authorization_requests": self.require_par,
            "backchannel_logout_uri": self.backchannel_logout_uri,
        })
    }
}

/// The rules of a client, for every way one is made (an administrator, dynamic registration,
/// a client ID metadata document): the request must make sense as a whole.
pub(crate) fn check(req: ClientRequest) -> Result<Checked, ServiceError> {
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
    if req.pkce_optional && req.public {
        return Err(ServiceError::Invalid(
            "a public client always needs PKCE: --pkce-optional is for confidential clients".into(),
        ));
    }
    if req.pkce_optional && !interactive {
        return Err(ServiceError::Invalid("--pkce-optional is only for clients that log users in".into()));
    }
    let refresh_grace_secs = refresh_grace(req.refresh_grace_secs, &grants)?;
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

    let backchannel_logout_uri = match req.backchannel_logout_uri {
        Some(uri) => Some(backchannel_logout_uri(&uri).map_err(|why| ServiceError::Invalid(why.into()))?),
        None => None,
    };
    let redirect_uris: Vec<String> = redirect_uris.into_iter().map(RedirectUri::into_string).collect();
    let post_logout_redirect_uris: Vec<String> =
        post_logout_redirect_uris.into_iter().map(RedirectUri::into_string).collect();
    let client_type =
        if req.public { crate::vocabulary::ClientType::Public } else { crate::vocabulary::ClientType::Confidential };
    let mut scopes: Vec<String> = DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    if req.admin_api {
        scopes.push(ADMIN_SCOPE.to_owned());
    }
    Ok(Checked {
        name,
        public: req.public,
        client_type,
        auth_method,
        grants,
        redirect_uris,
        post_logout_redirect_uris,
        role: req.role,
        multi_tenant: req.multi_tenant,
        signing_alg,
        require_mfa: req.require_mfa,
        require_pkce: !req.pkce_optional,
        refresh_grace_secs,
        scopes,
        require_par: req.require_par,
        backchannel_logout_uri,
    })
}

/// A back-channel logout URI as registered (OpenID Connect Back-Channel Logout 1.0 §2.2): an
/// absolute https URL without a fragment, or http on a loopback address (a relying party on
/// the same machine). Where it may resolve to is checked again at each delivery
/// (`crate::backchannel`), since DNS can change.
pub fn backchannel_logout_uri(raw: &str) -> Result<String, &'static str> {
    if raw.is_empty() || raw.len() > 2000 || raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("the backchannel_logout_uri is 1 to 2000 characters without spaces");
    }
    let url = url::Url::parse(raw).map_err(|_| "the backchannel_logout_uri is not an absolute URL")?;
    if url.fragment().is_some() || raw.contains('#') {
        return Err("the backchannel_logout_uri must not contain a fragment");
    }
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(raw.to_owned()),
        "http" if loopback => Ok(raw.to_owned()),
        _ => Err("the backchannel_logout_uri must be https (or http on a loopback address)"),
    }
}

/// A grace window as stored: at most [`MAX_REFRESH_GRACE_SECS`], and only for a client that
/// refreshes.
pub(crate) fn refresh_grace(secs: u32, grants: &[String]) -> Result<i32, ServiceError> {
    if secs > MAX_REFRESH_GRACE_SECS {
        return Err(ServiceError::Invalid(format!(
            "--refresh-grace-secs is at most {MAX_REFRESH_GRACE_SECS} (30-120 suits devices)"
        )));
    }
    if secs > 0 && !grants.iter().any(|g| g == GRANT_REFRESH_TOKEN) {
        return Err(ServiceError::Invalid(
            "--refresh-grace-secs is only for clients with the refresh_token grant".into(),
        ));
    }
    Ok(i32::try_from(secs).unwrap_or_default())
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
