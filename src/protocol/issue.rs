//! Minting the tokens of one grant: an RFC 9068 access token, an ID token (OIDC Core §2) when
//! `openid` was granted, and a rotating refresh token when the client may refresh.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::Digest;
use uuid::Uuid;

use crate::db::resource_servers::ResourceServerRow;
use crate::db::{self, Tx, clients::ClientRow};
use crate::error::AppError;
use crate::protocol::meta::RequestMeta;
use crate::protocol::types::{SCOPES_SUPPORTED, Scopes};
use crate::secrets::Secret;
use crate::state::AppState;
use crate::tokens::{SigningAlg, TokenType};

/// Everything the tokens of one grant say.
#[derive(Debug, Clone)]
pub struct Grant<'a> {
    /// The grant type that led here (RFC 6749 §4), for the audit log.
    pub grant_type: &'static str,
    pub tenant_id: Uuid,
    pub tenant_slug: &'a str,
    pub client: &'a ClientRow,
    /// The user, for user grants; `None` for a service account.
    pub user_id: Option<Uuid>,
    /// The expanded role list.
    pub roles: &'static [&'static str],
    pub scope: &'a Scopes,
    pub auth_time: Option<DateTime<Utc>>,
    pub amr: &'a [String],
    pub acr: Option<&'a str>,
    pub sid: Option<&'a str>,
    /// Only for the code grant's ID token; a refreshed ID token has none (OIDC Core §12.2).
    pub nonce: Option<&'a str>,
    /// The user claims the authorization request named for the ID token (the `claims`
    /// parameter's `id_token` member, OIDC Core §5.5), kept by the code and then the family so
    /// that a refreshed ID token carries them too (§12.2).
    pub id_token_claims: &'a [String],
    /// The family the tokens belong to (revoking it ends them) and its end; `None` for a
    /// service account's tokens.
    pub family: Option<(Uuid, DateTime<Utc>)>,
    /// Whether a refresh token joins the family (the client may use the refresh grant).
    pub refresh: bool,
    /// The APIs the access token is meant for (resource indicators, RFC 8707), resolved by
    /// `clients::resources::resolve`; empty for a token meant for the client and this
    /// provider's own endpoints.
    pub resources: &'a [ResourceServerRow],
    /// The thumbprint of the DPoP key the access token is bound to (RFC 9449 §6: `cnf.jkt`,
    /// `token_type` DPoP); `None` for a Bearer token.
    pub dpop_jkt: Option<&'a str>,
}

impl Grant<'_> {
    /// What the access token says: its `aud`, and its `scope`. Without a resource, the
    /// client and the scopes of this provider (RFC 9068 §3 lets the provider choose the
    /// audience). For APIs, their identifiers (one string, or a list for several) and the
    /// granted scopes they define, and nothing of OpenID Connect's or the admin API's: such a
    /// token opens neither UserInfo nor the admin API (`bearer::AccessToken::for_this_provider`).
    pub fn access(&self) -> (Value, Scopes) {
        match self.resources {
            [] => {
                let own = Scopes::parse(&SCOPES_SUPPORTED.join(" ")).unwrap_or_default();
                (json!(self.client.client_id), self.scope.intersect(&own))
            }
            resources => {
                let aud = match resources {
                    [one] => json!(one.identifier),
                    many => json!(many.iter().map(|r| r.identifier.as_str()).collect::<Vec<_>>()),
                };
                (aud, self.scope.intersect(&Scopes::defined_by(resources)))
            }
        }
    }
}

/// The token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose")]
    pub refresh_token: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    pub scope: String,
}

fn expose<S: serde::Serializer>(secret: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => s.serialize_str(secret.expose()),
        None => s.serialize_none(),
    }
}

