//! Email verification (`identity::verification` has the rules): the account page's button
//! mails a link; `/verify-email?token=…` shows a confirm button, and its POST verifies. The
//! GET changes nothing, so a mail scanner that fetches the link spends nothing.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tower_sessions::Session;

use crate::error::AppError;
use crate::extract::Query;
use crate::html::text::Text;
use crate::identity::verification::{self, NotIssued};
use crate::pages::account::{AccountUser, notice_page};
use crate::pages::mfa::NoticePage;
use crate::protocol::meta::RequestMeta;
use crate::render::render;
use crate::secrets::{ExposeSecret, SecretString, exposed};
use crate::session::{self, PageLang, SessionForm};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "verify.html")]
struct VerifyPage<'a> {
    t: &'static Text,
    csrf: &'a str,
    token: &'a str,
}

#[derive(Debug, Deserialize)]
pub struct VerifyQuery {
    token: Option<SecretString>,
}

fn invalid(t: &'static Text) -> Response {
    let page = NoticePage { t, title: t.verify_title, body: t.verify_invalid, code: None, next: Some("/account") };
    render(StatusCode::GONE, &page, &[])
}

/// `GET /verify-email?token=…`: the confirm button, if the link is usable.
pub async fn show(
    State(state): State<AppState>,
    session: Session,
    PageLang(lang): PageLang,
    Query(q): Query<VerifyQuery>,
) -> Result<Response, AppError> {
    let t = lang.text();
    let token = exposed(&q.token).unwrap_or_default();
    if !verification::link_usable(&state.db, token).await? {
        return Ok(invalid(t));
    }
    let csrf = session::csrf_token(&session).await?;
    Ok(render(StatusCode::OK, &VerifyPage { t, csrf: &csrf, token }, &[]))
}

#[derive(Debug, Deserialize)]
pub struct VerifyForm {
    csrf: String,
    token: SecretString,
}

crate::session::csrf_field!(VerifyForm);

/// `POST /verify-email`: spends the link and verifies the address.
pub async fn confirm(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    meta: RequestMeta,
    SessionForm(f): SessionForm<VerifyForm>,
) -> Result<Response, AppError> {
    let t = lang.text();
    if verification::confirm(&state.db, f.token.expose_secret(), &meta.actor("user", None)).await?.is_none() {
        return Ok(invalid(t));
    }
    let page = NoticePage { t, title: t.verify_title, body: t.verify_done, code: None, next: Some("/account") };
    Ok(render(StatusCode::OK, &page, &[]))
}

#[derive(Debug, Deserialize)]
pub struct SendForm {
    csrf: String,
}

crate::session::csrf_field!(SendForm);

/// `POST /account/verify-email`: mails a link to the signed-in user's address, in the page's
/// language.
pub async fn send(
    State(state): State<AppState>,
    session: Session,
    PageLang(lang): PageLang,
    meta: RequestMeta,
    AccountUser(who): AccountUser,
    SessionForm(_): SessionForm<SendForm>,
) -> Result<Response, AppError> {
    let t = lang.text();
    let origin = meta.actor("user", Some(who.user_id.to_string()));
    let notice = match verification::issue(&state.db, &state.config, who.user_id, &origin).await? {
        Ok(issued) => {
            state.mailer.send_later(crate::notify::verification_mail(lang, &issued));
            t.account_verify_sent
        }
        Err(NotIssued::NothingToVerify) => t.account_profile_email_verified,
        Err(NotIssued::TooOften) => t.account_verify_too_often,
    };
    notice_page(&state, &session, lang, &who, notice).await
}

#[cfg(test)]
mod redaction {
    /// A logged `VerifyForm` shows no secret it carries.
    #[test]
    fn verify_form_debug_hides_secrets() {
        let form: super::VerifyForm = serde_urlencoded::from_str("csrf=c&token=tok-secret-1").unwrap();
        let shown = format!("{form:?}");
        assert!(!shown.contains("tok-secret-1"), "{shown}");
    }
}
