//! The hosted admin pages (ARCHITECTURE.md, "Admin surface"): a dashboard per organisation,
//! its members, clients, devices, sessions, audit log and settings, and the platform area.
//!
//! The three depths of every page: the route's extractor ([`TenantCaller`], [`PlatformCaller`])
//! yields the caller from the browser session (signed in with a second factor) and one of the
//! user's *own* memberships, chosen by the slug, with the role read now; the handler calls one
//! `crate::admin` operation, which checks the permission table; that operation runs in the
//! caller's tenant, where Row Level Security hides every other tenant's rows. The pages show a
//! form only when the table allows it (`Caller::may`); a forged post is still refused (403).
//!
//! Every route is a line of [`ROUTES`], from which the router is built, so the table the tests
//! read (`tests/it/admin_pages.rs`) is the router itself.

pub mod audit;
pub mod clients;
pub mod dashboard;
pub mod devices;
pub mod families;
pub mod frame;
pub mod members;
pub mod platform;
pub mod sessions;
pub mod settings;

use std::marker::PhantomData;

use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use serde::Deserialize;
use tower_sessions::Session;

use crate::admin::{Action, Caller, Cursor, Page};
use crate::db::{self, Database};
use crate::error::AppError;
use crate::html::text::{AdminText, Lang, Text};
use crate::protocol::meta::RequestMeta;
use crate::render::render;
use crate::service_error::ServiceError;
use crate::session::{self, PageLang, SessionForm, SignedIn};
use crate::state::AppState;

pub use frame::{Frame, Section};

/// The HTTP method of a route of [`ROUTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
}

/// One admin page or form: its method, its path (axum syntax), the permission-table action
/// its domain operation checks first, and its handler.
#[derive(Clone, Copy)]
pub struct AdminRoute {
    pub verb: Verb,
    pub path: &'static str,
    pub action: Action,
    handler: fn() -> MethodRouter<AppState>,
}

impl std::fmt::Debug for AdminRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} {} ({})", self.verb, self.path, self.action.as_str())
    }
}

const fn page(path: &'static str, action: Action, handler: fn() -> MethodRouter<AppState>) -> AdminRoute {
    AdminRoute { verb: Verb::Get, path, action, handler }
}

const fn form(path: &'static str, action: Action, handler: fn() -> MethodRouter<AppState>) -> AdminRoute {
    AdminRoute { verb: Verb::Post, path, action, handler }
}

/// `GET /admin`: the organisations of the signed-in user (no tenant yet, so no action).
pub const INDEX: &str = "/admin";

/// Every admin page and form but [`INDEX`]. Member actions keep the paths they had before
/// the admin surface grew (`…/members/{user_id}/reset-mfa|recovery-link|sign-out`).
pub const ROUTES: &[AdminRoute] = &[
    page("/admin/t/{slug}", Action::ReadSettings, || get(dashboard::show)),
    page("/admin/t/{slug}/members", Action::ReadMembers, || get(members::list)),
    form("/admin/t/{slug}/members", Action::ManageMembers, || post(members::add)),
    form("/admin/t/{slug}/members/{user_id}/role", Action::ManageMembers, || post(members::set_role)),
    form("/admin/t/{slug}/members/{user_id}/remove", Action::ManageMembers, || post(members::remove)),
    form("/admin/t/{slug}/members/{user_id}/reset-mfa", Action::RecoverMembers, || post(members::reset_mfa)),
    form("/admin/t/{slug}/members/{user_id}/recovery-link", Action::RecoverMembers, || post(members::recovery_link)),
    form("/admin/t/{slug}/members/{user_id}/sign-out", Action::RecoverMembers, || post(members::sign_out)),
    form("/admin/t/{slug}/invitations", Action::ManageMembers, || post(members::invite)),
    form("/admin/t/{slug}/invitations/{invitation}/withdraw", Action::ManageMembers, || post(members::withdraw)),
    page("/admin/t/{slug}/clients", Action::ReadClients, || get(clients::list)),
    form("/admin/t/{slug}/clients", Action::ManageClients, || post(clients::create)),
    page("/admin/t/{slug}/clients/{client_id}", Action::ReadClients, || get(clients::show)),
    form("/admin/t/{slug}/clients/{client_id}", Action::ManageClients, || post(clients::update)),
    form("/admin/t/{slug}/clients/{client_id}/rotate", Action::ManageClients, || post(clients::rotate)),
    form("/admin/t/{slug}/clients/{client_id}/delete", Action::ManageClients, || post(clients::delete)),
    page("/admin/t/{slug}/devices", Action::ReadDevices, || get(devices::list)),
    form("/admin/t/{slug}/devices/{family}/revoke", Action::ManageDevices, || post(devices::revoke)),
    page("/admin/t/{slug}/sessions", Action::ReadSessions, || get(sessions::list)),
    form("/admin/t/{slug}/sessions/{session}/end", Action::EndSessions, || post(sessions::end)),
    page("/admin/t/{slug}/audit", Action::ReadAudit, || get(audit::list)),
    page("/admin/t/{slug}/settings", Action::ReadSettings, || get(settings::show)),
    form("/admin/t/{slug}/settings", Action::ManageSettings, || post(settings::update)),
    page("/admin/platform", Action::ManageTenants, || get(platform::list)),
    form("/admin/platform/tenants", Action::ManageTenants, || post(platform::create)),
    form("/admin/platform/tenants/{tenant}/suspend", Action::ManageTenants, || post(platform::suspend)),
    form("/admin/platform/tenants/{tenant}/reactivate", Action::ManageTenants, || post(platform::reactivate)),
    form("/admin/platform/tenants/{tenant}/admins", Action::ManageTenants, || post(platform::appoint)),
];

