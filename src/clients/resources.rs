//! The tenant's APIs (resource servers) and resource indicators (RFC 8707): registering an API
//! with its identifier, scopes and allowed clients; and resolving the `resource` parameters of
//! a client's request to the APIs its access token will be meant for (ARCHITECTURE.md,
//! "Resource indicators").
//!
//! An identifier is compared as the exact string registered: RFC 8707 defines no
//! normalisation, and a satellite API checks `aud` against its own identifier the same way.

use chrono::Utc;
use uuid::Uuid;

use crate::db::audit::{self, Actor};
use crate::db::resource_servers::ResourceServerRow;
use crate::db::{self, Database, clients::ClientRow};
use crate::service_error::ServiceError;

/// Most scopes one API defines, and most clients it allows (migration 0023 holds both).
pub const MAX_SCOPES: usize = 50;
pub const MAX_CLIENTS: usize = 200;
/// Most `resource` parameters one authorization request may name (migration 0023).
pub const MAX_PER_REQUEST: usize = 10;
/// The longest identifier (migration 0023).
pub const MAX_IDENTIFIER_BYTES: usize = 255;
/// The longest scope an API may define.
pub const MAX_SCOPE_BYTES: usize = 64;

/// Scopes this provider gives a meaning of its own (OpenID Connect's, and the admin API's): an
/// API cannot define them, so a token for an API never carries one because of it.
const RESERVED_SCOPES: [&str; 5] = ["openid", "profile", "email", "offline_access", "admin"];

/// What an administrator registers.
#[derive(Debug, Clone, Default)]
pub struct ResourceRequest {
    pub identifier: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub client_ids: Vec<String>,
}

/// What an administrator changes: each field that is `Some` replaces the registered one.
#[derive(Debug, Clone, Default)]
pub struct ResourceChange {
    pub name: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub client_ids: Option<Vec<String>>,
}

/// Why a request's `resource` cannot be granted: `invalid_target` (RFC 8707 §2), with this as
/// its description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTarget(pub &'static str);

/// Whether `raw` can be a resource identifier: an absolute URI without a fragment (RFC 8707
/// §2), and without a query (which §2 advises against: we refuse it, so that no two spellings
/// of one API's parameters can be registered as two APIs).
pub fn identifier_problem(raw: &str) -> Option<&'static str> {
    if raw.is_empty() || raw.len() > MAX_IDENTIFIER_BYTES {
        return Some("a resource identifier is 1 to 255 bytes long");
    }
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Some("a resource identifier contains a space or a control character");
    }
    let Ok(url) = url::Url::parse(raw) else {
        return Some("a resource identifier must be an absolute URI");
    };
    if url.fragment().is_some() || raw.contains('#') {
        return Some("a resource identifier must not contain a fragment");
    }
    if url.query().is_some() {
        return Some("a resource identifier must not contain a query");
    }
    None
}

/// Whether `s` is a scope an API may define: a scope-token (RFC 6749 §3.3) of at most
/// [`MAX_SCOPE_BYTES`], not one of the [`RESERVED_SCOPES`].
fn scope_problem(s: &str) -> Option<String> {
    if s.is_empty()
        || s.len() > MAX_SCOPE_BYTES
        || !s.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
    {
        return Some(format!("{s:?} is not a scope (1 to 64 visible characters, no space, quote or backslash)"));
    }
    RESERVED_SCOPES.contains(&s).then(|| format!("{s:?} is a scope of the provider itself, not of an API"))
}

/// The scopes, checked, without repeats, in order.
fn checked_scopes(scopes: Vec<String>) -> Result<Vec<String>, ServiceError> {
    let mut out: Vec<String> = Vec::with_capacity(scopes.len());
    for s in scopes {
        if let Some(why) = scope_problem(&s) {
            return Err(ServiceError::Invalid(why));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    if out.len() > MAX_SCOPES {
        return Err(ServiceError::Invalid(format!("an API defines at most {MAX_SCOPES} scopes")));
    }
    Ok(out)
}

fn checked_name(name: String) -> Result<String, ServiceError> {
    let name = name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ServiceError::Invalid("the name is 1 to 200 characters without control characters".into()));
    }
    Ok(name)
}

