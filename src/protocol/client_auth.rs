//! Client authentication at the token, introspection and revocation endpoints
//! (RFC 6749 §2.3): `client_secret_basic`, `client_secret_post`, and `none` for public
//! clients.

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::db::{Database, Tx, clients::ClientRow};
use crate::error::{AppError, OAuthError};
use crate::secrets::Secret;

/// The registered `token_endpoint_auth_method` values (RFC 7591 §2).
pub const METHOD_BASIC: &str = "client_secret_basic";
pub const METHOD_POST: &str = "client_secret_post";
pub const METHOD_NONE: &str = "none";

/// Credentials as presented.
#[derive(Default)]
pub struct Presented<'a> {
    pub client_id: Option<&'a str>,
    pub client_secret: Option<&'a str>,
}

/// The secret never shows: only whether there was one.
impl std::fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.map(|_| "[REDACTED]"))
            .finish()
    }
}

/// Authenticates the calling client. Every failure is the same `invalid_client` (401), so
/// the answer does not tell an unknown client from a wrong secret.
pub async fn authenticate(db: &Database, headers: &HeaderMap, body: Presented<'_>) -> Result<ClientRow, AppError> {
    let (client, tx) = authenticate_in_tenant(db, headers, body).await?;
    tx.commit().await?;
    Ok(client)
}

/// [`authenticate`], and the open transaction of the client's tenant it read the client in, for
/// a request that goes on in that tenant: one transaction for the whole request.
pub async fn authenticate_in_tenant(
    db: &Database,
    headers: &HeaderMap,
    body: Presented<'_>,
) -> Result<(ClientRow, Tx), AppError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        Some(value) => Some(parse_basic(value.to_str().ok()).ok_or_else(OAuthError::invalid_client)?),
        None => None,
    };
    // RFC 6749 §2.3: a client MUST NOT use more than one authentication method.
    if basic.is_some() && body.client_secret.is_some() {
        return Err(OAuthError::invalid_request("use one client authentication method").into());
    }
    let (client_id, secret) = match &basic {
        Some((id, secret)) => {
            if body.client_id.is_some_and(|b| b != id) {
                return Err(OAuthError::invalid_request("client_id differs from the authenticated client").into());
            }
            (id.as_str(), Some(secret.as_str()))
        }
        None => match body.client_id {
            Some(id) => (id, body.client_secret),
            None => return Err(OAuthError::invalid_client().into()),
        },
    };
    let method = match (&basic, secret) {
        (Some(_), _) => METHOD_BASIC,
        (None, Some(_)) => METHOD_POST,
        (None, None) => METHOD_NONE,
    };
    if client_id.is_empty() || client_id.len() > crate::clients::metadata_document::MAX_URL_BYTES {
        return Err(OAuthError::invalid_client().into());
    }

    let Some((client, tx)) = crate::clients::find_in_tenant(db, client_id).await? else {
        return Err(OAuthError::invalid_client().into());
    };
    let ok = match (&client.secret_hash, secret) {
        (Some(hash), Some(secret)) => Secret::from_presented(secret.to_owned()).matches(hash),
        (None, None) => client.client_type == crate::vocabulary::ClientType::Public,
        _ => false,
    };
    // The method the client registered is the only one it may use (RFC 7591 §2,
    // `token_endpoint_auth_method`): a secret meant for the Authorization header is refused
    // in the body, and the other way round.
    if !ok || client.token_endpoint_auth_method != method {
        return Err(OAuthError::invalid_client().into());
    }
    Ok((client, tx))
}

/// `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1 asks
/// for the form-urlencoding of both parts).
fn parse_basic(value: Option<&str>) -> Option<(String, String)> {
    let value = value?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    // The edge's strict decoder: a bad escape or a control character (a NUL would reach
    // PostgreSQL as the client id) makes the credentials unreadable, so `invalid_client`.
    let unescape = |s: &str| -> Option<String> {
        let pairs = crate::extract::strict_pairs(format!("v={s}").as_bytes()).ok()?;
        pairs.into_iter().next().map(|(_, v)| v)
    };
    Some((unescape(id)?, unescape(secret)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Debug` names the client, never its secret.
    #[test]
    fn presented_debug_hides_the_secret() {
        let shown = format!("{:?}", Presented { client_id: Some("web"), client_secret: Some("cl1ent-s3cret") });
        assert!(shown.contains("web") && shown.contains("REDACTED") && !shown.contains("cl1ent-s3cret"), "{shown}");
    }

    /// Basic credentials are base64 of the form-urlencoded parts.
    #[test]
    fn basic_credentials() {
        let header = format!("Basic {}", STANDARD.encode("my%3Aclient:s%2Bcr%20t"));
        assert_eq!(parse_basic(Some(&header)), Some(("my:client".into(), "s+cr t".into())));
        assert_eq!(parse_basic(Some("Bearer abc")), None);
        assert_eq!(parse_basic(Some("Basic !!!")), None);
        assert_eq!(parse_basic(Some(&format!("Basic {}", STANDARD.encode("nocolon")))), None);
        for bad in ["web%00:s", "web:s%00", "web\0:s", "web:s\r\n", "web%zz:s"] {
            assert_eq!(parse_basic(Some(&format!("Basic {}", STANDARD.encode(bad)))), None, "{bad}");
        }
    }
}
