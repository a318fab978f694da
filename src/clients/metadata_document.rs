//! OAuth Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document; ARCHITECTURE.md,
//! "Client ID metadata documents"): a client whose `client_id` is an https URL is described by
//! the JSON document served at that URL, so it needs no registration (MCP clients work so).
//!
//! [`resolve`] is asked at the authorization and pushed authorization request endpoints only.
//! A document not stored yet, or past its expiry, is fetched through `outbound` (public
//! addresses only, no redirects, [`FETCH_TIMEOUT`], at most [`MAX_DOCUMENT_BYTES`] read),
//! checked, and written as a public, multi-tenant client of the platform tenant through the
//! rules every client has (`super::check`), kept until the expiry its `Cache-Control` gives.
//! A stale document that cannot be fetched again is refused, never served from the stale copy.
//! Nothing is fetched until some tenant allows these clients, and a tenant's users are offered
//! to such a client only when their tenant allows it (`allowed_tenants`, and again where
//! tokens are issued).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use url::Url;
use uuid::Uuid;

use super::{ClientRequest, GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN};
use crate::db::audit::{self, Actor};
use crate::db::{self, Database, clients::ClientRow};
use crate::outbound;
use crate::secrets::sha256;
use crate::service_error::ServiceError;

/// The longest client_id URL (the draft leaves it to the server).
pub const MAX_URL_BYTES: usize = 2048;
/// The largest document read; the body is read chunk by chunk and dropped past it.
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// How long a fetch may take in all: connecting, the answer and its body.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a document is used without fetching it again: its `Cache-Control: max-age`,
/// clamped to these bounds, or [`DEFAULT_CACHE_SECS`] without one.
pub const MIN_CACHE_SECS: i64 = 5 * 60;
pub const MAX_CACHE_SECS: i64 = 24 * 3600;
pub const DEFAULT_CACHE_SECS: i64 = 3600;
/// At most one fetch of one URL in this many seconds, however many requests ask at once.
pub const FETCH_INTERVAL_SECS: i64 = 5;
/// At most this many fetches a minute for requests from one client IP (an IPv6 /64), so one
/// caller cannot make the server fetch URL after URL.
pub const FETCHES_PER_IP_PER_MINUTE: i32 = 30;

/// The HTTP client of the fetches, built once (`AppState`).
#[derive(Clone, Debug)]
pub struct Fetcher {
    http: reqwest::Client,
    allow_private: bool,
}

impl Fetcher {
    /// `allow_private`: `LCA_CLIENT_METADATA_ALLOW_PRIVATE`, for development only.
    pub fn new(allow_private: bool) -> Self {
        Self { http: outbound::client(allow_private, FETCH_TIMEOUT, "LaventeCare-Auth client metadata"), allow_private }
    }
}

/// The URL a client_id is, when it names a metadata document (draft §3): https, a path other
/// than `/`, no fragment, no user or password, no dot segments, at most [`MAX_URL_BYTES`],
/// written in normal form (so the string compared is the URL fetched). With `allow_private`
/// (development), `http` on a loopback host too.
pub fn document_url(client_id: &str, allow_private: bool) -> Option<Url> {
    if client_id.len() > MAX_URL_BYTES || client_id.contains('#') {
        return None;
    }
    let url = Url::parse(client_id).ok()?;
    // Dot segments (`/a/../b`, `%2e`) and every other spelling the parser changes are refused.
    if url.as_str() != client_id || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    if url.path().is_empty() || url.path() == "/" || url.host().is_none() {
        return None;
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Some(url),
        "http" if allow_private && loopback => Some(url),
        _ => None,
    }
}

/// Whether a client_id looks like a URL at all: such ids are never made by registration
/// (those are random hex), so one that is not a valid [`document_url`] is simply unknown.
pub fn looks_like_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// Why a document could not be used. The reason is for the log; the caller sees a page that
/// says only that the application could not be used.
#[derive(Debug)]
pub enum Unresolved {
    /// The document cannot be trusted or used (fetch failed, refused, not a valid client).
    Refused(String),
    /// Not the document's fault (the database).
    Internal(anyhow::Error),
}

fn internal(e: impl Into<anyhow::Error>) -> Unresolved {
    Unresolved::Internal(e.into())
}

