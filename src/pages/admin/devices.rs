//! `/admin/t/{slug}/devices`: the devices signed in through the device grant (RFC 8628), and
//! revoking one.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use tower_sessions::Session;
use uuid::Uuid;

use super::frame::{Frame, Section, refused};
use super::PageQuery;
use super::{CsrfForm, TenantCaller, done};
use crate::admin::devices::DeviceView;
use crate::admin::{self, Action, Cursor};
use crate::error::AppError;
use crate::extract::Query;
use crate::html::text::{ADMIN, AdminText, EN, Text};
use crate::render::render;
use crate::session::SessionForm;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "admin/devices.html")]
struct DevicesPage<'a> {
    t: &'static Text,
    a: &'static AdminText,
    f: &'a Frame,
    devices: &'a [DeviceView],
    next: Option<String>,
}

/// `GET /admin/t/{slug}/devices`.
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    TenantCaller(caller): TenantCaller,
    Query(q): Query<PageQuery>,
) -> Result<Response, AppError> {
    let cursor = Cursor::parse(q.cursor.as_deref(), None).map_err(refused)?;
    let page = admin::devices::list(&state.db, &caller, None, &cursor).await.map_err(refused)?;
    let f = Frame::new(&session, &caller, Section::Devices).await?;
    let view = DevicesPage { t: &EN, a: &ADMIN, f: &f, devices: &page.items, next: page.next_cursor };
    Ok(render(StatusCode::OK, &view, &[]))
}

/// `POST /admin/t/{slug}/devices/{family}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    session: Session,
    TenantCaller(caller): TenantCaller,
    Path((_, family)): Path<(String, Uuid)>,
    SessionForm(_): SessionForm<CsrfForm>,
) -> Result<Response, AppError> {
    admin::devices::revoke(&state.db, &caller, family).await.map_err(refused)?;
    done(&session, &format!("/admin/t/{}/devices", caller.slug), ADMIN.device_revoked).await
}
