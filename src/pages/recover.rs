//! The recovery page: a one-time link from an administrator lets the user set a new password;
//! their second factor is removed, to be enrolled again at the next sign-in.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tower_sessions::Session;

use crate::error::AppError;
use crate::extract::Query;
use crate::html::text::Text;
use crate::identity::recovery;
use crate::pages::mfa::NoticePage;
use crate::protocol::meta::RequestMeta;
use crate::render::render;
use crate::secrets::{ExposeSecret, SecretString, exposed};
use crate::session::{self, PageLang, SessionForm};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "recover.html")]
struct RecoverPage<'a> {
    t: &'static Text,
    csrf: &'a str,
    token: &'a str,
    problem: Option<&'a str>,
}

#[derive(Debug, Deserialize)]
pub struct RecoverQuery {
    token: Option<SecretString>,
}

fn invalid(t: &'static Text) -> Response {
    let page = NoticePage { t, title: t.recover_title, body: t.recover_invalid, code: None, next: None };
    render(StatusCode::GONE, &page, &[])
}

/// `GET /recover?token=…`: the new-password form, if the link is usable.
pub async fn show(
    State(state): State<AppState>,
    session: Session,
    lang: PageLang,
    Query(q): Query<RecoverQuery>,
) -> Result<Response, AppError> {
    let t = lang.text();
    let token = exposed(&q.token).unwrap_or_default();
    if token.len() > 128 || !recovery::link_usable(&state.db, token).await? {
        return Ok(invalid(t));
    }
    let csrf = session::csrf_token(&session).await?;
    Ok(render(StatusCode::OK, &RecoverPage { t, csrf: &csrf, token, problem: None }, &[]))
}

#[derive(Debug, Deserialize)]
pub struct RecoverForm {
    csrf: String,
    token: SecretString,
    password: SecretString,
}

crate::session::csrf_field!(RecoverForm);

/// `POST /recover`: the password is checked against the rules before the link is used, so a
/// rejected password does not spend it.
pub async fn submit(
    State(state): State<AppState>,
    session: Session,
    lang: PageLang,
    meta: RequestMeta,
    SessionForm(form): SessionForm<RecoverForm>,
) -> Result<Response, AppError> {
    let t = lang.text();
    let (token, password) = (form.token.expose_secret(), form.password.expose_secret());
    if token.len() > 128 || !recovery::link_usable(&state.db, token).await? {
        return Ok(invalid(t));
    }
    if let Some(problem) = crate::pages::password_refused(t, password) {
        let csrf = session::csrf_token(&session).await?;
        let page = RecoverPage { t, csrf: &csrf, token, problem: Some(&problem) };
        return Ok(render(StatusCode::OK, &page, &[]));
    }
    let hash = state.passwords.hash(password).await?;
    if recovery::use_link(&state.db, token, &hash, &meta.actor("user", None)).await?.is_none() {
        return Ok(invalid(t));
    }
    // Whoever was signed in in this browser is not any more.
    session::sign_out(&session).await?;
    let page = NoticePage { t, title: t.recover_title, body: t.recover_done, code: None, next: Some("/login") };
    Ok(render(StatusCode::OK, &page, &[]))
}

#[cfg(test)]
mod redaction {
    /// A logged `RecoverForm` shows no secret it carries.
    #[test]
    fn debug_shows_no_secret() {
        crate::secrets::assert_debug_redacts::<super::RecoverForm>(
            "csrf=x&token=l1nk-s3cret&password=new-pa55word",
            &["l1nk-s3cret", "new-pa55word"],
        );
    }
}