/// The client a client_id names: for the URL of a metadata document, the stored client while
/// its document is fresh, else the document fetched again and stored; for any other id, the
/// registered client. `Ok(None)`: not a client (unknown id, or no tenant allows documents).
pub async fn resolve(
    db: &Database,
    fetcher: &Fetcher,
    client_id: &str,
    origin: &Actor,
) -> Result<Option<ClientRow>, Unresolved> {
    let Some(url) = document_url(client_id, fetcher.allow_private) else {
        if looks_like_url(client_id) {
            return Ok(None);
        }
        return super::find(db, client_id).await.map_err(internal);
    };
    let stored = super::find(db, client_id).await.map_err(internal)?;
    if let Some(client) = &stored
        && client.metadata_expires_at.is_none_or(|expires| expires > Utc::now())
    {
        return Ok(stored);
    }
    let mut tx = db.unscoped().await.map_err(internal)?;
    let enabled = db::tenants::any_allows_client_metadata_documents(&mut tx).await.map_err(internal)?;
    let platform = db::tenants::platform(&mut tx).await.map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    if !enabled {
        // Off everywhere: the URL is an unknown client, and nothing is fetched.
        return match stored {
            None => Ok(None),
            Some(_) => Err(Unresolved::Refused("no tenant allows client metadata documents any more".into())),
        };
    }
    let Some(platform) = platform else {
        return Err(Unresolved::Refused("there is no platform tenant to keep the client in".into()));
    };
    // Fetches per client IP, then one fetch per URL per interval, counted in the database so
    // that every instance and every concurrent request shares them; a request past either is
    // refused, not queued.
    let mut tx = db.unscoped().await.map_err(internal)?;
    if let Some(ip) = origin.ip {
        let key = sha256(format!("client-metadata-ip:{}", crate::identity::throttle::ip_key(ip)).as_bytes());
        if db::rate_limits::hit(&mut tx, &key, FETCHES_PER_IP_PER_MINUTE, 60).await.map_err(internal)?.is_some() {
            tx.commit().await.map_err(internal)?;
            return Err(Unresolved::Refused("too many document fetches for this client address".into()));
        }
    }
    let key = sha256(format!("client-metadata-fetch:{client_id}").as_bytes());
    let busy = db::rate_limits::hit(&mut tx, &key, 1, FETCH_INTERVAL_SECS).await.map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    if busy.is_some() {
        return Err(Unresolved::Refused("the document was fetched moments ago and is not usable".into()));
    }

    let (body, max_age) = fetch(fetcher, &url).await.map_err(Unresolved::Refused)?;
    let (document, request) = parse(&body, client_id).map_err(Unresolved::Refused)?;
    let mut checked = super::check(request).map_err(|e| match e {
        ServiceError::Invalid(why) => Unresolved::Refused(format!("not a valid client: {why}")),
        other => internal(other),
    })?;
    // The scopes it may ask for: ours, narrowed to the document's `scope` when it has one.
    if let Some(scope) = document.get("scope").and_then(serde_json::Value::as_str) {
        let words: Vec<&str> = scope.split(' ').collect();
        checked.scopes.retain(|s| words.contains(&s.as_str()));
    }
    let expires_at = Utc::now() + chrono::Duration::seconds(max_age);
    store(db, platform, client_id, &checked, &document, expires_at, origin).await
}

/// Writes the client and audits it: `client.registered` (via `client_id_metadata_document`)
/// the first time, `client.updated` when a fetch changed the document.
async fn store(
    db: &Database,
    platform: Uuid,
    client_id: &str,
    checked: &super::Checked,
    document: &serde_json::Value,
    expires_at: DateTime<Utc>,
    origin: &Actor,
) -> Result<Option<ClientRow>, Unresolved> {
    let actor = Actor { kind: "system", id: Some("client_id_metadata_document".into()), ..origin.clone() };
    let mut tx = db.tenant(platform).await.map_err(internal)?;
    let before = db::clients::lock_metadata_document(&mut tx, client_id).await.map_err(internal)?;
    let row = checked.new_client(client_id, None);
    let Some(inserted) =
        db::clients::upsert_metadata_client(&mut tx, &row, document, expires_at).await.map_err(internal)?
    else {
        return Err(Unresolved::Refused("a registered client holds this client_id".into()));
    };
    let target = ("client", Some(client_id.to_owned()));
    if inserted {
        let mut details = checked.details();
        details["via"] = "client_id_metadata_document".into();
        audit::append(&mut tx, &actor.event("client.registered", target, details)).await.map_err(internal)?;
    } else if before.as_ref() != Some(document) {
        let details = serde_json::json!({ "via": "client_id_metadata_document", "document": document });
        audit::append(&mut tx, &actor.event("client.updated", target, details)).await.map_err(internal)?;
    }
    let client = db::clients::get(&mut tx, client_id).await.map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    Ok(client)
}

