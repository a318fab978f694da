//! The hosted pages: askama templates rendered on the server, CSS in `static/`, no JavaScript
//! needed. Every page gets a strict Content-Security-Policy (no inline script), and every form
//! a CSRF token bound to the browser session.

pub mod account;
pub mod admin;
pub mod consent;
pub mod device;
pub mod invite;
pub mod login;
pub mod mfa;
pub mod passkeys;
pub mod recover;
pub mod reset;
pub mod tenant;
pub mod verify;

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use crate::html::text::Text;
use crate::render::render;
use crate::session;

/// `GET /static/app.css` and the scripts: compiled in, cached for a day.
pub async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", include_str!("../../static/app.css"))
}

pub async fn form_post_script() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("../../static/form_post.js"))
}

/// `GET /static/passkey.js`: the passkey ceremonies' script (`pages::passkeys`).
pub async fn passkey_script() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("../../static/passkey.js"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut res = body.into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    res
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    t: &'static Text,
    csrf: &'a str,
}

/// `GET /`: signed in, a page with a sign-out button; otherwise the login page.
pub async fn home(session: tower_sessions::Session, lang: session::PageLang) -> Result<Response, AppError> {
    if session::signed_in(&session).await?.is_none() {
        return Ok(axum::response::Redirect::to("/login").into_response());
    }
    let csrf = session::csrf_token(&session).await?;
    Ok(render(StatusCode::OK, &HomePage { t: lang.text(), csrf: &csrf }, &[]))
}

/// What the password rules find wrong with `password`, in the page's words; `None` when it
/// passes (`identity::password::problem`).
pub fn password_refused(t: &'static Text, password: &str) -> Option<String> {
    use crate::identity::password::{self, MAX_BYTES, MIN_CHARS, Problem};
    password::problem(password).map(|p| match p {
        Problem::TooShort => t.password_too_short.replace("{n}", &MIN_CHARS.to_string()),
        Problem::TooLong => t.password_too_long.replace("{n}", &MAX_BYTES.to_string()),
        Problem::TooCommon => t.password_too_common.to_owned(),
    })
}