/// Mints and records the tokens of `grant` in `tx` (the grant's tenant), with a
/// `token.issued` audit event (no token material: the access token's `jti` names it). The
/// event is the last statement before the caller commits, so the tenant's audit chain is
/// locked only for the append and the commit, never for the signing.
pub async fn issue(
    state: &AppState,
    tx: &mut Tx,
    meta: &RequestMeta,
    grant: &Grant<'_>,
) -> Result<TokenResponse, AppError> {
    let ttl = state.config.ttl;
    let now = Utc::now();
    let alg = SigningAlg::from_name(&grant.client.signing_alg).unwrap_or(SigningAlg::Rs256);
    let issuer = state.config.issuer.as_str();
    let sub = match grant.user_id {
        Some(user) => user.to_string(),
        None => grant.client.client_id.clone(),
    };

    // RFC 9068 §2.2.
    let jti = Uuid::now_v7();
    let access_exp = now + Duration::from_std(ttl.access_token).unwrap_or_default();
    let mut at = Map::new();
    at.insert("iss".into(), json!(issuer));
    at.insert("sub".into(), json!(sub));
    let (aud, access_scope) = grant.access();
    at.insert("aud".into(), aud);
    at.insert("exp".into(), json!(access_exp.timestamp()));
    at.insert("iat".into(), json!(now.timestamp()));
    at.insert("jti".into(), json!(jti.to_string()));
    at.insert("client_id".into(), json!(grant.client.client_id));
    at.insert("scope".into(), json!(access_scope.to_string()));
    at.insert("tid".into(), json!(grant.tenant_id.to_string()));
    at.insert("tenant".into(), json!(grant.tenant_slug));
    at.insert("roles".into(), json!(grant.roles));
    if let Some(auth_time) = grant.auth_time {
        at.insert("auth_time".into(), json!(auth_time.timestamp()));
    }
    if let Some(acr) = grant.acr {
        at.insert("acr".into(), json!(acr));
    }
    if !grant.amr.is_empty() {
        at.insert("amr".into(), json!(grant.amr));
    }
    if let Some(jkt) = grant.dpop_jkt {
        at.insert("cnf".into(), json!({ "jkt": jkt }));
    }
    let access_token = state.keys.sign(alg, TokenType::AccessToken, &at).map_err(AppError::Internal)?;
    db::access_tokens::insert(tx, jti, grant.family.map(|f| f.0), &grant.client.client_id, access_exp).await?;

    let id_token = match (grant.user_id, grant.scope.contains("openid")) {
        (Some(user_id), true) => {
            let exp = now + Duration::from_std(ttl.id_token).unwrap_or_default();
            let mut id = Map::new();
            id.insert("iss".into(), json!(issuer));
            id.insert("sub".into(), json!(sub));
            id.insert("aud".into(), json!(grant.client.client_id));
            id.insert("azp".into(), json!(grant.client.client_id));
            id.insert("exp".into(), json!(exp.timestamp()));
            id.insert("iat".into(), json!(now.timestamp()));
            if let Some(auth_time) = grant.auth_time {
                id.insert("auth_time".into(), json!(auth_time.timestamp()));
            }
            if let Some(nonce) = grant.nonce {
                id.insert("nonce".into(), json!(nonce));
            }
            if let Some(acr) = grant.acr {
                id.insert("acr".into(), json!(acr));
            }
            id.insert("amr".into(), json!(grant.amr));
            if let Some(sid) = grant.sid {
                id.insert("sid".into(), json!(sid));
            }
            id.insert("at_hash".into(), Value::String(at_hash(alg, &access_token)));
            id.insert("tid".into(), json!(grant.tenant_id.to_string()));
            id.insert("tenant".into(), json!(grant.tenant_slug));
            id.insert("roles".into(), json!(grant.roles));
            let requested: Vec<&str> = grant.id_token_claims.iter().map(String::as_str).collect();
            add_requested_id_token_claims(tx, &mut id, user_id, &requested).await?;
            Some(state.keys.sign(alg, TokenType::IdToken, &id).map_err(AppError::Internal)?)
        }
        _ => None,
    };

    let refresh_token = match grant.family.filter(|_| grant.refresh) {
        Some((family_id, family_end)) => {
            let token = Secret::generate();
            let idle_end = now + Duration::from_std(ttl.refresh_token).unwrap_or_default();
            db::refresh_tokens::insert(tx, &token.hash(), family_id, idle_end.min(family_end)).await?;
            Some(token)
        }
        None => None,
    };

    let target = match grant.family {
        Some((family_id, _)) => ("token_family", family_id.to_string()),
        None => ("client", grant.client.client_id.clone()),
    };
    let mut event = meta.event("token.issued", "success", ("client", Some(grant.client.client_id.clone())), target);
    event.details = json!({
        "grant_type": grant.grant_type,
        "client_id": grant.client.client_id,
        "user_id": grant.user_id,
        "family_id": grant.family.map(|f| f.0),
        "scope": access_scope.to_string(),
        "resources": grant.resources.iter().map(|r| r.identifier.as_str()).collect::<Vec<_>>(),
        "acr": grant.acr,
        "jti": jti,
        "refresh_token": refresh_token.is_some(),
        "id_token": id_token.is_some(),
        "dpop_jkt": grant.dpop_jkt,
    });
    db::audit::append(tx, &event).await?;

    Ok(TokenResponse {
        access_token,
        token_type: if grant.dpop_jkt.is_some() { "DPoP" } else { "Bearer" },
        expires_in: ttl.access_token.as_secs(),
        refresh_token,
        id_token,
        scope: access_scope.to_string(),
    })
}

