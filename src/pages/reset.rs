//! "Forgot your password?": `/forgot` asks for a link by mail, `/reset?token=…` sets a new
//! password with it (`identity::reset` has the rules). The answer to an ask is the same page
//! whatever the address, given before any of the work is done.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tower_sessions::Session;

use crate::db;
use crate::error::AppError;
use crate::extract::Query;
use crate::html::text::{Lang, Text};
use crate::identity::{reset, throttle};
use crate::mail::Mail;
use crate::pages::mfa::NoticePage;
use crate::protocol::meta::RequestMeta;
use crate::render::render;
use crate::secrets::{ExposeSecret, SecretString, exposed};
use crate::session::{self, PageLang, SessionForm};
use crate::state::AppState;

/// Asks per client IP (an IPv6 /64) per hour, known addresses or not; more get a 429.
pub const ASKS_PER_IP_PER_HOUR: i32 = 20;

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage<'a> {
    t: &'static Text,
    csrf: &'a str,
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage<'a> {
    t: &'static Text,
    csrf: &'a str,
    token: &'a str,
    problem: Option<&'a str>,
}

/// `GET /forgot`.
pub async fn forgot_show(session: Session, lang: PageLang) -> Result<Response, AppError> {
    let csrf = session::csrf_token(&session).await?;
    Ok(render(StatusCode::OK, &ForgotPage { t: lang.text(), csrf: &csrf }, &[]))
}

#[derive(Debug, Deserialize)]
pub struct ForgotForm {
    csrf: String,
    email: String,
}

crate::session::csrf_field!(ForgotForm);

/// `POST /forgot`: the same page for every address, answered before the lookup; the link, if
/// any, is made and mailed after.
pub async fn forgot_submit(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    meta: RequestMeta,
    SessionForm(form): SessionForm<ForgotForm>,
) -> Result<Response, AppError> {
    if let Some(ip) = meta.ip {
        let key = crate::secrets::sha256(format!("forgot:{}", throttle::ip_key(ip)).as_bytes());
        let mut tx = state.db.unscoped().await?;
        let over = db::rate_limits::hit(&mut tx, &key, ASKS_PER_IP_PER_HOUR, 3600).await?;
        tx.commit().await?;
        if let Some(retry_after) = over {
            return Err(AppError::TooManyRequests { retry_after, page: true });
        }
    }
    let (db, mailer, config) = (state.db.clone(), state.mailer.clone(), state.config.clone());
    let origin = meta.actor("user", None);
    let email = form.email;
    tokio::spawn(async move {
        match reset::request(&db, &config, &email, &origin).await {
            Ok(Some(issued)) => {
                if let Err(e) = mailer.send(reset_mail(lang, &issued)).await {
                    let error = format!("{e:#}");
                    tracing::error!(user = %issued.user_id, error, "the password reset mail could not be sent");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = ?e, "a password reset request failed"),
        }
    });
    let t = lang.text();
    let page = NoticePage { t, title: t.forgot_sent_title, body: t.forgot_sent_body, code: None, next: None };
    Ok(render(StatusCode::OK, &page, &[]))
}

/// The mail with the link, in the language of the page it was asked on.
fn reset_mail(lang: Lang, issued: &reset::Issued) -> Mail {
    let t = lang.text();
    let subject = t.mail_reset_subject.to_owned();
    crate::notify::link_mail(
        lang,
        &issued.email,
        subject,
        t.mail_reset_body,
        &issued.link,
        issued.expires_at,
        t.mail_reset_not_you,
    )
}

#[derive(Debug, Deserialize)]
pub struct ResetQuery {
    token: Option<SecretString>,
}

fn invalid(t: &'static Text) -> Response {
    let page = NoticePage { t, title: t.reset_title, body: t.reset_invalid, code: None, next: Some("/forgot") };
    render(StatusCode::GONE, &page, &[])
}

/// `GET /reset?token=…`: the new-password form, if the link is usable.
pub async fn reset_show(
    State(state): State<AppState>,
    session: Session,
    lang: PageLang,
    Query(q): Query<ResetQuery>,
) -> Result<Response, AppError> {
    let t = lang.text();
    let token = exposed(&q.token).unwrap_or_default();
    if token.len() > 128 || !reset::link_usable(&state.db, token).await? {
        return Ok(invalid(t));
    }
    let csrf = session::csrf_token(&session).await?;
    Ok(render(StatusCode::OK, &ResetPage { t, csrf: &csrf, token, problem: None }, &[]))
}

#[derive(Debug, Deserialize)]
pub struct ResetForm {
    csrf: String,
    token: SecretString,
    password: SecretString,
}

crate::session::csrf_field!(ResetForm);

/// `POST /reset`: the password is checked against the rules before the link is spent, so a
/// refused password does not use it up. Whoever was signed in in this browser is signed out.
pub async fn reset_submit(
    State(state): State<AppState>,
    session: Session,
    PageLang(lang): PageLang,
    meta: RequestMeta,
    SessionForm(form): SessionForm<ResetForm>,
) -> Result<Response, AppError> {
    let t = lang.text();
    let (token, new) = (form.token.expose_secret(), form.password.expose_secret());
    if token.len() > 128 || !reset::link_usable(&state.db, token).await? {
        return Ok(invalid(t));
    }
    if let Some(problem) = crate::pages::password_refused(t, new) {
        let csrf = session::csrf_token(&session).await?;
        return Ok(render(StatusCode::OK, &ResetPage { t, csrf: &csrf, token, problem: Some(&problem) }, &[]));
    }
    let hash = state.passwords.hash(new).await?;
    let Some((_, email)) = reset::complete(&state.db, token, &hash, &meta.actor("user", None)).await? else {
        return Ok(invalid(t));
    };
    session::sign_out(&session).await?;
    // The account's sign-in failures are forgiven, as after any password change.
    throttle::succeeded(&state.db, &throttle::Attempt::new(&email, meta.ip)).await?;
    state.mailer.send_later(crate::notify::password_changed_mail(lang, &email, meta.ip));
    let page = NoticePage { t, title: t.reset_title, body: t.reset_done, code: None, next: Some("/login") };
    Ok(render(StatusCode::OK, &page, &[]))
}

#[cfg(test)]
mod redaction {
    /// A logged `ResetForm` shows no secret it carries.
    #[test]
    fn reset_form_debug_hides_secrets() {
        let form: super::ResetForm =
            serde_urlencoded::from_str("csrf=c&token=tok-secret-1&password=pw-secret-2").unwrap();
        let shown = format!("{form:?}");
        assert!(!shown.contains("tok-secret-1") && !shown.contains("pw-secret-2"), "{shown}");
    }
}
