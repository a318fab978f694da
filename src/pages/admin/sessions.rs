//! `/admin/t/{slug}/sessions`: the live sign-ins of applications (token families not begun by
//! the device grant), and ending one.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use tower_sessions::Session;
use uuid::Uuid;

use super::frame::{Frame, Section, refused};
use super::PageQuery;
use super::{CsrfForm, TenantCaller, done};
use crate::admin::sessions::SessionView;
use crate::admin::{self, Action, Cursor};
use crate::error::AppError;
use crate::extract::Query;
use crate::html::text::{ADMIN, AdminText, EN, Text};
use crate::render::render;
use crate::session::SessionForm;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "admin/sessions.html")]
struct SessionsPage<'a> {
    t: &'static Text,
    a: &'static AdminText,
    f: &'a Frame,
    sessions: &'a [SessionView],
    next: Option<String>,
}

/// `GET /admin/t/{slug}/sessions`.
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    TenantCaller(caller): TenantCaller,
    Query(q): Query<PageQuery>,
) -> Result<Response, AppError> {
    let cursor = Cursor::parse(q.cursor.as_deref(), None).map_err(refused)?;
    let page = admin::sessions::list(&state.db, &caller, None, &cursor).await.map_err(refused)?;
    let f = Frame::new(&session, &caller, Section::Sessions).await?;
    let view = SessionsPage { t: &EN, a: &ADMIN, f: &f, sessions: &page.items, next: page.next_cursor };
    Ok(render(StatusCode::OK, &view, &[]))
}

/// `POST /admin/t/{slug}/sessions/{family}/end`.
pub async fn end(
    State(state): State<AppState>,
    session: Session,
    TenantCaller(caller): TenantCaller,
    Path((_, family)): Path<(String, Uuid)>,
    SessionForm(_): SessionForm<CsrfForm>,
) -> Result<Response, AppError> {
    admin::sessions::end(&state.db, &caller, family).await.map_err(refused)?;
    done(&session, &format!("/admin/t/{}/sessions", caller.slug), ADMIN.session_ended).await
}