/// GETs the document: 200 only, JSON, at most [`MAX_DOCUMENT_BYTES`] read, within
/// [`FETCH_TIMEOUT`]. Returns the body and how long it may be kept, in seconds.
async fn fetch(fetcher: &Fetcher, url: &Url) -> Result<(Vec<u8>, i64), String> {
    // No resolver sees a literal address: it is checked here.
    if let Some(ip) = outbound::literal_ip(url)
        && !(fetcher.allow_private || outbound::is_public(ip))
    {
        return Err("the client_id names an address that is not public".into());
    }
    let get = async {
        let mut res = fetcher
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| crate::outbound::describe(&e))?;
        if res.status() != reqwest::StatusCode::OK {
            return Err(format!(
                "answered {} (only 200 is accepted; redirects are not followed)",
                res.status().as_u16()
            ));
        }
        if !is_json(res.headers().get(reqwest::header::CONTENT_TYPE)) {
            return Err("the answer is not application/json".into());
        }
        if res.content_length().is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64) {
            return Err(format!("the document is larger than {MAX_DOCUMENT_BYTES} bytes"));
        }
        let max_age = cache_secs(res.headers().get(reqwest::header::CACHE_CONTROL));
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| crate::outbound::describe(&e))? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("the document is larger than {MAX_DOCUMENT_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, max_age))
    };
    // The client's own timeout covers the body too; this one makes the bound plain.
    tokio::time::timeout(FETCH_TIMEOUT, get).await.unwrap_or_else(|_| Err("timed out".into()))
}

fn is_json(content_type: Option<&reqwest::header::HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else { return false };
    let media = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// How long a document may be kept: `Cache-Control: max-age`, clamped to
/// [[`MIN_CACHE_SECS`], [`MAX_CACHE_SECS`]]; `no-store`/`no-cache` keep it the least time.
fn cache_secs(cache_control: Option<&reqwest::header::HeaderValue>) -> i64 {
    let Some(value) = cache_control.and_then(|v| v.to_str().ok()) else { return DEFAULT_CACHE_SECS };
    let mut secs = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return MIN_CACHE_SECS;
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            secs = n.trim_matches('"').parse::<i64>().ok();
        }
    }
    secs.unwrap_or(DEFAULT_CACHE_SECS).clamp(MIN_CACHE_SECS, MAX_CACHE_SECS)
}

/// The members of a document this provider reads (draft §4; RFC 7591 §2). Others are ignored,
/// as in a registration request; a repeated or mistyped member is refused.
#[derive(Debug, Deserialize)]
struct Document {
    client_id: String,
    redirect_uris: Vec<String>,
    client_name: Option<String>,
    client_uri: Option<String>,
    logo_uri: Option<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    grant_types: Vec<String>,
    #[serde(default)]
    response_types: Vec<String>,
    scope: Option<String>,
    token_endpoint_auth_method: Option<String>,
}

/// Checks a fetched document (draft §4.1) and makes the client request it describes: a
/// public, multi-tenant client with the code grant (and refresh, if asked). Returns the
/// document as stored.
fn parse(body: &[u8], client_id: &str) -> Result<(serde_json::Value, ClientRequest), String> {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|_| "the document is not a JSON object".to_owned())?;
    // PostgreSQL's jsonb cannot hold a NUL character; such a document is refused, not an error.
    if serde_json::to_string(&object).map_or(true, |text| text.contains("\\u0000")) {
        return Err("the document holds a NUL character".into());
    }
    // A document is public: a secret in it is known to everyone (draft §4.1).
    if object.contains_key("client_secret") || object.contains_key("client_secret_expires_at") {
        return Err("the document holds a client_secret".into());
    }
    let doc: Document = serde_json::from_slice(body).map_err(|e| {
        format!("the document's members are not as expected (line {}, column {})", e.line(), e.column())
    })?;
    if doc.client_id != client_id {
        return Err("the document's client_id is not its URL".into());
    }
    match doc.token_endpoint_auth_method.as_deref() {
        None | Some("none") => {}
        Some(other) => {
            return Err(format!("token_endpoint_auth_method {other:?}: only none is accepted"));
        }
    }
    if doc.redirect_uris.is_empty() {
        return Err("the document has no redirect_uris".into());
    }
    if !doc.response_types.iter().all(|r| r == "code") {
        return Err("only the response_type code is supported".into());
    }
    let mut grants = vec![GRANT_AUTHORIZATION_CODE.to_owned()];
    for g in &doc.grant_types {
        match g.as_str() {
            GRANT_AUTHORIZATION_CODE => {}
            GRANT_REFRESH_TOKEN => grants.push(GRANT_REFRESH_TOKEN.to_owned()),
            other => return Err(format!("the grant type {other:?} is not available to such a client")),
        }
    }
    for (member, uri) in [("client_uri", &doc.client_uri), ("logo_uri", &doc.logo_uri)] {
        if let Some(uri) = uri
            && (uri.len() > 2000 || Url::parse(uri).map(|u| u.scheme() != "https").unwrap_or(true))
        {
            return Err(format!("{member} is not an https URL"));
        }
    }
    if doc.scope.as_ref().is_some_and(|s| s.len() > 1000) {
        return Err("the scope is too long".into());
    }
    let host = Url::parse(client_id).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
    let name = doc.client_name.filter(|n| !n.trim().is_empty()).unwrap_or(host);
    let request = ClientRequest {
        tenant: String::new(),
        name,
        grants,
        public: true,
        redirect_uris: doc.redirect_uris,
        post_logout_redirect_uris: doc.post_logout_redirect_uris,
        multi_tenant: true,
        ..Default::default()
    };
    Ok((serde_json::Value::Object(object), request))
}

