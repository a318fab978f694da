//! `/admin/platform`: the platform area, for platform admins only (everyone else gets the 404
//! of a page that does not exist): every organisation, creating one with its first admin (a
//! recovery link shown once when that admin has no password yet), suspending and
//! reactivating, appointing an admin.

use askama::Template;
use axum::extract::Path;
use axum::response::Response;
use serde::Deserialize;

use super::frame::{self, Shown, take_flash};
use super::{Button, PageQuery, PlatformCtx, ok};
use crate::admin;
use crate::admin::platform::{AppointedAdmin, NewTenant, TenantView};
use crate::error::AppError;
use crate::extract::Query;
use crate::html::text::{AdminText, Text};
use crate::session::{self, SessionForm};
use crate::vocabulary::TenantStatus;

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
pub async fn list(ctx: PlatformCtx, Query(q): Query<PageQuery>) -> Result<Response, AppError> {
    let page = ctx.page(&q, admin::platform::list_tenants).await?;
    let csrf = session::csrf_token(&ctx.session).await?;
    let notice = take_flash(&ctx.session).await?;
    let link = frame::take_once(&ctx.state, &ctx.session, LINK_SUBJECT).await?;
    ok(&PlatformPage {
        t: ctx.t(),
        a: ctx.a(),
        csrf: &csrf,
        notice,
        tenants: &page.items,
        next: page.next_cursor,
        link,
    })
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
async fn appointed(ctx: &PlatformCtx, slug: &str, admin: &AppointedAdmin, notice: &str) -> Result<Response, AppError> {
    if let Some(link) = &admin.recovery_link {
        let label = format!(
            "{} {} ({slug}). {} {}",
            ctx.a().first_admin_link,
            admin.email,
            ctx.t().admin_link_body,
            link.expires_at.format("%Y-%m-%d %H:%M UTC")
        );
        frame::keep_once(&ctx.state, &ctx.session, LINK_SUBJECT, &label, &link.link).await?;
    }
    ctx.done("", notice).await
}

/// `POST /admin/platform/tenants`: a new organisation and its first admin.
pub async fn create(ctx: PlatformCtx, SessionForm(form): SessionForm<CreateForm>) -> Result<Response, AppError> {
    let new = NewTenant { slug: form.slug, name: form.name, admin_email: form.admin_email };
    let created = admin::platform::create_tenant(&ctx.state.db, &ctx.state.config, &ctx.caller, new)
        .await
        .map_err(ctx.refused())?;
    appointed(&ctx, &created.tenant.slug, &created.admin, ctx.a().tenant_created).await
}

/// `POST /admin/platform/tenants/{tenant}/suspend` (by slug).
pub async fn suspend(ctx: PlatformCtx, Path(slug): Path<String>, _: Button) -> Result<Response, AppError> {
    ctx.act(admin::platform::set_suspended(&ctx.state.db, &ctx.caller, &slug, true), "", ctx.a().tenant_suspended).await
}

/// `POST /admin/platform/tenants/{tenant}/reactivate` (by slug).
pub async fn reactivate(ctx: PlatformCtx, Path(slug): Path<String>, _: Button) -> Result<Response, AppError> {
    let op = admin::platform::set_suspended(&ctx.state.db, &ctx.caller, &slug, false);
    ctx.act(op, "", ctx.a().tenant_reactivated).await
}

/// `POST /admin/platform/tenants/{tenant}/admins` (by slug): appoints an admin.
pub async fn appoint(
    ctx: PlatformCtx,
    Path(slug): Path<String>,
    SessionForm(form): SessionForm<AppointForm>,
) -> Result<Response, AppError> {
    let (db, config) = (&ctx.state.db, &ctx.state.config);
    let admin =
        admin::platform::appoint_admin(db, config, &ctx.caller, &slug, &form.email).await.map_err(ctx.refused())?;
    appointed(&ctx, &slug, &admin, ctx.a().appointed).await
}
