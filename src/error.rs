//! Errors, by layer (STYLE.md: "errors say which layer they belong to"):
//! - `anyhow` outside the request cycle (startup, CLI);
//! - `sqlx::Error` in data code (`src/db/`);
//! - [`ServiceError`] in domain code (`crate::service_error`): what went wrong in words an
//!   operator may read;
//! - [`AppError`] at the HTTP edge.
//!
//! Silence is golden: an `AppError` response carries only our own words. The real error rides
//! in a response extension to [`finish_errors`], the one place that logs it (as JSON, with the
//! request id; error-level events also go to Sentry) and writes the body the caller sees.

use std::borrow::Cow;
use std::sync::Arc;

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::html::text::{Lang, Words};
use crate::service_error::ServiceError;

/// Header carrying the request id on every request and response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// An OAuth error response (RFC 6749 §5.2) of the token, introspection, revocation and
/// userinfo endpoints.
#[derive(Debug)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: Cow<'static, str>,
    /// `WWW-Authenticate` for 401s (RFC 6749 §5.2, RFC 6750 §3).
    pub www_authenticate: Option<HeaderValue>,
    /// `DPoP-Nonce`: the nonce a DPoP proof must carry next (RFC 9449 §8).
    pub dpop_nonce: Option<HeaderValue>,
}

impl OAuthError {
    /// 400 with the given error code.
    pub fn bad(error: &'static str, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
            www_authenticate: None,
            dpop_nonce: None,
        }
    }
    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::bad("invalid_request", description)
    }
    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::bad("invalid_grant", description)
    }
    /// 401 `invalid_client` with a Basic challenge (RFC 6749 §5.2).
    pub fn invalid_client() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: "client authentication failed".into(),
            www_authenticate: Some(HeaderValue::from_static("Basic realm=\"laventecare-auth\", charset=\"UTF-8\"")),
            dpop_nonce: None,
        }
    }
    /// 401 for a missing or bad bearer token (RFC 6750 §3.1).
    pub fn invalid_token() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_token",
            description: "the access token is invalid, expired or revoked".into(),
            www_authenticate: Some(HeaderValue::from_static("Bearer error=\"invalid_token\"")),
            dpop_nonce: None,
        }
    }
}

impl From<OAuthError> for AppError {
    fn from(e: OAuthError) -> Self {
        AppError::OAuth(Box::new(e))
    }
}

/// An error at the HTTP edge.
#[derive(Debug)]
pub enum AppError {
    /// A protocol error with its RFC 6749 code.
    /// Boxed: with its headers it is the largest variant, and every `Result` carries it.
    OAuth(Box<OAuthError>),
    /// An HTML error page for a browser (never a redirect: the redirect URI was not validated,
    /// or there is none).
    Page {
        status: StatusCode,
        title: Words,
        message: Words,
    },
    /// The request is malformed; the description is ours, never a library's.
    BadRequest {
        error: &'static str,
        description: Cow<'static, str>,
    },
    NotFound,
    /// The caller is known but their role does not allow this: 403 `forbidden`, with our words.
    Forbidden(Cow<'static, str>),
    PayloadTooLarge,
    UnsupportedMediaType,
    /// The request's headers are past the bounds of `extract::refuse_hostile_head`: 431.
    HeadersTooLarge,
    /// The request's URI is past that bound: 414.
    UriTooLong,
    /// A dependency (the database) is unreachable: 503 with `Retry-After`, logged like an
    /// internal error. An `Internal` error caused by an unreachable database becomes this one
    /// (see [`database_unreachable`]).
    Unavailable(anyhow::Error),
    /// Too many requests from this client: 429 with `Retry-After` in seconds (RFC 6585 §4).
    /// `page`: an HTML page (a browser form) rather than an RFC 6749 §5.2 JSON body.
    TooManyRequests {
        retry_after: u64,
        page: bool,
    },
    /// The server is at capacity for this kind of work: 503 with `Retry-After` (RFC 9110
    /// §10.2.3). Load, not a fault: logged as a refusal, not as an error.
    Busy {
        retry_after: u64,
        page: bool,
    },
    /// Anything unexpected: 500 `server_error`.
    Internal(anyhow::Error),
}

impl AppError {
    pub fn bad_request(description: impl Into<Cow<'static, str>>) -> Self {
        AppError::BadRequest { error: "invalid_request", description: description.into() }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::Internal(e.into())
    }
}

impl From<ServiceError> for AppError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(msg) => AppError::bad_request(msg),
            ServiceError::Conflict(msg) => AppError::BadRequest { error: "conflict", description: msg.into() },
            ServiceError::NotFound(_) => AppError::NotFound,
            ServiceError::Forbidden(msg) => AppError::Forbidden(msg.into()),
            ServiceError::Database(e) => AppError::Internal(e.into()),
            ServiceError::Internal(e) => AppError::Internal(e),
            // Only the hosted pages hash passwords: these answer a browser form.
            ServiceError::Busy { retry_after } => AppError::Busy { retry_after, page: true },
            ServiceError::TooManyAtOnce { retry_after } => AppError::TooManyRequests { retry_after, page: true },
            ServiceError::RateLimited { retry_after } => AppError::TooManyRequests { retry_after, page: false },
        }
    }
}

