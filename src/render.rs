//! A page becomes a response one way: rendered with its CSP and `no-store`, or an
//! `AppError::Page` with our words. Shared by the protocol endpoints that answer with HTML
//! (form post, logout) and the hosted pages (ARCHITECTURE.md, "Code map").

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use crate::html::csp;
use crate::html::text::{Text, Words};

/// Renders a template as an HTML response with its CSP and `no-store`.
pub fn render(status: StatusCode, page: &impl Template, form_targets: &[String]) -> Response {
    match page.render() {
        Ok(html) => {
            let mut res = (status, axum::response::Html(html)).into_response();
            let headers = res.headers_mut();
            headers.insert(header::CONTENT_SECURITY_POLICY, csp(form_targets));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            res.extensions_mut().insert(crate::error::Shaped);
            res
        }
        Err(e) => AppError::Internal(e.into()).into_response(),
    }
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub t: &'static Text,
    pub title: &'a str,
    pub body: &'a str,
}

/// A page error: HTML, with our words.
pub fn page_error(status: StatusCode, title: impl Into<Words>, message: impl Into<Words>) -> AppError {
    AppError::Page { status, title: title.into(), message: message.into() }
}