/// `at_hash` (OIDC Core §3.1.3.6): the left half of the hash of the access token, with the
/// hash of the ID token's algorithm (SHA-512 for Ed25519, as OpenID's errata and the
/// openidconnect crate have it).
pub fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    use base64::Engine as _;
    let digest: Vec<u8> = match alg {
        SigningAlg::EdDsa => sha2::Sha512::digest(access_token.as_bytes()).to_vec(),
        _ => sha2::Sha256::digest(access_token.as_bytes()).to_vec(),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// The claims the `profile` scope stands for (OIDC Core §5.4).
pub const PROFILE_CLAIMS: [&str; 7] =
    ["name", "given_name", "family_name", "preferred_username", "locale", "zoneinfo", "updated_at"];
/// The claims the `email` scope stands for (OIDC Core §5.4).
pub const EMAIL_CLAIMS: [&str; 2] = ["email", "email_verified"];

/// The scope that stands for a user claim (OIDC Core §5.4), whose consent releasing the claim
/// by name needs.
pub fn covering_scope(name: &str) -> Option<&'static str> {
    if PROFILE_CLAIMS.contains(&name) {
        Some("profile")
    } else if EMAIL_CLAIMS.contains(&name) {
        Some("email")
    } else {
        None
    }
}

/// The user claims `scope` stands for: what UserInfo returns (OIDC Core §5.4).
pub fn scope_claims(scope: &Scopes) -> Vec<&'static str> {
    let mut names = Vec::new();
    if scope.contains("profile") {
        names.extend(PROFILE_CLAIMS);
    }
    if scope.contains("email") {
        names.extend(EMAIL_CLAIMS);
    }
    names
}

/// The value of one user claim of `user`'s record; `None` when the user has none (a claim
/// without a value is left out, never `null`: OIDC Core §5.3.2) or the name is no user claim
/// of ours. `preferred_username` falls back to the email address.
pub fn user_claim(user: &db::users::UserClaims, name: &str) -> Option<Value> {
    let p = &user.profile;
    let text = |v: &Option<String>| v.as_ref().map(|s| json!(s));
    match name {
        "name" => text(&p.name),
        "given_name" => text(&p.given_name),
        "family_name" => text(&p.family_name),
        "preferred_username" => Some(json!(p.preferred_username.as_deref().unwrap_or(&user.email))),
        "locale" => text(&p.locale),
        "zoneinfo" => text(&p.zoneinfo),
        "updated_at" => Some(json!(user.updated_at.timestamp())),
        "email" => Some(json!(user.email)),
        "email_verified" => Some(json!(p.email_verified)),
        _ => None,
    }
}