/// The admin pages' routes, built from [`ROUTES`] (a page and a form on one path share it).
pub fn router() -> Router<AppState> {
    ROUTES
        .iter()
        .fold(Router::new().route(INDEX, get(dashboard::index)), |r, line| r.route(line.path, (line.handler)()))
}

/// The signed-in user of an admin page, with a second factor; otherwise a redirect to sign
/// in (or step up) that comes back to `back`.
pub async fn with_mfa(session: &Session, back: &str) -> Result<Result<SignedIn, Response>, AppError> {
    match session::signed_in(session).await? {
        Some(who) if who.has_mfa() => Ok(Ok(who)),
        other => {
            session::set_return_to(session, back).await?;
            let to = if other.is_some() { "/login/mfa" } else { "/login" };
            Ok(Err(Redirect::to(to).into_response()))
        }
    }
}

/// Where to come back after signing in: the page asked for, or (for a form) the page it was on.
fn back_to(parts: &Parts) -> String {
    let path = parts.uri.path();
    if parts.method == axum::http::Method::GET {
        return parts.uri.path_and_query().map_or(path, |pq| pq.as_str()).to_owned();
    }
    // `/admin/t/{slug}/…` → `/admin/t/{slug}`; anything else → `/admin`.
    let mut segments = path.split('/').skip(1);
    match (segments.next(), segments.next(), segments.next()) {
        (Some("admin"), Some("t"), Some(slug)) => format!("/admin/t/{slug}"),
        _ => INDEX.to_owned(),
    }
}

/// The caller of a `/admin/t/{slug}/…` route: the signed-in user (with a second factor) as a
/// member of the tenant of `slug`, looked for among *their own* memberships only, so a slug
/// that is not theirs is a 404 exactly like one that does not exist. The role is the
/// membership's now (`Caller::user`), so a demotion counts at the next page.
#[derive(Debug, Clone)]
pub struct TenantCaller(pub Caller);

impl FromRequestParts<AppState> for TenantCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, state).await.map_err(IntoResponse::into_response)?;
        let slug = params.iter().find(|(k, _)| *k == "slug").map(|(_, v)| v.to_owned()).unwrap_or_default();
        let who = signed_in_part(parts, state).await?;
        let caller = async {
            let mut tx = state.db.unscoped().await?;
            let mine = db::memberships::of_user(&mut tx, who.user_id).await?;
            tx.commit().await?;
            let Some(m) = mine.into_iter().find(|m| m.slug == slug) else { return Ok(None) };
            let Ok(meta) = RequestMeta::from_request_parts(parts, state).await;
            let actor = meta.actor("user", Some(who.user_id.to_string()));
            Ok::<_, AppError>(Caller::user(&state.db, m.tenant_id, who.user_id, actor, state.handler_checks).await?)
        };
        match caller.await {
            Ok(Some(caller)) => Ok(Self(caller)),
            Ok(None) => Err(AppError::NotFound.into_response()),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// The caller of a `/admin/platform…` route: the signed-in user as a member of the platform
/// tenant. Whoever is not one gets a 404, and the platform operations answer 404 to its
/// members who are not admins (`Need::PlatformAdmin`): the area does not exist for them.
#[derive(Debug, Clone)]
pub struct PlatformCaller(pub Caller);

impl FromRequestParts<AppState> for PlatformCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let who = signed_in_part(parts, state).await?;
        let caller = async {
            let mut tx = state.db.unscoped().await?;
            let platform = db::tenants::platform(&mut tx).await?;
            tx.commit().await?;
            let Some(platform) = platform else { return Ok(None) };
            let Ok(meta) = RequestMeta::from_request_parts(parts, state).await;
            let actor = meta.actor("user", Some(who.user_id.to_string()));
            Ok::<_, AppError>(Caller::user(&state.db, platform, who.user_id, actor, state.handler_checks).await?)
        };
        match caller.await {
            Ok(Some(caller)) => Ok(Self(caller)),
            Ok(None) => Err(AppError::NotFound.into_response()),
            Err(e) => Err(e.into_response()),
        }
    }
}

