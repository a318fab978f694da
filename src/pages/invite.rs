//! `/invite?token=…`: the page of a mailed invitation (`tenancy::invitations` has the rules).
//! It shows the organisation and the role; accepting is a POST, with a new password when the
//! address has no account yet. Whoever was signed in in this browser stays signed in: the
//! invitation is for an address, not for this session.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tower_sessions::Session;

use crate::error::AppError;
use crate::extract::Query;
use crate::html::text::{Lang, Text};
use crate::identity::password;
use crate::pages::mfa::NoticePage;
use crate::protocol::meta::RequestMeta;
use crate::render::render;
use crate::secrets::{ExposeSecret, SecretString, exposed};
use crate::session::{self, PageLang, SessionForm};
use crate::state::AppState;
use crate::tenancy::invitations::{self, NotAccepted, Pending};

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage<'a> {
    t: &'static Text,
    lang: Lang,
    csrf: &'a str,
    token: &'a str,
    invitation: &'a Pending,
    problem: Option<&'a str>,
}

#[derive(Debug, Deserialize)]
pub struct InviteQuery {
    token: Option<SecretString>,
}

fn invalid(t: &'static Text) -> Response {
    let page = NoticePage { t, title: t.invite_title, body: t.invite_invalid, code: None, next: None };
    render(StatusCode::GONE, &page, &[])
}

async fn form(
    session: &Session,
    lang: Lang,
    token: &str,
    invitation: &Pending,
    problem: Option<&str>,
) -> Result<Response, AppError> {
    let csrf = session::csrf_token(session).await?;
    let page = InvitePage { t: lang.text(), lang, csrf: &csrf, token, invitation, problem };
    Ok(render(StatusCode::OK, &page, &[]))
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
        Some(invitation) => form(&session, lang, token, &invitation, None).await,
        None => Ok(invalid(lang.text())),
    }
}

#[derive(Debug, Deserialize)]
pub struct AcceptForm {
    csrf: String,
    token: SecretString,
    /// Only when the address has no account yet.
    password: Option<SecretString>,
}

crate::session::csrf_field!(AcceptForm);

/// `POST /invite`: accepts. A password the rules refuse is asked again before anything is
/// spent.
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
    let hash = match (invitation.has_account, chosen) {
        (true, _) => None,
        (false, None) => return form(&session, lang, token, &invitation, Some(t.invite_new_account)).await,
        (false, Some(new)) => {
            if let Err(e) = password::check_rules(new) {
                return form(&session, lang, token, &invitation, Some(&e.to_string())).await;
            }
            Some(state.passwords.hash(new).await?)
        }
    };
    let origin = meta.actor("user", None);
    let accepted = match invitations::accept(&state.db, token, hash.as_deref(), &origin).await? {
        Ok(accepted) => accepted,
        // Spent, withdrawn or expired since the check above (or the address's account went
        // away in between, `NeedsPassword`): the link shows what it is now.
        Err(NotAccepted::Unusable | NotAccepted::NeedsPassword) => return Ok(invalid(t)),
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