/// Adds the claims `names` of `user` to `claims` (UserInfo's answer, or an ID token's claims),
/// leaving out those the user has no value for and names that are no user claim.
pub fn add_user_claims(claims: &mut Map<String, Value>, user: &db::users::UserClaims, names: &[&str]) {
    for name in names {
        if let Some(v) = user_claim(user, name) {
            claims.insert((*name).to_owned(), v);
        }
    }
}

/// The user claims an ID token carries: only those requested for it by name (the `claims`
/// request parameter's `id_token` member, OIDC Core §5.5). Scope claims go to UserInfo and
/// not into the ID token, as an access token is always issued (OIDC Core §5.4). Reads the
/// user in `tx` (a transaction of the grant's tenant); adds nothing for a user it cannot see.
pub async fn add_requested_id_token_claims(
    tx: &mut Tx,
    id_token: &mut Map<String, Value>,
    user_id: Uuid,
    requested: &[&str],
) -> Result<(), AppError> {
    let names: Vec<&str> = requested.iter().copied().filter(|n| user_claim_name(n)).collect();
    if names.is_empty() {
        return Ok(());
    }
    if let Some(user) = db::users::claims(tx, user_id).await? {
        add_user_claims(id_token, &user, &names);
    }
    Ok(())
}

/// Whether `name` is a user claim of [`PROFILE_CLAIMS`] or [`EMAIL_CLAIMS`] (a requested
/// `sub`, `acr` or `auth_time` is the token's own business).
pub fn user_claim_name(name: &str) -> bool {
    PROFILE_CLAIMS.contains(&name) || EMAIL_CLAIMS.contains(&name)
}

/// The most claims one member (`id_token`, `userinfo`) of the `claims` parameter may name; more
/// is `invalid_request`. We know nine user claims; forty leaves room for the names of other
/// vocabularies a relying party may ask for too, which are ignored (OIDC Core §5.5).
pub const MAX_REQUESTED_CLAIMS: usize = 40;

/// Of the claim names one member of a `claims` parameter (OIDC Core §5.5) gives, the user
/// claims of ours ([`user_claim_name`]), as a code and then its family keep them
/// (`db::families::RequestedClaims`), whatever the scope; other names are ignored, as §5.5
/// asks. More than [`MAX_REQUESTED_CLAIMS`] names is refused (the error is for
/// `error_description`).
///
/// `essential` changes nothing here: a claim the user has no value for is left out of the ID
/// token and UserInfo however it was asked for, and the request goes on, because "the
/// Authorization Server MUST NOT generate an error when Claims are not returned, whether they
/// are Essential or Voluntary" (§5.5.1; the relying party decides what to do without it). Only
/// an essential `acr` is treated otherwise (`authorize::claims::acr_request`, §5.5.1.1).
pub fn requested_user_claims(names: &[&str]) -> Result<Vec<String>, &'static str> {
    if names.len() > MAX_REQUESTED_CLAIMS {
        return Err("the claims parameter names more than 40 claims in one member");
    }
    Ok(names.iter().filter(|name| user_claim_name(name)).map(|name| (*name).to_owned()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_user_claims_of_ours() {
        let names = ["email", "given_name", "acr", "sub", "http://example.info/claims/groups", "Name", "phone_number"];
        assert_eq!(requested_user_claims(&names).unwrap(), ["email", "given_name"]);
        assert!(requested_user_claims(&[]).unwrap().is_empty());
    }

    #[test]
    fn refuses_more_than_forty_names() {
        let owned: Vec<String> = (0..41).map(|i| format!("x{i}")).collect();
        let names: Vec<&str> = owned.iter().map(String::as_str).collect();
        assert!(requested_user_claims(&names[..40]).is_ok(), "the limit itself");
        assert!(requested_user_claims(&names).is_err());
    }
}