async fn signed_in_part(parts: &mut Parts, state: &AppState) -> Result<SignedIn, Response> {
    let session = Session::from_request_parts(parts, state).await.map_err(IntoResponse::into_response)?;
    match with_mfa(&session, &back_to(parts)).await {
        Ok(Ok(who)) => Ok(who),
        Ok(Err(to_sign_in)) => Err(to_sign_in),
        Err(e) => Err(e.into_response()),
    }
}

/// The caller of an area of the admin pages ([`TenantCaller`], [`PlatformCaller`]), and where
/// that area's pages are.
pub trait Area: FromRequestParts<AppState, Rejection = Response> + Into<Caller> {
    /// The path of the area's page at `tail` (which starts with `/`, or is empty).
    fn path(caller: &Caller, tail: &str) -> String;
}

impl From<TenantCaller> for Caller {
    fn from(TenantCaller(caller): TenantCaller) -> Self {
        caller
    }
}

impl Area for TenantCaller {
    fn path(caller: &Caller, tail: &str) -> String {
        format!("/admin/t/{}{tail}", caller.slug)
    }
}

impl From<PlatformCaller> for Caller {
    fn from(PlatformCaller(caller): PlatformCaller) -> Self {
        caller
    }
}

impl Area for PlatformCaller {
    fn path(_: &Caller, tail: &str) -> String {
        format!("/admin/platform{tail}")
    }
}

/// What every admin handler works with: the state, the browser session and the caller, whom
/// `W` finds. Extracted in that order, before the path and the form, so a caller who is not
/// signed in is sent to sign in, and a slug that is not theirs is a 404, whatever the rest of
/// the request.
pub struct Ctx<W = TenantCaller> {
    pub state: AppState,
    pub session: Session,
    pub caller: Caller,
    /// The page's language (`session::PageLang`).
    pub lang: Lang,
    area: PhantomData<fn() -> W>,
}

impl<W: Area> FromRequestParts<AppState> for Ctx<W> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state).await.map_err(IntoResponse::into_response)?;
        let caller = W::from_request_parts(parts, state).await?.into();
        let PageLang(lang) = PageLang::from_request_parts(parts, state).await.map_err(IntoResponse::into_response)?;
        Ok(Self { state: state.clone(), session, caller, lang, area: PhantomData })
    }
}

impl<W: Area> Ctx<W> {
    /// The page words in the page's language.
    pub fn t(&self) -> &'static Text {
        self.lang.text()
    }

    /// The admin pages' words in the page's language.
    pub fn a(&self) -> &'static AdminText {
        self.lang.admin()
    }

    /// [`frame::refused`] in the page's language, for `map_err`.
    pub fn refused(&self) -> impl Fn(ServiceError) -> AppError + use<W> {
        frame::refused(self.lang)
    }

    /// The path of the area's page at `tail` (which starts with `/`, or is empty).
    pub fn path(&self, tail: &str) -> String {
        W::path(&self.caller, tail)
    }

    /// The page of a list that `q` asks for, from the domain operation `fetch`.
    pub async fn page<T>(
        &self,
        q: &PageQuery,
        fetch: impl AsyncFnOnce(&Database, &Caller, &Cursor) -> Result<Page<T>, ServiceError>,
    ) -> Result<Page<T>, AppError> {
        let cursor = Cursor::parse(q.cursor.as_deref(), None).map_err(self.refused())?;
        fetch(&self.state.db, &self.caller, &cursor).await.map_err(self.refused())
    }

    /// [`done`], back on the area's page at `tail`.
    pub async fn done(&self, tail: &str, notice: &str) -> Result<Response, AppError> {
        done(&self.session, &self.path(tail), notice).await
    }

    /// Runs a form's domain operation; when it works, [`Ctx::done`].
    pub async fn act<T>(
        &self,
        op: impl Future<Output = Result<T, ServiceError>>,
        tail: &str,
        notice: &str,
    ) -> Result<Response, AppError> {
        op.await.map_err(self.refused())?;
        self.done(tail, notice).await
    }
}

impl Ctx<TenantCaller> {
    /// The frame of this organisation's page of `section` (it takes the pending notice).
    pub async fn frame(&self, section: Section) -> Result<Frame, AppError> {
        Frame::new(&self.session, &self.caller, self.lang, section).await
    }
}

/// The platform area's [`Ctx`].
pub type PlatformCtx = Ctx<PlatformCaller>;

/// A page as the answer: 200 and its HTML.
pub fn ok(page: &impl Template) -> Result<Response, AppError> {
    Ok(render(StatusCode::OK, page, &[]))
}

/// `?cursor=` of a list page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub cursor: Option<String>,
}

/// A form with nothing but its CSRF token (a button).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsrfForm {
    csrf: String,
}

crate::session::csrf_field!(CsrfForm);

/// A button's post: its CSRF token checked, nothing else in it.
pub type Button = SessionForm<CsrfForm>;

/// The answer to a form that worked: a notice for the next page, and a 303 to it (so that
/// reloading that page does not post the form again).
pub async fn done(session: &Session, to: &str, notice: &str) -> Result<Response, AppError> {
    frame::flash(session, notice).await?;
    Ok(Redirect::to(to).into_response())
}
