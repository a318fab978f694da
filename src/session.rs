//! What the browser session holds: the signed-in user, the CSRF token of its forms, the
//! authorization requests in progress, and the language of its pages ([`language`]).

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tower_sessions::Session;
use uuid::Uuid;

use crate::error::AppError;
use crate::extract::Form;
use crate::html::text::Words;
use crate::render::page_error;

pub mod language;

pub use language::PageLang;

/// `acr` of a password login and of a login with a second factor.
pub const ACR_PASSWORD: &str = "urn:laventecare:acr:pwd";
pub const ACR_MFA: &str = "urn:laventecare:acr:mfa";

const AUTH: &str = crate::db::browser_sessions::SIGNED_IN_KEY;
const CSRF: &str = "csrf";
const PENDING: &str = "pending";
const PRE_AUTH: &str = crate::db::browser_sessions::PRE_AUTH_KEY;
const RETURN_TO: &str = "return_to";
const ENROLMENT: &str = "enrolment";
const PASSKEY_REGISTRATION: &str = "passkey_registration";
const PASSKEY_SIGN_IN: &str = "passkey_sign_in";
/// How long a passkey ceremony may wait for the authenticator's answer.
const PASSKEY_SECONDS: i64 = 300;
/// Authorization requests kept per session; the oldest goes first.
const MAX_PENDING: usize = 8;

/// The signed-in user of a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedIn {
    pub user_id: Uuid,
    /// The user's security stamp when they signed in; the session store refuses the session
    /// once the user's stamp has changed (ARCHITECTURE.md, "Security stamp").
    pub stamp: Uuid,
    /// Unix seconds of the last interactive authentication (OIDC `auth_time`).
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub acr: String,
    /// Session id for relying parties (OIDC `sid`); random, not the cookie's id.
    pub sid: String,
    /// Where the sign-in came from, for the account page's list of sessions.
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
}

impl SignedIn {
    /// Whether this sign-in passed a second factor.
    pub fn has_mfa(&self) -> bool {
        self.acr == ACR_MFA
    }
}

/// A sign-in halfway: the password was right, the second factor (or its enrolment) is next.
/// Nothing is issued and no page but the second-factor pages accepts it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreAuth {
    pub user_id: Uuid,
    /// The user's security stamp at the password check (see [`SignedIn::stamp`]).
    pub stamp: Uuid,
    /// The email as typed: the brute-force counter of this sign-in.
    pub email: String,
    /// Unix seconds of the password check; a half sign-in lasts 10 minutes.
    pub at: i64,
}

/// How long the second step may take after the password.
const PRE_AUTH_SECONDS: i64 = 600;

pub async fn pre_auth(session: &Session) -> Result<Option<PreAuth>, AppError> {
    let p: Option<PreAuth> = session.get(PRE_AUTH).await.map_err(internal)?;
    Ok(p.filter(|p| chrono::Utc::now().timestamp() - p.at < PRE_AUTH_SECONDS))
}

/// Records a half sign-in, under a new session id (no fixation of a session that is about to
/// matter). Whoever was signed in on this browser is signed out first: a session never holds
/// one person's sign-in and another's half sign-in, so ending the second person's sessions
/// cannot leave the first person holding a step of theirs.
pub async fn set_pre_auth(session: &Session, p: &PreAuth) -> Result<(), AppError> {
    session.cycle_id().await.map_err(internal)?;
    session.remove_value(AUTH).await.map_err(internal)?;
    session.remove::<String>(CSRF).await.map_err(internal)?;
    session.remove::<String>(ENROLMENT).await.map_err(internal)?;
    session.insert(PRE_AUTH, p).await.map_err(internal)
}

/// Marks the TOTP secret this session is enrolling (the SHA-256 of its sealed form): only the
/// session that was shown a secret may activate it.
pub async fn set_enrolment(session: &Session, marker: &str) -> Result<(), AppError> {
    session.insert(ENROLMENT, marker).await.map_err(internal)
}

pub async fn enrolment(session: &Session) -> Result<Option<String>, AppError> {
    session.get(ENROLMENT).await.map_err(internal)
}

pub async fn clear_pre_auth(session: &Session) -> Result<(), AppError> {
    session.remove::<PreAuth>(PRE_AUTH).await.map_err(internal).map(|_| ())
}

/// A passkey ceremony waiting for the browser's answer: the state `identity::passkeys` keeps,
/// and when it began.
#[derive(Serialize, Deserialize)]
struct Ceremony<T> {
    at: i64,
    state: T,
}

async fn keep_ceremony<T: Serialize + Send + Sync>(session: &Session, key: &str, state: T) -> Result<(), AppError> {
    let ceremony = Ceremony { at: chrono::Utc::now().timestamp(), state };
    session.insert(key, ceremony).await.map_err(internal)
}

/// Takes a ceremony out of the session (each answers once), if it is recent enough.
async fn take_ceremony<T: serde::de::DeserializeOwned>(session: &Session, key: &str) -> Result<Option<T>, AppError> {
    let ceremony: Option<Ceremony<T>> = session.remove(key).await.map_err(internal)?;
    Ok(ceremony.filter(|c| chrono::Utc::now().timestamp() - c.at < PASSKEY_SECONDS).map(|c| c.state))
}

/// Keeps a passkey registration for its answer (one at a time; a new one replaces it).
pub async fn set_passkey_registration(
    session: &Session,
    registration: &crate::identity::passkeys::Registration,
) -> Result<(), AppError> {
    keep_ceremony(session, PASSKEY_REGISTRATION, registration).await
}

