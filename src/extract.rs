//! Strict request decoding: our `Json`, `Form` and `Query` extractors, whose rejections are
//! our own error type, so malformed input gets our error body and never a library's message.
//!
//! Request types derive `Deserialize` with `#[serde(deny_unknown_fields)]` where the protocol
//! does not require unknown parameters to be ignored.
//!
//! Control characters are refused at the edge (400): no parameter of a form or a query has a
//! use for one, a CR or LF in a value that reaches a `Location` header would be a header
//! injection, and PostgreSQL cannot store NUL in text. JSON strings may hold newlines and
//! tabs, but never NUL.
//!
//! Forms and queries are percent-decoded strictly: a `%` not followed by two hex digits, or
//! bytes that are not UTF-8 once decoded, are refused rather than read leniently (the URL
//! standard's form parser keeps a stray `%` and turns bad bytes into U+FFFD, which would then
//! be echoed or stored as if the client had sent it). A JSON body is an object: serde would
//! read a struct from an array of its fields in order, which no client of ours sends.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// Whether a form or query parameter (name or value) holds a control character (Unicode
/// category Cc: C0, DEL and C1).
pub fn has_control_character(pairs: &[(String, String)]) -> bool {
    pairs.iter().any(|(k, v)| k.chars().chain(v.chars()).any(char::is_control))
}

fn control_character() -> AppError {
    AppError::bad_request("the request contains a control character")
}

fn malformed() -> AppError {
    AppError::bad_request("the request parameters are malformed")
}

/// Why urlencoded text was refused by [`strict_pairs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A bad `%` escape, or bytes that are not UTF-8.
    Malformed,
    /// A control character in a name or a value.
    ControlCharacter,
}

impl From<Refused> for AppError {
    fn from(r: Refused) -> Self {
        match r {
            Refused::Malformed => malformed(),
            Refused::ControlCharacter => control_character(),
        }
    }
}

/// The name/value pairs of `application/x-www-form-urlencoded` text, decoded strictly: `+` is
/// a space, `%XX` a byte, anything else after `%` is refused, and the decoded bytes must be
/// UTF-8 without control characters.
pub fn strict_pairs(bytes: &[u8]) -> Result<Vec<(String, String)>, Refused> {
    let mut pairs = Vec::new();
    for piece in bytes.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match piece.iter().position(|b| *b == b'=') {
            Some(at) => (&piece[..at], &piece[at + 1..]),
            None => (piece, &[][..]),
        };
        pairs.push((percent_decode(name)?, percent_decode(value)?));
    }
    if has_control_character(&pairs) {
        return Err(Refused::ControlCharacter);
    }
    Ok(pairs)
}

fn percent_decode(input: &[u8]) -> Result<String, Refused> {
    let hex = |b: u8| char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let mut out = Vec::with_capacity(input.len());
    let mut bytes = input.iter().copied();
    while let Some(b) = bytes.next() {
        out.push(match b {
            b'+' => b' ',
            b'%' => match (bytes.next().and_then(hex), bytes.next().and_then(hex)) {
                (Some(hi), Some(lo)) => hi << 4 | lo,
                _ => return Err(Refused::Malformed),
            },
            b => b,
        });
    }
    String::from_utf8(out).map_err(|_| Refused::Malformed)
}

/// Decodes `application/x-www-form-urlencoded` text (a body or a query) strictly: malformed
/// input and control characters are refused with our error.
pub fn decode_urlencoded<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    strict_pairs(bytes)?;
    serde_urlencoded::from_bytes(bytes).map_err(|e| {
        tracing::debug!(error = %e, "parameters rejected");
        malformed()
    })
}

/// Bounds on a request's head, refused before any handler runs (ARCHITECTURE.md, "Hostile
/// input"). Generous for real clients: an authorization request with 4 KiB of `state` and
/// 4 KiB of `claims` (percent-encoded, about 10 KiB) fits the URI; a browser's cookies for
/// our host fit the headers.
pub const MAX_URI_BYTES: usize = 32 * 1024;
/// One header's value.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// All headers' names and values together.
pub const MAX_HEADERS_BYTES: usize = 32 * 1024;
/// Header fields, not counting `Cookie` (HTTP/2 may send one per cookie, RFC 9113 §8.2.3).
pub const MAX_HEADERS: usize = 64;

/// Middleware: refuses a head past the bounds above (414, 431) and a path holding a control
/// character once percent-decoded (400; a NUL in a path segment would reach PostgreSQL as a
/// client id or a tenant slug, a CR/LF a `Location`).
pub async fn refuse_hostile_head(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let uri_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return AppError::UriTooLong.into_response();
    }
    let headers = req.headers();
    let counted = headers.iter().filter(|(name, _)| *name != axum::http::header::COOKIE).count();
    let total: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if counted > MAX_HEADERS || total > MAX_HEADERS_BYTES || headers.values().any(|v| v.len() > MAX_HEADER_BYTES) {
        return AppError::HeadersTooLarge.into_response();
    }
    if path_has_control_character(req.uri().path()) {
        return control_character().into_response();
    }
    next.run(req).await
}

