//! The login page (email + password).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use crate::AppState;
use crate::db::{self, audit};
use crate::error::AppError;
use crate::extract::Form;
use crate::pages::session::{self, Pending, SignedIn};
use crate::pages::{EN, Text, render};
use crate::protocol::authorize::origin_of;
use crate::protocol::discovery::ACR_PASSWORD;
use crate::protocol::meta::RequestMeta;
use crate::secrets::Secret;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    t: &'static Text,
    csrf: &'a str,
    req: &'a str,
    email: &'a str,
    client_name: Option<&'a str>,
    failed: bool,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    req: Option<String>,
}

/// `GET /login`.
pub async fn show(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<LoginQuery>,
) -> Result<Response, AppError> {
    let pending = match &q.req {
        Some(id) => session::pending(&session, id).await?,
        None => None,
    };
    let email = pending.as_ref().and_then(|p| p.login_hint.clone()).unwrap_or_default();
    page(&state, &session, pending.as_ref(), &email, false, StatusCode::OK).await
}

async fn page(
    state: &AppState,
    session: &Session,
    pending: Option<&Pending>,
    email: &str,
    failed: bool,
    status: StatusCode,
) -> Result<Response, AppError> {
    let csrf = session::csrf_token(session).await?;
    let client_name = match pending {
        Some(p) => client_name(state, p).await?,
        None => None,
    };
    let targets: Vec<String> = pending.map(|p| vec![origin_of(&p.redirect_uri)]).unwrap_or_default();
    let req = pending.map(|p| p.id.as_str()).unwrap_or("");
    let page = LoginPage { t: &EN, csrf: &csrf, req, email, client_name: client_name.as_deref(), failed };
    Ok(render(status, &page, &targets))
}

/// The display name of the client a request is for.
pub async fn client_name(state: &AppState, p: &Pending) -> Result<Option<String>, AppError> {
    Ok(crate::clients::find(&state.db, &p.client_id).await?.map(|c| c.name))
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    csrf: String,
    #[serde(default)]
    req: String,
    email: String,
    password: String,
}

/// `POST /login`. An unknown email, a wrong password and a disabled account get the same
/// answer after the same bcrypt work, so the page cannot be used to find accounts.
pub async fn submit(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    session::check_csrf(&session, &form.csrf).await?;
    let mut pending = if form.req.is_empty() { None } else { session::pending(&session, &form.req).await? };
    let email = form.email.trim();
    let password = form.password.as_str();
    let found = if email.len() <= 254 && password.len() <= 1024 {
        let mut tx = state.db.unscoped().await?;
        let user = db::users::by_email(&mut tx, email).await?;
        tx.commit().await?;
        user
    } else {
        None
    };
    let password_ok = state.passwords.verify(password, found.as_ref().and_then(|u| u.password_hash.as_deref())).await?;
    let user = found.filter(|u| password_ok && u.status == "active");

    if let Some(p) = &pending {
        let mut tx = state.db.tenant(p.client_tenant).await?;
        audit::append(
            &mut tx,
            &meta.event(
                if user.is_some() { "login.success" } else { "login.failure" },
                if user.is_some() { "success" } else { "failure" },
                ("user", user.as_ref().map(|u| u.id.to_string())),
                ("client", p.client_id.clone()),
            ),
        )
        .await?;
        tx.commit().await?;
    }

    let Some(user) = user else {
        // 200, not 401: a 401 would need a WWW-Authenticate challenge this form is not.
        return page(&state, &session, pending.as_ref(), email, true, StatusCode::OK).await;
    };
    let who = SignedIn {
        user_id: user.id,
        auth_time: chrono::Utc::now().timestamp(),
        amr: vec!["pwd".into()],
        acr: ACR_PASSWORD.into(),
        sid: Secret::generate().expose().to_owned(),
    };
    session::sign_in(&session, &who).await?;
    match pending.as_mut() {
        Some(p) => {
            p.logged_in = true;
            // A new sign-in may be another person: choose the tenant again.
            p.tenant = None;
            session::save_pending(&session, p).await?;
            Ok(Redirect::to(&format!("/authorize/continue?req={}", p.id)).into_response())
        }
        None => Ok(Redirect::to("/").into_response()),
    }
}
