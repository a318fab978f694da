//! What every HTML page of the server shares and needs nothing else of the crate: the words
//! ([`text`]), the Content-Security-Policy, and the error page that `error::finish_errors`
//! writes. It is the bottom of the HTTP edge, so the error path renders a page without
//! knowing of the surfaces (ARCHITECTURE.md, "Code map").

pub mod text;

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use text::Text;

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
        "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; connect-src 'self'; \
         form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    HeaderValue::from_str(&value)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"))
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
pub fn error_page(status: StatusCode, lang: text::Lang, title: &str, message: &str, request_id: &str) -> Response {
    let page = ErrorPage { t: lang.text(), title, message, request_id };
    match page.render() {
        Ok(html) => {
            let mut res = (status, axum::response::Html(html)).into_response();
            res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, csp(&[]));
            res
        }
        Err(_) => (status, "error").into_response(),
    }
}
