//! RP-Initiated Logout (OpenID Connect RP-Initiated Logout 1.0): GET and POST `/logout` with
//! `id_token_hint`, `post_logout_redirect_uri`, `state`, `client_id`.
//!
//! - A forged, `alg: none` or foreign `id_token_hint` gets an error page.
//! - `post_logout_redirect_uri` must match one registered for the client exactly (§3.1);
//!   otherwise an error page, never a redirect.
//! - With a valid hint the relying party has shown who it is: the session ends at once.
//!   Without one, the user confirms on a page first (a bare link must not sign people out).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;
use url::Url;

use crate::AppState;
use crate::error::AppError;
use crate::extract::Form;
use crate::pages::{self, EN, MessagePage, Text, page_error, render, session};
use crate::tokens::{Expected, TokenType, check_claims};

#[derive(Debug, Default, Deserialize)]
pub struct LogoutParams {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    client_id: Option<String>,
    /// Our confirmation form.
    csrf: Option<String>,
    confirm: Option<String>,
}

#[derive(Template)]
#[template(path = "logout.html")]
struct ConfirmPage<'a> {
    t: &'static Text,
    csrf: &'a str,
}

/// `GET /logout`.
pub async fn logout_get(
    State(state): State<AppState>,
    session: Session,
    Query(p): Query<LogoutParams>,
) -> Result<Response, AppError> {
    logout(&state, &session, p).await
}

/// `POST /logout`.
pub async fn logout_post(
    State(state): State<AppState>,
    session: Session,
    Form(p): Form<LogoutParams>,
) -> Result<Response, AppError> {
    logout(&state, &session, p).await
}

fn refused(message: &'static str) -> AppError {
    page_error(StatusCode::BAD_REQUEST, "The sign-out request is invalid", message)
}

async fn logout(state: &AppState, session: &Session, p: LogoutParams) -> Result<Response, AppError> {
    // Who is asking: the hint's audience, which must agree with client_id if both are given.
    let hinted_client = match p.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
        Some(hint) => Some(hint_audience(state, hint).await.ok_or_else(|| refused("The id_token_hint is not valid."))?),
        None => None,
    };
    let client_id = match (&hinted_client, p.client_id.as_deref()) {
        (Some(a), Some(b)) if a != b => return Err(refused("client_id does not match the id_token_hint.")),
        (Some(a), _) => Some(a.clone()),
        (None, b) => b.map(str::to_owned),
    };
    let redirect = match p.post_logout_redirect_uri.as_deref() {
        None => None,
        Some(uri) => {
            let Some(client_id) = &client_id else {
                return Err(refused("post_logout_redirect_uri needs an id_token_hint or client_id."));
            };
            let registered = crate::clients::find(&state.db, client_id)
                .await?
                .is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri));
            if !registered {
                return Err(refused("The post_logout_redirect_uri is not registered for this application."));
            }
            Some(uri.to_owned())
        }
    };

    let confirmed = match (p.confirm.as_deref(), p.csrf.as_deref()) {
        (Some("yes"), Some(csrf)) => {
            session::check_csrf(session, csrf).await?;
            true
        }
        _ => false,
    };
    if hinted_client.is_none() && !confirmed {
        let csrf = session::csrf_token(session).await?;
        return Ok(render(StatusCode::OK, &ConfirmPage { t: &EN, csrf: &csrf }, &[]));
    }
    session::sign_out(session).await?;
    match redirect {
        Some(uri) => {
            let Ok(mut url) = Url::parse(&uri) else {
                return Err(refused("The post_logout_redirect_uri is not a URL."));
            };
            if let Some(state) = p.state.as_deref().filter(|s| s.len() <= 2048) {
                url.query_pairs_mut().append_pair("state", state);
            }
            Ok(Redirect::to(url.as_str()).into_response())
        }
        None => Ok(signed_out()),
    }
}

/// The signed-out page.
pub fn signed_out() -> Response {
    let page = MessagePage { t: &EN, title: EN.signed_out_title, body: EN.signed_out_body };
    pages::render(StatusCode::OK, &page, &[])
}

/// The client (`aud`) of an ID token we issued; expired is fine, forged is not.
async fn hint_audience(state: &AppState, hint: &str) -> Option<String> {
    let claims = state.keys.verify_fresh(hint, TokenType::IdToken).await.ok()?;
    let expected = Expected {
        issuer: &state.config.issuer,
        audience: None,
        now: chrono::Utc::now(),
        leeway: std::time::Duration::from_secs(365 * 86400),
    };
    check_claims(&claims, &expected).ok()?;
    match claims.get("aud")? {
        serde_json::Value::String(a) => Some(a.clone()),
        serde_json::Value::Array(list) if list.len() == 1 => list[0].as_str().map(str::to_owned),
        _ => claims.get("azp")?.as_str().map(str::to_owned),
    }
}
