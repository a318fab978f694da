//! The second factor at sign-in (`/login/mfa`) and TOTP enrolment (`/mfa/enrol`), which is
//! also where a user whose account needs MFA lands before anything is issued to them.
//!
//! One file per page: [`step`] (the code at sign-in), [`enrol`] (TOTP enrolment) and
//! [`backup_codes`] (shown once); what they share is here.

pub mod backup_codes;
pub mod enrol;
pub mod step;

use askama::Template;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

use crate::db;
use crate::error::AppError;
use crate::html::text::Text;
use crate::protocol::authorize::reply::origin_of;
use crate::secrets::SecretString;
use crate::session::{self, Pending, PreAuth};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct ReqQuery {
    req: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CodeForm {
    csrf: String,
    #[serde(default)]
    req: String,
    code: SecretString,
}

crate::session::csrf_field!(CodeForm);

/// Who the second-factor pages act for: a sign-in halfway (password done), or a signed-in
/// user (stepping up for a request that needs MFA, or enrolling from the account page).
pub(crate) enum Actor {
    Half(PreAuth),
    Signed(session::SignedIn),
}

impl Actor {
    pub(crate) fn user_id(&self) -> Uuid {
        self.identity().0
    }

    /// The user and the security stamp the session holds for them.
    pub(crate) fn identity(&self) -> (Uuid, Uuid) {
        match self {
            Actor::Half(p) => (p.user_id, p.stamp),
            Actor::Signed(s) => (s.user_id, s.stamp),
        }
    }
}

pub(crate) async fn actor(session: &Session) -> Result<Option<Actor>, AppError> {
    if let Some(p) = session::pre_auth(session).await? {
        return Ok(Some(Actor::Half(p)));
    }
    Ok(session::signed_in(session).await?.map(Actor::Signed))
}

pub(crate) async fn pending_of(session: &Session, req: Option<&str>) -> Result<Option<Pending>, AppError> {
    match req.filter(|r| !r.is_empty()) {
        Some(id) => session::pending(session, id).await,
        None => Ok(None),
    }
}

fn form_targets(pending: Option<&Pending>) -> Vec<String> {
    pending.map(|p| vec![origin_of(&p.redirect_uri)]).unwrap_or_default()
}

pub(crate) fn to_login(req: Option<&str>) -> Response {
    Redirect::to(&format!("/login{}", req_query(req))).into_response()
}

/// `?req=…` for a redirect, the id percent-encoded: it came from the query, and a `Location`
/// is one encoded value (ARCHITECTURE.md, "Hostile input"). Empty without an id.
pub fn req_query(req: Option<&str>) -> String {
    match req.filter(|r| !r.is_empty()) {
        Some(r) => format!("?req={}", url::form_urlencoded::byte_serialize(r.as_bytes()).collect::<String>()),
        None => String::new(),
    }
}

/// The email a signed-in user's brute-force counter is keyed by.
async fn email_of(state: &AppState, user_id: Uuid) -> Result<String, AppError> {
    let mut tx = state.db.user(user_id).await?;
    let email = db::mfa::state(&mut tx, user_id).await?.map(|s| s.email).unwrap_or_default();
    tx.commit().await?;
    Ok(email)
}

#[derive(Template)]
#[template(path = "notice.html")]
pub struct NoticePage<'a> {
    pub t: &'static Text,
    pub title: &'a str,
    pub body: &'a str,
    pub code: Option<&'a str>,
    pub next: Option<&'a str>,
}

#[cfg(test)]
mod redaction {
    /// A logged `CodeForm` shows no secret it carries.
    #[test]
    fn debug_shows_no_secret() {
        crate::secrets::assert_debug_redacts::<super::CodeForm>("csrf=x&req=r&code=123456", &["123456"]);
    }
}