/// The client ids, without repeats, each a client of the transaction's tenant.
async fn checked_clients(tx: &mut db::Tx, client_ids: Vec<String>) -> Result<Vec<String>, ServiceError> {
    let mut out: Vec<String> = Vec::with_capacity(client_ids.len());
    for id in client_ids {
        if out.contains(&id) {
            continue;
        }
        if id.len() > 128 || db::clients::get(tx, &id).await?.is_none() {
            return Err(ServiceError::Invalid(format!("{id:?} is not a client of this tenant")));
        }
        out.push(id);
    }
    if out.len() > MAX_CLIENTS {
        return Err(ServiceError::Invalid(format!("an API allows at most {MAX_CLIENTS} clients")));
    }
    Ok(out)
}

/// Registers an API in tenant `tenant_id`; `resource_server.registered`. `Conflict` when the
/// tenant has one with that identifier.
pub async fn register(
    db: &Database,
    actor: &Actor,
    tenant_id: Uuid,
    req: ResourceRequest,
) -> Result<ResourceServerRow, ServiceError> {
    if let Some(why) = identifier_problem(&req.identifier) {
        return Err(ServiceError::Invalid(why.into()));
    }
    let name = checked_name(req.name)?;
    let scopes = checked_scopes(req.scopes)?;
    let mut tx = db.tenant(tenant_id).await?;
    let client_ids = checked_clients(&mut tx, req.client_ids).await?;
    let row = ResourceServerRow {
        id: Uuid::now_v7(),
        identifier: req.identifier,
        name,
        scopes,
        client_ids,
        created_at: Utc::now(),
    };
    if !db::resource_servers::insert(&mut tx, &row).await? {
        return Err(ServiceError::Conflict("an API with this identifier is registered already".into()));
    }
    let details = serde_json::json!({
        "identifier": row.identifier, "name": row.name, "scopes": row.scopes, "client_ids": row.client_ids,
    });
    audit::append(
        &mut tx,
        &actor.event("resource_server.registered", ("resource_server", Some(row.id.to_string())), details),
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// The tenant's APIs, by identifier.
pub async fn list(db: &Database, tenant_id: Uuid) -> Result<Vec<ResourceServerRow>, ServiceError> {
    let mut tx = db.tenant(tenant_id).await?;
    let rows = db::resource_servers::list(&mut tx).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Changes an API's name, scopes or allowed clients; `resource_server.updated` with what it
/// was and is. Tokens issued already keep their `aud` until they expire; a client taken off
/// the list gets no new one.
pub async fn update(
    db: &Database,
    actor: &Actor,
    tenant_id: Uuid,
    id: Uuid,
    change: ResourceChange,
) -> Result<ResourceServerRow, ServiceError> {
    let name = change.name.map(checked_name).transpose()?;
    let scopes = change.scopes.map(checked_scopes).transpose()?;
    let mut tx = db.tenant(tenant_id).await?;
    let client_ids = match change.client_ids {
        Some(ids) => Some(checked_clients(&mut tx, ids).await?),
        None => None,
    };
    let Some(before) = db::resource_servers::by_id(&mut tx, id).await? else {
        return Err(no_resource());
    };
    let after = ResourceServerRow {
        name: name.unwrap_or_else(|| before.name.clone()),
        scopes: scopes.unwrap_or_else(|| before.scopes.clone()),
        client_ids: client_ids.unwrap_or_else(|| before.client_ids.clone()),
        ..before.clone()
    };
    db::resource_servers::update(&mut tx, &after).await?;
    let details = serde_json::json!({
        "identifier": after.identifier,
        "before": { "name": before.name, "scopes": before.scopes, "client_ids": before.client_ids },
        "after": { "name": after.name, "scopes": after.scopes, "client_ids": after.client_ids },
    });
    audit::append(&mut tx, &actor.event("resource_server.updated", ("resource_server", Some(id.to_string())), details))
        .await?;
    tx.commit().await?;
    Ok(after)
}

/// Removes an API; `resource_server.deleted`. Tokens issued for it stay valid until they
/// expire (a few minutes); no new one is issued, and refresh tokens of grants that named it
/// get `invalid_target` when they ask for it.
pub async fn remove(
    db: &Database,
    actor: &Actor,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<ResourceServerRow, ServiceError> {
    let mut tx = db.tenant(tenant_id).await?;
    let Some(row) = db::resource_servers::delete(&mut tx, id).await? else {
        return Err(no_resource());
    };
    let details = serde_json::json!({ "identifier": row.identifier, "name": row.name });
    audit::append(&mut tx, &actor.event("resource_server.deleted", ("resource_server", Some(id.to_string())), details))
        .await?;
    tx.commit().await?;
    Ok(row)
}

fn no_resource() -> ServiceError {
    ServiceError::NotFound("no such API".into())
}

/// The APIs the `resource` parameters `identifiers` of `client`'s request name, each
/// registered in the client's own tenant and allowing the client, in the order given and
/// without repeats. A multi-tenant client's APIs are its own tenant's too, whichever tenant
/// the token is for: the tenant that registered the client registered the APIs it calls.
pub async fn resolve(
    db: &Database,
    client: &ClientRow,
    identifiers: &[String],
) -> Result<Result<Vec<ResourceServerRow>, InvalidTarget>, sqlx::Error> {
    let wanted = match wanted(identifiers) {
        Ok(wanted) if wanted.is_empty() => return Ok(Ok(Vec::new())),
        Ok(wanted) => wanted,
        Err(refused) => return Ok(Err(refused)),
    };
    let mut tx = db.tenant(client.tenant_id).await?;
    let found = db::resource_servers::by_identifiers(&mut tx, &wanted).await?;
    tx.commit().await?;
    Ok(pick(&found, &client.client_id, &wanted))
}

/// The identifiers a request names, checked, without repeats, in order.
pub fn wanted(identifiers: &[String]) -> Result<Vec<String>, InvalidTarget> {
    let mut wanted: Vec<String> = Vec::with_capacity(identifiers.len());
    for id in identifiers {
        if identifier_problem(id).is_some() {
            return Err(InvalidTarget("a resource is not an absolute URI without a fragment or query"));
        }
        if !wanted.contains(id) {
            wanted.push(id.clone());
        }
    }
    if wanted.len() > MAX_PER_REQUEST {
        return Err(InvalidTarget("a request names at most 10 resources"));
    }
    Ok(wanted)
}

/// Of the registrations `found`, those of `wanted`, in its order, when each is there and
/// allows `client_id`.
pub fn pick(
    found: &[ResourceServerRow],
    client_id: &str,
    wanted: &[String],
) -> Result<Vec<ResourceServerRow>, InvalidTarget> {
    let mut out = Vec::with_capacity(wanted.len());
    for id in wanted {
        // Unknown and not allowed get the same answer: a client learns nothing about the
        // APIs it may not call.
        match found.iter().find(|r| &r.identifier == id) {
            Some(r) if r.client_ids.iter().any(|c| c == client_id) => out.push(r.clone()),
            _ => return Err(InvalidTarget("the resource is not registered, or not for this client")),
        }
    }
    Ok(out)
}

/// What a token request's access token is meant for (RFC 8707 §2.2): the `resource` it names
/// (`asked`), which must be one its authorization named (`granted`); without one, all of
/// those. The result is what [`pick`] is given.
pub fn at_token_endpoint(granted: &[String], asked: Option<&str>) -> Result<Vec<String>, InvalidTarget> {
    match asked {
        None => Ok(granted.to_vec()),
        Some(asked) if granted.iter().any(|g| g == asked) => Ok(vec![asked.to_owned()]),
        Some(asked) => {
            wanted(&[asked.to_owned()])?;
            Err(InvalidTarget("the resource was not part of the authorization"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for good in [
            "https://api.example.com",
            "https://api.example.com/orders/",
            "urn:example:orders",
            "http://127.0.0.1:8080/",
        ] {
            assert_eq!(identifier_problem(good), None, "{good}");
        }
        for bad in [
            "",
            "/orders",
            "api.example.com",
            "https://api.example.com/#x",
            "https://api.example.com/#",
            "https://api.example.com/?v=1",
            " https://api.example.com",
            "https://api.example.com/a b",
            "https://api.example.com/\u{7}",
        ] {
            assert!(identifier_problem(bad).is_some(), "{bad:?}");
        }
        assert!(identifier_problem(&format!("https://a.example/{}", "x".repeat(240))).is_some(), "too long");
    }

    fn api(identifier: &str, clients: &[&str]) -> ResourceServerRow {
        ResourceServerRow {
            id: Uuid::now_v7(),
            identifier: identifier.into(),
            name: "API".into(),
            scopes: vec!["read".into()],
            client_ids: clients.iter().map(|c| (*c).to_owned()).collect(),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn picking() {
        let found = [api("https://a.example/", &["c1"]), api("https://b.example/", &["c2"])];
        let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(pick(&found, "c1", &ids(&["https://a.example/"])).unwrap(), [found[0].clone()]);
        assert!(pick(&found, "c1", &ids(&["https://b.example/"])).is_err(), "not allowed");
        assert!(pick(&found, "c1", &ids(&["https://c.example/"])).is_err(), "unknown");
        assert!(pick(&found, "c1", &ids(&["https://a.example/", "https://b.example/"])).is_err(), "all or nothing");
        assert_eq!(wanted(&ids(&["urn:x:a", "urn:x:a", "urn:x:b"])).unwrap(), ids(&["urn:x:a", "urn:x:b"]));
        assert!(wanted(&ids(&["urn:x:a#f"])).is_err());
        let many: Vec<String> = (0..11).map(|i| format!("urn:x:{i}")).collect();
        assert!(wanted(&many).is_err());
        assert!(wanted(&many[..10]).is_ok());
    }

    #[test]
    fn token_endpoint_choice() {
        let granted = vec!["urn:x:a".to_owned(), "urn:x:b".to_owned()];
        assert_eq!(at_token_endpoint(&granted, None).unwrap(), granted);
        assert_eq!(at_token_endpoint(&granted, Some("urn:x:b")).unwrap(), ["urn:x:b"]);
        assert!(at_token_endpoint(&granted, Some("urn:x:c")).is_err(), "not granted");
        assert!(at_token_endpoint(&[], Some("urn:x:a")).is_err(), "nothing granted");
        assert!(at_token_endpoint(&[], None).unwrap().is_empty());
    }

    #[test]
    fn scopes() {
        assert_eq!(
            checked_scopes(vec!["orders:read".into(), "orders:write".into(), "orders:read".into()]).unwrap(),
            ["orders:read", "orders:write"]
        );
        for bad in ["", "a b", "a\"b", "a\\b", "openid", "admin", "offline_access", "é"] {
            assert!(checked_scopes(vec![bad.into()]).is_err(), "{bad:?}");
        }
        assert!(checked_scopes(vec!["x".repeat(65)]).is_err());
        assert!(checked_scopes((0..=MAX_SCOPES).map(|i| format!("s{i}")).collect()).is_err());
        assert!(checked_scopes((0..MAX_SCOPES).map(|i| format!("s{i}")).collect()).is_ok());
    }
}
