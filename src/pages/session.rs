//! What the browser session holds: the signed-in user, the CSRF token of its forms, and the
//! authorization requests in progress.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tower_sessions::Session;
use uuid::Uuid;

use crate::error::AppError;
use crate::pages::page_error;

const AUTH: &str = "auth";
const CSRF: &str = "csrf";
const PENDING: &str = "pending";
/// Authorization requests kept per session; the oldest goes first.
const MAX_PENDING: usize = 8;

/// The signed-in user of a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedIn {
    pub user_id: Uuid,
    /// Unix seconds of the last interactive authentication (OIDC `auth_time`).
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub acr: String,
    /// Session id for relying parties (OIDC `sid`); random, not the cookie's id.
    pub sid: String,
}

fn internal(e: tower_sessions::session::Error) -> AppError {
    AppError::Internal(e.into())
}

pub async fn signed_in(session: &Session) -> Result<Option<SignedIn>, AppError> {
    session.get(AUTH).await.map_err(internal)
}

/// Records a fresh sign-in. The session id changes first (no session fixation), and the
/// CSRF token with it.
pub async fn sign_in(session: &Session, who: &SignedIn) -> Result<(), AppError> {
    session.cycle_id().await.map_err(internal)?;
    session.remove::<String>(CSRF).await.map_err(internal)?;
    session.insert(AUTH, who).await.map_err(internal)
}

/// Ends the session entirely.
pub async fn sign_out(session: &Session) -> Result<(), AppError> {
    session.flush().await.map_err(internal)
}

/// The session's CSRF token, created on first use.
pub async fn csrf_token(session: &Session) -> Result<String, AppError> {
    if let Some(token) = session.get::<String>(CSRF).await.map_err(internal)? {
        return Ok(token);
    }
    let token = crate::secrets::Secret::generate().expose().to_owned();
    session.insert(CSRF, &token).await.map_err(internal)?;
    Ok(token)
}

/// Refuses a form whose CSRF token is not the session's (double-submit via the session).
pub async fn check_csrf(session: &Session, presented: &str) -> Result<(), AppError> {
    let expected = session.get::<String>(CSRF).await.map_err(internal)?;
    match expected {
        Some(e) if bool::from(e.as_bytes().ct_eq(presented.as_bytes())) => Ok(()),
        _ => Err(page_error(
            axum::http::StatusCode::FORBIDDEN,
            "This form has expired",
            "Go back, reload the page and try again.",
        )),
    }
}

/// An authorization request waiting for login, tenant choice or consent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub id: String,
    pub client_id: String,
    pub client_tenant: Uuid,
    pub redirect_uri: String,
    pub form_post: bool,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub scope: String,
    pub code_challenge: Option<String>,
    pub prompt_login: bool,
    pub prompt_consent: bool,
    pub prompt_select_account: bool,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// `sub` of a valid `id_token_hint`.
    pub hint_sub: Option<Uuid>,
    /// `tenant=<slug>` hint for multi-tenant clients.
    pub tenant_hint: Option<String>,
    /// Steps done for this request.
    pub logged_in: bool,
    pub tenant: Option<Uuid>,
    pub consented: bool,
}

pub async fn pending(session: &Session, id: &str) -> Result<Option<Pending>, AppError> {
    let all: Vec<Pending> = session.get(PENDING).await.map_err(internal)?.unwrap_or_default();
    Ok(all.into_iter().find(|p| p.id == id))
}

pub async fn save_pending(session: &Session, p: &Pending) -> Result<(), AppError> {
    let mut all: Vec<Pending> = session.get(PENDING).await.map_err(internal)?.unwrap_or_default();
    all.retain(|x| x.id != p.id);
    all.push(p.clone());
    if all.len() > MAX_PENDING {
        all.drain(..all.len() - MAX_PENDING);
    }
    session.insert(PENDING, all).await.map_err(internal)
}

pub async fn finish_pending(session: &Session, id: &str) -> Result<(), AppError> {
    let mut all: Vec<Pending> = session.get(PENDING).await.map_err(internal)?.unwrap_or_default();
    all.retain(|x| x.id != id);
    session.insert(PENDING, all).await.map_err(internal)
}
