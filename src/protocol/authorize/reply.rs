//! How the authorization endpoint answers: an error page until the redirect URI is trusted
//! (RFC 6749 §4.1.2.1), then a redirect or a form post to it (RFC 9207 `iss`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use url::Url;

use crate::error::AppError;
use crate::html::text::Words;
use crate::render::{self, page_error};

/// The page for a request that is no longer waiting in the browser session.
pub fn expired_request() -> AppError {
    page_error(
        StatusCode::BAD_REQUEST,
        Words::Of(|t| t.error_sign_in_expired_title),
        Words::Of(|t| t.error_sign_in_expired_body),
    )
}

pub(super) fn bad_client(message: &'static str) -> AppError {
    page_error(StatusCode::BAD_REQUEST, Words::Of(|t| t.error_bad_client_title), message)
}

/// Where an error or a code goes once the redirect URI is trusted.
pub struct Reply<'a> {
    pub redirect_uri: &'a str,
    pub form_post: bool,
    pub state: Option<&'a str>,
    pub issuer: &'a str,
    /// The words of the form post page (its button, for a browser without JavaScript).
    pub t: &'static crate::html::text::Text,
}

impl Reply<'_> {
    /// An error response to the client (RFC 6749 §4.1.2.1).
    pub fn error(&self, error: &'static str, description: &str) -> Response {
        let description = crate::error::error_description_charset(description);
        self.send(vec![("error", error.to_owned()), ("error_description", description)])
    }

    /// The code (RFC 6749 §4.1.2), with `iss` (RFC 9207 §2).
    pub fn code(&self, code: &str) -> Response {
        self.send(vec![("code", code.to_owned())])
    }

    fn send(&self, mut fields: Vec<(&'static str, String)>) -> Response {
        if let Some(state) = self.state {
            fields.push(("state", state.to_owned()));
        }
        fields.push(("iss", self.issuer.to_owned()));
        if self.form_post {
            return form_post(self.t, self.redirect_uri, &fields);
        }
        // The redirect URI was matched exactly against a registered, parseable one.
        let Ok(mut url) = Url::parse(self.redirect_uri) else {
            return AppError::Internal(anyhow::anyhow!("registered redirect URI does not parse")).into_response();
        };
        {
            let mut query = url.query_pairs_mut();
            for (k, v) in &fields {
                query.append_pair(k, v);
            }
        }
        let mut res = Redirect::to(url.as_str()).into_response();
        res.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
        res
    }
}

#[derive(askama::Template)]
#[template(path = "form_post.html")]
struct FormPostPage<'a> {
    t: &'static crate::html::text::Text,
    action: &'a str,
    fields: &'a [(&'static str, String)],
}

/// OAuth 2.0 Form Post Response Mode: an auto-submitting form to the redirect URI.
fn form_post(t: &'static crate::html::text::Text, action: &str, fields: &[(&'static str, String)]) -> Response {
    let page = FormPostPage { t, action, fields };
    render::render(StatusCode::OK, &page, &[origin_of(action)])
}

/// The CSP source for a redirect URI: its origin, or `scheme:` for a private-use scheme.
pub fn origin_of(uri: &str) -> String {
    match Url::parse(uri) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => u.origin().ascii_serialization(),
        Ok(u) => format!("{}:", u.scheme()),
        Err(_) => "'none'".into(),
    }
}