/// What [`finish_errors`] needs to log an error and write its body.
#[derive(Clone, Debug)]
struct ErrorReport {
    error: &'static str,
    description: Option<Cow<'static, str>>,
    /// Render an HTML page with this title and message instead of JSON.
    page: Option<(Words, Words)>,
    /// The underlying failure, for the log only.
    internal: Option<Arc<anyhow::Error>>,
}

/// The language of an error page, as a browser route found it (`session::language::
/// mark_errors`): the response extension `finish_errors` reads.
#[derive(Debug, Clone, Copy)]
pub struct ErrorPageLang(pub Lang);

/// Whether `res` is an error that [`finish_errors`] writes as an HTML page.
pub fn is_page(res: &Response) -> bool {
    res.extensions().get::<ErrorReport>().is_some_and(|r| r.page.is_some())
}

/// Seconds a client is asked to wait when the database is unreachable: long enough not to
/// hammer a database coming back, short enough for a restart.
pub const RETRY_AFTER_UNAVAILABLE: u64 = 5;

/// Whether an error was caused by the database being unreachable (`db::is_unavailable`
/// anywhere in its chain): a fault of the moment, not a bug (ARCHITECTURE.md, "Cross-cutting
/// concerns": Faults). Every `?` on a query error yields `Internal`; this is the one place
/// that tells the two apart.
fn database_unreachable(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| cause.downcast_ref::<sqlx::Error>().is_some_and(crate::db::is_unavailable))
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut www_authenticate = None;
        let mut dpop_nonce = None;
        let mut retry = None;
        let this = match self {
            AppError::Internal(e) if database_unreachable(&e) => AppError::Unavailable(e),
            other => other,
        };
        let (status, report) = match this {
            AppError::OAuth(e) => {
                let e = *e;
                www_authenticate = e.www_authenticate;
                dpop_nonce = e.dpop_nonce;
                (e.status, ErrorReport { error: e.error, description: Some(e.description), page: None, internal: None })
            }
            AppError::Page { status, title, message } => {
                (status, ErrorReport { error: "page", description: None, page: Some((title, message)), internal: None })
            }
            AppError::BadRequest { error, description } => (
                StatusCode::BAD_REQUEST,
                ErrorReport { error, description: Some(description), page: None, internal: None },
            ),
            AppError::NotFound => (StatusCode::NOT_FOUND, report_for(StatusCode::NOT_FOUND)),
            AppError::Forbidden(description) => (
                StatusCode::FORBIDDEN,
                ErrorReport { error: "forbidden", description: Some(description), page: None, internal: None },
            ),
            AppError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, report_for(StatusCode::PAYLOAD_TOO_LARGE)),
            AppError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, report_for(StatusCode::UNSUPPORTED_MEDIA_TYPE))
            }
            AppError::HeadersTooLarge => {
                (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, report_for(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE))
            }
            AppError::UriTooLong => (StatusCode::URI_TOO_LONG, report_for(StatusCode::URI_TOO_LONG)),
            AppError::Unavailable(e) => {
                retry = Some(RETRY_AFTER_UNAVAILABLE);
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorReport { internal: Some(Arc::new(e)), ..report_for(StatusCode::SERVICE_UNAVAILABLE) },
                )
            }
            AppError::Internal(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorReport { internal: Some(Arc::new(e)), ..report_for(StatusCode::INTERNAL_SERVER_ERROR) },
            ),
            AppError::TooManyRequests { retry_after, page } => {
                retry = Some(retry_after);
                // RFC 6749 defines no code for "too many requests"; `slow_down` (RFC 8628
                // §3.5, in the OAuth registry) says what the client should do.
                let report = ErrorReport {
                    error: "slow_down",
                    description: Some("too many requests; retry after the time in Retry-After".into()),
                    page: page.then_some((Words::Of(|t| t.error_too_many_title), Words::Of(|t| t.error_too_many_body))),
                    internal: None,
                };
                (StatusCode::TOO_MANY_REQUESTS, report)
            }
            AppError::Busy { retry_after, page } => {
                retry = Some(retry_after);
                let words = (Words::Of(|t| t.error_busy_title), Words::Of(|t| t.error_busy_body));
                let report = ErrorReport { page: page.then_some(words), ..report_for(StatusCode::SERVICE_UNAVAILABLE) };
                (StatusCode::SERVICE_UNAVAILABLE, report)
            }
        };
        let mut res = status.into_response();
        if let Some(value) = www_authenticate {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        if let Some(value) = dpop_nonce {
            res.headers_mut().insert("dpop-nonce", value);
        }
        if let Some(secs) = retry {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        res.extensions_mut().insert(report);
        res
    }
}

