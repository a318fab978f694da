//! `GET /admin` (the organisations of the signed-in user) and `GET /admin/t/{slug}` (one
//! organisation at a glance: how many members, clients, devices and sessions, its MFA policy,
//! and the last audit events).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use tower_sessions::Session;

use super::frame::{Frame, Section};
use super::{Ctx, INDEX, ok, with_mfa};
use crate::admin::{self, Cursor};
use crate::db;
use crate::error::AppError;
use crate::html::text::{AdminText, Text};
use crate::render::render;
use crate::session::PageLang;
use crate::state::AppState;
use crate::vocabulary::Role;

/// One organisation of the index.
#[derive(Debug)]
pub struct Organisation {
    pub slug: String,
    pub name: String,
    pub role: Role,
}

#[derive(Template)]
#[template(path = "admin/index.html")]
struct IndexPage<'a> {
    t: &'static Text,
    a: &'static AdminText,
    organisations: &'a [Organisation],
    platform_admin: bool,
    notice: Option<String>,
}

/// `GET /admin`: every organisation the user belongs to, with their role there (viewers and
/// editors have pages too), and the platform area for platform admins. Someone who belongs
/// to none is told so plainly, with a 403: there is nothing here for them.
pub async fn index(
    State(state): State<AppState>,
    session: Session,
    PageLang(lang): PageLang,
) -> Result<Response, AppError> {
    let who = match with_mfa(&session, INDEX).await? {
        Ok(who) => who,
        Err(to_sign_in) => return Ok(to_sign_in),
    };
    // Who the user is a member of, before any tenant is chosen (the `lca_memberships_of`
    // lookup); what they may do in each is the admin domain's business once they pick one.
    let mut tx = state.db.unscoped().await?;
    let mine = db::memberships::of_user(&mut tx, who.user_id).await?;
    let platform = db::tenants::platform(&mut tx).await?;
    tx.commit().await?;
    let platform_admin = mine.iter().any(|m| Some(m.tenant_id) == platform && m.role == Role::Admin);
    let organisations: Vec<Organisation> =
        mine.into_iter().map(|m| Organisation { slug: m.slug, name: m.name, role: m.role }).collect();
    let status = if organisations.is_empty() { StatusCode::FORBIDDEN } else { StatusCode::OK };
    let notice = super::frame::take_flash(&session).await?;
    let view = IndexPage { t: lang.text(), a: lang.admin(), organisations: &organisations, platform_admin, notice };
    Ok(render(status, &view, &[]))
}

/// A count shown on the dashboard.
#[derive(Debug)]
pub struct Count {
    pub label: &'static str,
    pub href: String,
    pub value: u64,
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage<'a> {
    t: &'static Text,
    a: &'static AdminText,
    f: &'a Frame,
    counts: &'a [Count],
    require_mfa: bool,
    events: &'a [admin::audit::AuditEntry],
}

/// `GET /admin/t/{slug}`.
pub async fn show(ctx: Ctx) -> Result<Response, AppError> {
    let (db, c) = (&ctx.state.db, &ctx.caller);
    let settings = admin::settings::get(db, c).await.map_err(ctx.refused())?;
    let f = ctx.frame(Section::Dashboard).await?;
    let counts = [
        (ctx.a().nav_members, "/members", admin::members::count(db, c).await.map_err(ctx.refused())?),
        (ctx.a().nav_clients, "/clients", admin::clients::count(db, c).await.map_err(ctx.refused())?),
        (ctx.a().nav_devices, "/devices", admin::devices::count(db, c).await.map_err(ctx.refused())?),
        (ctx.a().nav_sessions, "/sessions", admin::sessions::count(db, c).await.map_err(ctx.refused())?),
    ]
    .map(|(label, tail, value)| Count { label, href: f.path(tail), value });
    let recent = admin::audit::query(db, c, &admin::audit::AuditFilter::default(), &Cursor::first(5))
        .await
        .map_err(ctx.refused())?;
    ok(&DashboardPage {
        t: ctx.t(),
        a: ctx.a(),
        f: &f,
        counts: &counts,
        require_mfa: settings.require_mfa,
        events: &recent.items,
    })
}
