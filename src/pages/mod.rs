//! The hosted pages: askama templates rendered on the server, CSS in `static/`, no JavaScript
//! needed. Every page gets a strict Content-Security-Policy (no inline script), and every form
//! a CSRF token bound to the browser session.

pub mod account;
pub mod admin;
pub mod consent;
pub mod device;
pub mod login;
pub mod mfa;
pub mod recover;
pub mod session;
pub mod tenant;
pub mod text;

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
pub use text::{EN, Text};

/// The CSP of a page. `form_targets` are the origins a form on it may end up at: a form
/// submission that is redirected onwards is checked against `form-action` too, so pages of an
/// authorization flow list the client's redirect origin.
pub fn csp(form_targets: &[String]) -> HeaderValue {
    let mut form_action = String::from("'self'");
    for t in form_targets {
        form_action.push(' ');
        form_action.push_str(t);
    }
    let value = format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; \
         form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    HeaderValue::from_str(&value)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"))
}

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
#[template(path = "error.html")]
struct ErrorPage<'a> {
    t: &'static Text,
    title: &'a str,
    message: &'a str,
    request_id: &'a str,
}

/// The HTML error page (written by `error::finish_errors`, the one log point).
pub fn error_page(status: StatusCode, title: &str, message: &str, request_id: &str) -> Response {
    let page = ErrorPage { t: &EN, title, message, request_id };
    match page.render() {
        Ok(html) => {
            let mut res = (status, axum::response::Html(html)).into_response();
            res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, csp(&[]));
            res
        }
        Err(_) => (status, "error").into_response(),
    }
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub t: &'static Text,
    pub title: &'a str,
    pub body: &'a str,
}

/// `GET /static/app.css` and `GET /static/form_post.js`: compiled in, cached for a day.
pub async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", include_str!("../../static/app.css"))
}

pub async fn form_post_script() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("../../static/form_post.js"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut res = body.into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    res
}

/// A page error: HTML, with our words.
pub fn page_error(
    status: StatusCode,
    title: &'static str,
    message: impl Into<std::borrow::Cow<'static, str>>,
) -> AppError {
    AppError::Page { status, title, message: message.into() }
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    t: &'static Text,
    csrf: &'a str,
}

/// `GET /`: signed in, a page with a sign-out button; otherwise the login page.
pub async fn home(session: tower_sessions::Session) -> Result<Response, AppError> {
    if session::signed_in(&session).await?.is_none() {
        return Ok(axum::response::Redirect::to("/login").into_response());
    }
    let csrf = session::csrf_token(&session).await?;
    Ok(render(StatusCode::OK, &HomePage { t: &EN, csrf: &csrf }, &[]))
}