/// Our words for an error status that has no more specific report.
fn report_for(status: StatusCode) -> ErrorReport {
    let (error, description) = match status {
        StatusCode::NOT_FOUND => ("not_found", "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "this method is not allowed here"),
        StatusCode::PAYLOAD_TOO_LARGE => ("invalid_request", "the request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("invalid_request", "unsupported content type"),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ("invalid_request", "the request headers are too large"),
        StatusCode::URI_TOO_LONG => ("invalid_request", "the request URI is too long"),
        StatusCode::REQUEST_TIMEOUT => ("invalid_request", "the request took too long"),
        StatusCode::SERVICE_UNAVAILABLE => ("temporarily_unavailable", "the service is temporarily unavailable"),
        s if s.is_server_error() => ("server_error", "an internal error occurred"),
        _ => ("invalid_request", "the request was not understood"),
    };
    ErrorReport { error, description: Some(Cow::Borrowed(description)), page: None, internal: None }
}

/// The JSON error body (RFC 6749 §5.2 shape, plus the request id).
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_description: Option<&'a str>,
    request_id: &'a str,
}

/// Middleware: the single point where errors are logged and their bodies written.
///
/// Error responses that did not come from an [`AppError`] (axum's 405, the body-limit layer's
/// 413, the timeout layer's 408) are rewritten too, so every error a caller sees has our shape.
pub async fn finish_errors(req: Request, next: Next) -> Response {
    let request_id = req.headers().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let browser_lang =
        req.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).and_then(Lang::from_accept_language);
    let mut res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let report = match res.extensions_mut().remove::<ErrorReport>() {
        Some(report) => report,
        // A page that is already in its final shape (the login page after a failed attempt).
        None if res.extensions().get::<Shaped>().is_some() => return res,
        None => report_for(status),
    };
    if let Some(err) = &report.internal {
        sentry::configure_scope(|scope| scope.set_tag("request_id", &request_id));
        let source: &(dyn std::error::Error + 'static) = (**err).as_ref();
        tracing::error!(
            request_id = %request_id, %method, path = %path, status = status.as_u16(),
            error = source, detail = %format!("{err:#}"), "request failed"
        );
    } else {
        tracing::info!(request_id = %request_id, %method, path = %path, status = status.as_u16(), error = report.error, "request refused");
    }
    let description = report.description.as_deref().map(error_description_charset);
    let mut out = match &report.page {
        Some((title, message)) => {
            // The page's language: the session's, when a browser route said it
            // (`session::language::mark_errors`), else the browser's, else English.
            let lang = res.extensions().get::<ErrorPageLang>().map(|l| l.0).or(browser_lang).unwrap_or_default();
            let (title, message) = (title.in_lang(lang), message.in_lang(lang));
            crate::html::error_page(status, lang, &title, &message, &request_id)
        }
        None => {
            let body =
                ErrorBody { error: report.error, error_description: description.as_deref(), request_id: &request_id };
            (status, Json(body)).into_response()
        }
    };
    // Keep headers such as WWW-Authenticate or Allow; replace the body's own.
    let headers = std::mem::take(res.headers_mut());
    for (name, value) in headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    out
}

/// Middleware of the browser routes, outside their session layer: when the database is
/// unreachable a browser gets a 503 page with `Retry-After`, not a JSON body, and not the bare
/// 500 tower-sessions answers when it cannot save a session (ARCHITECTURE.md, "Cross-cutting
/// concerns": Faults).
pub async fn browser_outage(req: Request, next: Next) -> Response {
    let (mut res, store_unreachable) = crate::db::browser_sessions::watch(next.run(req)).await;
    if store_unreachable && res.status() == StatusCode::INTERNAL_SERVER_ERROR {
        res = AppError::Unavailable(anyhow::anyhow!("the session store could not reach the database")).into_response();
    }
    if res.status() == StatusCode::SERVICE_UNAVAILABLE
        && let Some(report) = res.extensions_mut().get_mut::<ErrorReport>()
        && report.page.is_none()
    {
        report.page = Some((Words::Of(|t| t.error_unavailable_title), Words::Of(|t| t.error_unavailable_body)));
    }
    res
}

/// Marks a response whose error status and body are already final (a rendered page).
#[derive(Clone, Copy, Debug)]
pub struct Shaped;

/// Keeps `error_description` inside the characters RFC 6749 §5.2 allows
/// (%x20-21 / %x23-5B / %x5D-7E): no quotes, backslashes or non-ASCII.
pub fn error_description_charset(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Descriptions are cut down to the RFC 6749 character set.
    #[test]
    fn description_charset() {
        let out = error_description_charset("bad \"uri\" \\ é\n");
        assert_eq!(out, "bad 'uri' / ??");
        assert!(out.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'));
    }
}
