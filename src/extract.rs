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

use axum::extract::rejection::JsonRejection;
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

/// Decodes `application/x-www-form-urlencoded` text (a body or a query) strictly: malformed
/// input and control characters are refused with our error.
pub fn decode_urlencoded<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let malformed = || AppError::bad_request("the request parameters are malformed");
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes).map_err(|_| malformed())?;
    if has_control_character(&pairs) {
        return Err(control_character());
    }
    serde_urlencoded::from_bytes(bytes).map_err(|e| {
        tracing::debug!(error = %e, "parameters rejected");
        malformed()
    })
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
        let value = match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(value)) => value,
            Err(rejection) => return Err(json_rejection(&rejection)),
        };
        if has_nul(&value) {
            return Err(control_character());
        }
        serde_json::from_value(value).map(Json).map_err(|e| {
            tracing::debug!(error = %e, "JSON body rejected");
            AppError::bad_request("the request body is not valid JSON for this endpoint")
        })
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

fn json_rejection(rejection: &JsonRejection) -> AppError {
    tracing::debug!(%rejection, "JSON body rejected");
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => AppError::UnsupportedMediaType,
        _ => AppError::bad_request("the request body is not valid JSON for this endpoint"),
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
        let bytes = match axum::body::Bytes::from_request(req, state).await {
            Ok(bytes) => bytes,
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(AppError::PayloadTooLarge);
            }
            Err(rejection) => {
                tracing::debug!(%rejection, "form body rejected");
                return Err(AppError::bad_request("the request parameters are malformed"));
            }
        };
        decode_urlencoded(&bytes).map(Form)
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
