//! `/invite?token=…`: the page of a mailed invitation (`tenancy::invitations` has the rules).
//! It shows the organisation and the role; accepting is a POST, with a new password when the
//! address has no account yet (or one without a password). An account with a password must be
//! signed in first: the page sends its owner to sign in and back (`/invite/continue`, the
//! token kept sealed in the session meanwhile, never in the clear in the session store).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use tower_sessions::Session;

use crate::error::AppError;
use crate::extract::Query;
use crate::html::text::{Lang, Text};
use crate::pages::mfa::NoticePage;
use crate::protocol::meta::RequestMeta;
use crate::render::render;
use crate::secrets::{ExposeSecret, SecretString, exposed};
use crate::session::{self, PageLang, SessionForm};
use crate::state::AppState;
use crate::tenancy::invitations::{self, Account, NotAccepted, Pending};
use crate::tokens::seal;

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage<'a> {
    t: &'static Text,
    lang: Lang,
    csrf: &'a str,
    token: &'a str,
    invitation: &'a Pending,
    /// The address's account has a password and this browser is not signed in as it.
    sign_in: bool,
    problem: Option<&'a str>,
}

/// The session key of the sealed token that `/invite/continue` brings back after sign-in.
const RETURN: &str = "invite_return";
/// The seal's purpose for it (`tokens::seal`).
const RETURN_PURPOSE: &str = "invite-return";

#[derive(Debug, Deserialize)]
pub struct InviteQuery {
    token: Option<SecretString>,
}

fn invalid(t: &'static Text) -> Response {
    let page = NoticePage { t, title: t.invite_title, body: t.invite_invalid, code: None, next: None };
    render(StatusCode::GONE, &page, &[])
}

/// The page of an open invitation. For an account that must sign in first, the token is kept
/// sealed for `/invite/continue`, and sign-in comes back there.
async fn form(
    state: &AppState,
    session: &Session,
    lang: Lang,
    token: &str,
    invitation: &Pending,
    problem: Option<&str>,
) -> Result<Response, AppError> {
    let sign_in = match invitation.account {
        Account::Existing(id) => session::signed_in(session).await?.is_none_or(|who| who.user_id != id),
        Account::New | Account::WithoutPassword => false,
    };
    if sign_in {
        let sealed =
            seal::seal(&state.master_key, RETURN_PURPOSE, RETURN, token.as_bytes()).map_err(AppError::Internal)?;
        session.insert(RETURN, STANDARD.encode(sealed)).await.map_err(|e| AppError::Internal(e.into()))?;
        session::set_return_to(session, "/invite/continue").await?;
    }
    let csrf = session::csrf_token(session).await?;
    let page = InvitePage { t: lang.text(), lang, csrf: &csrf, token, invitation, sign_in, problem };
    Ok(render(StatusCode::OK, &page, &[]))
}

/// `GET /invite/continue`: back from signing in, to the invitation this browser opened.
pub async fn resume(State(state): State<AppState>, session: Session, lang: PageLang) -> Result<Response, AppError> {
    let kept: Option<String> = session.remove(RETURN).await.map_err(|e| AppError::Internal(e.into()))?;
    let token = kept
        .and_then(|k| STANDARD.decode(k).ok())
        .and_then(|sealed| seal::open(&state.master_key, RETURN_PURPOSE, RETURN, &sealed).ok())
        .and_then(|plain| String::from_utf8(plain).ok());
    match token {
        Some(token) => Ok(Redirect::to(&format!("/invite?token={token}")).into_response()),
        None => Ok(invalid(lang.text())),
    }
}

/// `GET /invite?token=…`: what the invitation is, and the form to accept it.
pub async fn show(
    State(state): State<AppState>,
    session: Session,
    PageLang(lang): PageLang,
    Query(q): Query<InviteQuery>,
) -> Result<Response, AppError> {
    let token = exposed(&q.token).unwrap_or_default();
    match invitations::pending(&state.db, token).await? {
        Some(invitation) => form(&state, &session, lang, token, &invitation, None).await,
        None => Ok(invalid(lang.text())),
    }
}

#[derive(Debug, Deserialize)]
pub struct AcceptForm {
    csrf: String,
    token: SecretString,
    /// Only when the address has no account yet, or one without a password.
    password: Option<SecretString>,
}

crate::session::csrf_field!(AcceptForm);

/// `POST /invite`: accepts. A password the rules refuse is asked again before anything is
/// spent; an account with a password is linked only for its user signed in here.
pub async fn accept(
    State(state): State<AppState>,
    session: Session,
    PageLang(lang): PageLang,
    meta: RequestMeta,
    SessionForm(f): SessionForm<AcceptForm>,
) -> Result<Response, AppError> {
    let t = lang.text();
    let token = f.token.expose_secret();
    let Some(invitation) = invitations::pending(&state.db, token).await? else { return Ok(invalid(t)) };
    let chosen = exposed(&f.password).filter(|p| !p.is_empty());
    let hash = match (invitation.account.needs_password(), chosen) {
        (false, _) => None,
        (true, None) => return form(&state, &session, lang, token, &invitation, Some(t.invite_new_account)).await,
        (true, Some(new)) => {
            if let Some(problem) = crate::pages::password_refused(t, new) {
                return form(&state, &session, lang, token, &invitation, Some(&problem)).await;
            }
            Some(state.passwords.hash(new).await?)
        }
    };
    let origin = meta.actor("user", None);
    let signed_in = session::signed_in(&session).await?.map(|who| who.user_id);
    let accepted = match invitations::accept(&state.db, token, hash.as_deref(), signed_in, &origin).await? {
        Ok(accepted) => accepted,
        // Not signed in as the account (or the account changed since the page): the page as
        // it is now, which says what to do.
        Err(NotAccepted::SignInFirst | NotAccepted::NeedsPassword) => {
            return match invitations::pending(&state.db, token).await? {
                Some(now) => form(&state, &session, lang, token, &now, None).await,
                None => Ok(invalid(t)),
            };
        }
        // Spent, withdrawn or expired since the check above.
        Err(NotAccepted::Unusable) => return Ok(invalid(t)),
    };
    let body = if accepted.already_member { t.invite_already } else { t.invite_done };
    let page = NoticePage { t, title: t.invite_title, body, code: None, next: Some("/login") };
    Ok(render(StatusCode::OK, &page, &[]))
}

#[cfg(test)]
mod redaction {
    /// A logged `AcceptForm` shows no secret it carries.
    #[test]
    fn accept_form_debug_hides_secrets() {
        let form: super::AcceptForm =
            serde_urlencoded::from_str("csrf=c&token=tok-secret-1&password=pw-secret-2").unwrap();
        let shown = format!("{form:?}");
        assert!(!shown.contains("tok-secret-1") && !shown.contains("pw-secret-2"), "{shown}");
    }
}