pub async fn take_passkey_registration(
    session: &Session,
) -> Result<Option<crate::identity::passkeys::Registration>, AppError> {
    take_ceremony(session, PASSKEY_REGISTRATION).await
}

/// Keeps a passkey sign-in for its answer (one at a time; a new one replaces it).
pub async fn set_passkey_sign_in(
    session: &Session,
    ceremony: &crate::identity::passkeys::Ceremony,
) -> Result<(), AppError> {
    keep_ceremony(session, PASSKEY_SIGN_IN, ceremony).await
}

pub async fn take_passkey_sign_in(session: &Session) -> Result<Option<crate::identity::passkeys::Ceremony>, AppError> {
    take_ceremony(session, PASSKEY_SIGN_IN).await
}

/// A local page to return to after signing in (account, admin, the device page with its
/// query). [`take_return_to`] gives back only local paths.
pub async fn set_return_to(session: &Session, path: impl Into<String>) -> Result<(), AppError> {
    session.insert(RETURN_TO, path.into()).await.map_err(internal)
}

pub async fn take_return_to(session: &Session) -> Result<Option<String>, AppError> {
    let path: Option<String> = session.remove(RETURN_TO).await.map_err(internal)?;
    // Only our own paths: never `//host` or a URL.
    Ok(path.filter(|p| p.starts_with('/') && !p.starts_with("//")))
}

/// The hash under which the store keeps this session (see `db::browser_sessions`), to tell the
/// current session from the others.
pub fn current_handle(session: &Session) -> Option<[u8; 32]> {
    session.id().map(|id| crate::db::browser_sessions::id_hash(&id))
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
    session.remove::<PreAuth>(PRE_AUTH).await.map_err(internal)?;
    session.insert(AUTH, who).await.map_err(internal)
}

/// Starts a password step: whoever this browser held, signed in or halfway, is signed out
/// first, whatever the password turns out to be. The authorization requests in progress stay.
pub async fn begin_password_step(session: &Session) -> Result<(), AppError> {
    for key in [AUTH, PRE_AUTH, ENROLMENT] {
        session.remove_value(key).await.map_err(internal)?;
    }
    Ok(())
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
            Words::Of(|t| t.error_form_expired_title),
            Words::Of(|t| t.error_form_expired_body),
        )),
    }
}

/// A form that carries the CSRF token of the page it was posted from.
pub trait WithCsrf {
    fn csrf(&self) -> &str;
}

/// Implements [`WithCsrf`] for form types whose token is their `csrf` field.
macro_rules! csrf_field {
    ($($form:ty),+ $(,)?) => {
        $(impl $crate::session::WithCsrf for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        })+
    };
}
pub(crate) use csrf_field;

/// A form posted from a page of this browser session: decoded strictly (as
/// [`crate::extract::Form`]), then refused with a 403 page unless its CSRF token is the
/// session's, before the handler runs (double-submit via the session, [`check_csrf`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionForm<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for SessionForm<T>
where
    T: serde::de::DeserializeOwned + WithCsrf + Send,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let (session, req) = session_of(req, state).await?;
        let Form(form) = Form::<T>::from_request(req, state).await?;
        check_csrf(&session, form.csrf()).await?;
        Ok(Self(form))
    }
}

/// The request's session (from the session layer), and the request to read the body from.
async fn session_of<S: Send + Sync>(
    req: axum::extract::Request,
    state: &S,
) -> Result<(Session, axum::extract::Request), AppError> {
    use axum::extract::FromRequestParts as _;
    let (mut parts, body) = req.into_parts();
    let session = Session::from_request_parts(&mut parts, state)
        .await
        .map_err(|(_, why)| AppError::Internal(anyhow::anyhow!("no session layer: {why}")))?;
    Ok((session, axum::extract::Request::from_parts(parts, body)))
}

/// A JSON body posted by a page of this browser session (the passkey ceremonies' scripts):
/// decoded strictly (as [`crate::extract::Json`]), then refused with a 403 unless its `csrf`
/// is the session's, before the handler runs (as [`SessionForm`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for SessionJson<T>
where
    T: serde::de::DeserializeOwned + WithCsrf + Send,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let (session, req) = session_of(req, state).await?;
        let crate::extract::Json(body) = crate::extract::Json::<T>::from_request(req, state).await?;
        check_csrf(&session, body.csrf()).await?;
        Ok(Self(body))
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
    /// A second factor is demanded for this request: by `acr_values` naming only the MFA
    /// value, an essential `acr` claim allowing only it (`protocol::authorize::claims` has
    /// the rule), or a step-up. A mere preference for MFA does not set it.
    #[serde(default)]
    pub mfa_required: bool,
    /// The `acr` values an essential `acr` claim allows (OIDC Core §5.5.1.1): the sign-in's
    /// `acr` must be one of them, or the request fails. `None`: any.
    #[serde(default)]
    pub acr_essential: Option<Vec<String>>,
    /// The `claims` parameter (OIDC Core §5.5) as parsed by
    /// `protocol::authorize::claims::ClaimsRequest` (`to_stored`/`from_stored`), kept as JSON
    /// because this layer sits below the protocol (ARCHITECTURE.md, "Code map").
    #[serde(default)]
    pub claims: Option<serde_json::Value>,
    /// The `resource` parameters (RFC 8707) of the request, each an API of the client's tenant
    /// that allows the client (`clients::resources::resolve`).
    #[serde(default)]
    pub resources: Vec<String>,
    /// The DPoP key the code is to be bound to (RFC 9449 §10).
    #[serde(default)]
    pub dpop_jkt: Option<String>,
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
    session.insert(PENDING, all).await.map_err(internal)?;
    language::request_answered(session).await
}