/// Whether a path holds a control character, raw or percent-encoded.
fn path_has_control_character(path: &str) -> bool {
    let mut bytes = Vec::with_capacity(path.len());
    let mut rest = path.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        let escaped =
            tail.get(..2).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, escaped) {
            (b'%', Some(byte)) => {
                bytes.push(byte);
                rest = &tail[2..];
            }
            _ => {
                bytes.push(b);
                rest = tail;
            }
        }
    }
    String::from_utf8_lossy(&bytes).chars().any(char::is_control)
}

/// A JSON body, decoded strictly.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(AppError::UnsupportedMediaType);
        }
        let bytes = body_bytes(req, state).await?;
        let invalid = || AppError::bad_request("the request body is not valid JSON for this endpoint");
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            tracing::debug!(error = %e, "JSON body rejected");
            invalid()
        })?;
        if has_nul(&value) {
            return Err(control_character());
        }
        if !value.is_object() {
            return Err(AppError::bad_request("the request body must be a JSON object"));
        }
        // From the text, not the value: a key given twice is an error here (RFC 8259 §4 says
        // names SHOULD be unique; the value would keep the last one silently).
        serde_json::from_slice(&bytes).map(Json).map_err(|e| {
            tracing::debug!(error = %e, "JSON body rejected");
            invalid()
        })
    }
}

/// Whether the body is declared JSON (`application/json` or a `+json` type).
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let essence = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    essence.is_some_and(|e| e == "application/json" || (e.starts_with("application/") && e.ends_with("+json")))
}

/// The body, within the body limit.
async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<axum::body::Bytes, AppError> {
    match axum::body::Bytes::from_request(req, state).await {
        Ok(bytes) => Ok(bytes),
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(AppError::PayloadTooLarge),
        Err(rejection) => {
            tracing::debug!(%rejection, "body rejected");
            Err(malformed())
        }
    }
}

/// Whether a JSON value holds a NUL character in a string or a key.
fn has_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(has_nul),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// An `application/x-www-form-urlencoded` body (or query, for GET), decoded strictly.
#[derive(Debug, Clone, Copy, Default)]
pub struct Form<T>(pub T);

impl<T, S> FromRequest<S> for Form<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if req.method() == axum::http::Method::GET || req.method() == axum::http::Method::HEAD {
            return decode_urlencoded(req.uri().query().unwrap_or("").as_bytes()).map(Form);
        }
        if !is_form(req.headers()) {
            return Err(AppError::UnsupportedMediaType);
        }
        let bytes = body_bytes(req, state).await?;
        decode_urlencoded(&bytes).map(Form)
    }
}

/// The name/value pairs of a form body, decoded strictly ([`strict_pairs`]) but not into a
/// type: for a request one of whose parameters may be repeated (RFC 8707's `resource`, at the
/// pushed authorization request endpoint).
pub struct FormPairs(pub Vec<(String, String)>);

impl<S> FromRequest<S> for FormPairs
where
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_form(req.headers()) {
            return Err(AppError::UnsupportedMediaType);
        }
        let bytes = body_bytes(req, state).await?;
        Ok(FormPairs(strict_pairs(&bytes)?))
    }
}

/// Whether the body is declared `application/x-www-form-urlencoded` (parameters allowed).
fn is_form(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// The query string, decoded strictly (as [`Form`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        decode_urlencoded(parts.uri.query().unwrap_or("").as_bytes()).map(Query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `+`, `%XX` and UTF-8 decode; a stray `%`, bad hex, bytes that are not UTF-8 and control
    /// characters are refused.
    #[test]
    fn strict_pairs_decode_or_refuse() {
        let ok = strict_pairs(b"a=b+c&&d=%C3%A9&e").unwrap();
        assert_eq!(ok, [("a".into(), "b c".into()), ("d".into(), "é".into()), ("e".into(), String::new())]);
        for bad in [&b"a=%"[..], b"a=%4", b"a=%ZZ", b"a=%FF", b"a=\xC3\x28", b"%C3=1"] {
            assert_eq!(strict_pairs(bad), Err(Refused::Malformed), "{bad:?}");
        }
        for bad in [&b"a=%00"[..], b"a=%0D%0A", b"a%09=1", b"a=\x7f"] {
            assert_eq!(strict_pairs(bad), Err(Refused::ControlCharacter), "{bad:?}");
        }
    }

    /// A control character in a path counts raw or percent-encoded, C1 ones too.
    #[test]
    fn control_characters_in_paths() {
        for bad in ["/a%00", "/a/%0d%0ab", "/%7F", "/x%C2%85y"] {
            assert!(path_has_control_character(bad), "{bad}");
        }
        for ok in ["/", "/api/v1/clients/abc", "/a%20b", "/%", "/%zz", "/caf%C3%A9"] {
            assert!(!path_has_control_character(ok), "{ok}");
        }
    }
}