/// Of the tenants `tenants`, those whose users may sign in to `client`: all of them for a
/// registered client, only those that allow metadata documents for a document's client.
pub async fn allowed_tenants(db: &Database, client: &ClientRow, tenants: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    if !client.is_metadata_document() {
        return Ok(tenants.to_vec());
    }
    let mut tx = db.unscoped().await?;
    let allowed = db::tenants::allowing_client_metadata_documents(&mut tx, tenants).await?;
    tx.commit().await?;
    Ok(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// https with a path; nothing the parser would rewrite; http only on loopback and only
    /// when allowed.
    #[test]
    fn document_urls() {
        for ok in ["https://app.example.com/client.json", "https://app.example.com/a/b?x=1", "https://10.0.0.1/c"] {
            assert!(document_url(ok, false).is_some(), "{ok}");
        }
        for bad in [
            "https://app.example.com",
            "https://app.example.com/",
            "https://app.example.com/c#f",
            "https://user:pw@app.example.com/c",
            "https://app.example.com/a/../c",
            "https://app.example.com/a/./c",
            "https://app.example.com/a/%2e%2e/c",
            "https://APP.example.com/c",
            "https://app.example.com:443/c",
            "http://app.example.com/c",
            "http://127.0.0.1:8080/c",
            "0123456789abcdef0123456789abcdef",
        ] {
            assert!(document_url(bad, false).is_none(), "{bad}");
        }
        assert!(document_url(&format!("https://a.example/{}", "x".repeat(MAX_URL_BYTES)), false).is_none());
        assert!(document_url("http://127.0.0.1:8080/c", true).is_some());
        assert!(document_url("http://localhost:8080/c", true).is_some());
        assert!(document_url("http://10.0.0.1:8080/c", true).is_none());
    }

    #[test]
    fn cache_lifetimes() {
        let h = |v: &'static str| reqwest::header::HeaderValue::from_static(v);
        assert_eq!(cache_secs(None), DEFAULT_CACHE_SECS);
        assert_eq!(cache_secs(Some(&h("public, max-age=7200"))), 7200);
        assert_eq!(cache_secs(Some(&h("max-age=1"))), MIN_CACHE_SECS);
        assert_eq!(cache_secs(Some(&h("max-age=999999"))), MAX_CACHE_SECS);
        assert_eq!(cache_secs(Some(&h("no-store"))), MIN_CACHE_SECS);
        assert_eq!(cache_secs(Some(&h("max-age=nonsense"))), DEFAULT_CACHE_SECS);
    }

    #[test]
    fn documents() {
        let id = "https://app.example.com/client.json";
        let ok =
            format!(r#"{{"client_id":"{id}","redirect_uris":["https://app.example.com/cb"],"client_name":"App"}}"#);
        let (_, req) = parse(ok.as_bytes(), id).unwrap();
        assert!(req.public && req.multi_tenant);
        assert_eq!(req.name, "App");
        for bad in [
            r#"[]"#.to_owned(),
            r#"not json"#.to_owned(),
            format!(r#"{{"client_id":"{id}x","redirect_uris":["https://app.example.com/cb"]}}"#),
            format!(r#"{{"client_id":"{id}"}}"#),
            format!(
                r#"{{"client_id":"{id}","redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"client_secret_basic"}}"#
            ),
            format!(r#"{{"client_id":"{id}","redirect_uris":["https://a.example/cb"],"client_secret":"s"}}"#),
            format!(r#"{{"client_id":"{id}","redirect_uris":["https://a.example/cb"],"software_id":"a\u0000b"}}"#),
            format!(r#"{{"client_id":"{id}","client_id":"{id}","redirect_uris":["https://a.example/cb"]}}"#),
            format!(
                r#"{{"client_id":"{id}","redirect_uris":["https://a.example/cb"],"grant_types":["client_credentials"]}}"#
            ),
        ] {
            assert!(parse(bad.as_bytes(), id).is_err(), "{bad}");
        }
    }
}
