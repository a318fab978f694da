//! Which language a browser's pages are shown in (ARCHITECTURE.md, "Languages"): the
//! authorization request's `ui_locales` while that request is in progress, else the
//! signed-in user's `locale`, else the browser's `Accept-Language`, else English.
//!
//! The session keeps the first two apart: the request's choice lives until the request is
//! answered (or a new request without one arrives), and never replaces the user's own, which
//! the password step and every profile change set.

use axum::extract::FromRequestParts;
use axum::http::header::ACCEPT_LANGUAGE;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::internal;
use crate::error::AppError;
use crate::html::text::{Lang, Text};

const LANGUAGES: &str = "languages";

/// The languages kept in the session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Kept {
    /// `ui_locales` of the authorization request in progress.
    #[serde(default)]
    request: Option<Lang>,
    /// The `locale` of the signed-in user's profile.
    #[serde(default)]
    account: Option<Lang>,
}

impl Kept {
    fn chosen(self) -> Option<Lang> {
        self.request.or(self.account)
    }
}

/// The `ui_locales` of a new authorization request: its first language we have, or none
/// (forgetting an earlier request's).
pub async fn from_authorization_request(session: &Session, ui_locales: Option<&str>) -> Result<(), AppError> {
    let kept = kept(session).await?;
    keep(session, Kept { request: ui_locales.and_then(Lang::from_ui_locales), ..kept }).await
}

/// The authorization request was answered: its language ends with it.
pub async fn request_answered(session: &Session) -> Result<(), AppError> {
    let kept = kept(session).await?;
    if kept.request.is_some() { keep(session, Kept { request: None, ..kept }).await } else { Ok(()) }
}

/// The `locale` of the user signing in, or the one they just saved on the account page
/// (`changed`: their own choice, which also ends a request's for the pages that follow).
pub async fn from_account(session: &Session, locale: Option<&str>, changed: bool) -> Result<(), AppError> {
    let kept = kept(session).await?;
    let request = if changed { None } else { kept.request };
    keep(session, Kept { request, account: locale.and_then(Lang::from_tag) }).await
}

/// The language kept in the session, if one was chosen.
pub async fn current(session: &Session) -> Result<Option<Lang>, AppError> {
    Ok(kept(session).await?.chosen())
}

/// What the session keeps. A store that cannot be reached is an error (the page would fail a
/// moment later anyway, and must fail once, fast); a value this version cannot read is none.
async fn kept(session: &Session) -> Result<Kept, AppError> {
    let value = session.get_value(LANGUAGES).await.map_err(internal)?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default())
}

async fn keep(session: &Session, kept: Kept) -> Result<(), AppError> {
    if kept == Kept::default() {
        return session.remove_value(LANGUAGES).await.map_err(internal).map(drop);
    }
    session.insert(LANGUAGES, kept).await.map_err(internal)
}

/// The language of this request's page, as an extractor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PageLang(pub Lang);

impl PageLang {
    /// Its words.
    pub fn text(self) -> &'static Text {
        self.0.text()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PageLang {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Ok(session) = Session::from_request_parts(parts, state).await
            && let Some(lang) = current(&session).await?
        {
            return Ok(Self(lang));
        }
        let browser =
            parts.headers.get(ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).and_then(Lang::from_accept_language);
        Ok(Self(browser.unwrap_or_default()))
    }
}

/// Middleware of the browser routes, inside their session layer: an error answer carries the
/// page's language (the session's, else `Accept-Language`) in its extensions, for the error
/// page `error::finish_errors` writes after it. A server error, or a session store that
/// cannot be read, leaves the choice to the browser's header there.
pub async fn mark_errors(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let session = req.extensions().get::<Session>().cloned();
    let mut res = next.run(req).await;
    // Only for an error page (a JSON error has no language). A 5xx may be the session store
    // itself being unreachable: asking it again would only make the answer slow, so those
    // pages take the browser's language.
    if res.status().is_client_error() && crate::error::is_page(&res) {
        let kept = match &session {
            Some(session) => current(session).await.ok().flatten(),
            None => None,
        };
        if let Some(lang) = kept {
            res.extensions_mut().insert(crate::error::ErrorPageLang(lang));
        }
    }
    res
}
