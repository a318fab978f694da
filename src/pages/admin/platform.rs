//! `/admin/platform`: the platform area, for platform admins only (everyone else gets the 404
//! of a page that does not exist): every organisation, creating one with its first admin (a
//! recovery link shown once when that admin has no password yet), suspending and
//! reactivating, appointing an admin.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tower_sessions::Session;

use super::frame::{self, Shown, refused, take_flash};
use super::PageQuery;
use super::{CsrfForm, PlatformCaller, done};
use crate::admin::platform::{AppointedAdmin, NewTenant, TenantView};
use crate::admin::{self, Cursor};
use crate::error::AppError;
use crate::extract::Query;
use crate::html::text::{ADMIN, AdminText, EN, Text};
use crate::render::render;
use crate::session::{self, SessionForm};
use crate::state::AppState;
use crate::vocabulary::TenantStatus;

/// Where the platform area's pages live.
const AREA: &str = "/admin/platform";
/// The subject under which a first admin's recovery link waits for the platform page.
const LINK_SUBJECT: &str = "platform";

#[derive(Template)]
#[template(path = "admin/platform.html")]
struct PlatformPage<'a> {
    t: &'static Text,
    a: &'static AdminText,
    csrf: &'a str,
    notice: Option<String>,
    tenants: &'a [TenantView],
    next: Option<String>,
    link: Option<Shown>,
}

/// `GET /admin/platform`.
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    PlatformCaller(caller): PlatformCaller,
    Query(q): Query<PageQuery>,
) -> Result<Response, AppError> {
    let cursor = Cursor::parse(q.cursor.as_deref(), None).map_err(refused)?;
    let page = admin::platform::list_tenants(&state.db, &caller, &cursor).await.map_err(refused)?;
    let csrf = session::csrf_token(&session).await?;
    let notice = take_flash(&session).await?;
    let link = frame::take_once(&state, &session, LINK_SUBJECT).await?;
    let view =
        PlatformPage { t: &EN, a: &ADMIN, csrf: &csrf, notice, tenants: &page.items, next: page.next_cursor, link };
    Ok(render(StatusCode::OK, &view, &[]))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateForm {
    csrf: String,
    slug: String,
    name: String,
    admin_email: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppointForm {
    csrf: String,
    email: String,
}

crate::session::csrf_field!(CreateForm, AppointForm);

/// The answer to a form that made someone admin: a recovery link kept for the platform page
/// when they have no password yet.
async fn appointed(
    state: &AppState,
    session: &Session,
    slug: &str,
    admin: &AppointedAdmin,
    notice: &str,
) -> Result<Response, AppError> {
    if let Some(link) = &admin.recovery_link {
        let label = format!(
            "{} {} ({slug}). {} {}",
            ADMIN.first_admin_link,
            admin.email,
            EN.admin_link_body,
            link.expires_at.format("%Y-%m-%d %H:%M UTC")
        );
        frame::keep_once(state, session, LINK_SUBJECT, &label, &link.link).await?;
    }
    done(session, AREA, notice).await
}

/// `POST /admin/platform/tenants`: a new organisation and its first admin.
pub async fn create(
    State(state): State<AppState>,
    session: Session,
    PlatformCaller(caller): PlatformCaller,
    SessionForm(form): SessionForm<CreateForm>,
) -> Result<Response, AppError> {
    let new = NewTenant { slug: form.slug, name: form.name, admin_email: form.admin_email };
    let created = admin::platform::create_tenant(&state.db, &state.config, &caller, new).await.map_err(refused)?;
    appointed(&state, &session, &created.tenant.slug, &created.admin, ADMIN.tenant_created).await
}

/// `POST /admin/platform/tenants/{tenant}/suspend` (by slug).
pub async fn suspend(
    State(state): State<AppState>,
    session: Session,
    PlatformCaller(caller): PlatformCaller,
    Path(slug): Path<String>,
    SessionForm(_): SessionForm<CsrfForm>,
) -> Result<Response, AppError> {
    admin::platform::set_suspended(&state.db, &caller, &slug, true).await.map_err(refused)?;
    done(&session, AREA, ADMIN.tenant_suspended).await
}

/// `POST /admin/platform/tenants/{tenant}/reactivate` (by slug).
pub async fn reactivate(
    State(state): State<AppState>,
    session: Session,
    PlatformCaller(caller): PlatformCaller,
    Path(slug): Path<String>,
    SessionForm(_): SessionForm<CsrfForm>,
) -> Result<Response, AppError> {
    admin::platform::set_suspended(&state.db, &caller, &slug, false).await.map_err(refused)?;
    done(&session, AREA, ADMIN.tenant_reactivated).await
}

/// `POST /admin/platform/tenants/{tenant}/admins` (by slug): appoints an admin.
pub async fn appoint(
    State(state): State<AppState>,
    session: Session,
    PlatformCaller(caller): PlatformCaller,
    Path(slug): Path<String>,
    SessionForm(form): SessionForm<AppointForm>,
) -> Result<Response, AppError> {
    let admin =
        admin::platform::appoint_admin(&state.db, &state.config, &caller, &slug, &form.email).await.map_err(refused)?;
    appointed(&state, &session, &slug, &admin, ADMIN.appointed).await
}
