//! `/admin/t/{slug}/members`: the members of an organisation; adding someone by email with a
//! role, changing a role, removing; and acting on a member's sign-ins (second-factor reset, a
//! recovery link shown once, sign out everywhere).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

use super::frame::{self, Frame, Section, Shown, refused};
use super::{CsrfForm, TenantCaller, done};
use crate::admin::{self, Action, Cursor};
use crate::error::AppError;
use crate::extract::Query;
use crate::html::text::{ADMIN, AdminText, EN, Text};
use crate::identity::recovery::MemberAction;
use crate::render::render;
use crate::session::{self, SessionForm};
use crate::state::AppState;
use crate::vocabulary::Role;

/// `?cursor=` of a list page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/members.html")]
struct MembersPage<'a> {
    t: &'static Text,
    a: &'static AdminText,
    f: &'a Frame,
    members: &'a [admin::members::Member],
    next: Option<String>,
    link: Option<Shown>,
    roles: &'static [Role],
}

/// The subject under which a recovery link waits for the members page (`frame::keep_once`).
fn link_subject(slug: &str) -> String {
    format!("members:{slug}")
}

/// `GET /admin/t/{slug}/members`.
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    TenantCaller(caller): TenantCaller,
    Query(q): Query<PageQuery>,
) -> Result<Response, AppError> {
    let cursor = Cursor::parse(q.cursor.as_deref(), None).map_err(refused)?;
    let page = admin::members::list(&state.db, &caller, &cursor).await.map_err(refused)?;
    let f = Frame::new(&session, &caller, Section::Members).await?;
    let link = frame::take_once(&state, &session, &link_subject(&caller.slug)).await?;
    let view =
        MembersPage { t: &EN, a: &ADMIN, f: &f, members: &page.items, next: page.next_cursor, link, roles: Role::ALL };
    Ok(render(StatusCode::OK, &view, &[]))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddForm {
    csrf: String,
    email: String,
    role: Role,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleForm {
    csrf: String,
    role: Role,
}

crate::session::csrf_field!(AddForm, RoleForm);

/// `POST /admin/t/{slug}/members`: adds the person with this email (invited when they have
/// no account; the page says the same either way, so it tells nothing of other tenants).
pub async fn add(
    State(state): State<AppState>,
    session: Session,
    TenantCaller(caller): TenantCaller,
    SessionForm(form): SessionForm<AddForm>,
) -> Result<Response, AppError> {
    if form.email.len() > 320 {
        return Err(refused(crate::service_error::ServiceError::Invalid("the email address is too long".into())));
    }
    let added = admin::members::add(&state.db, &caller, form.email.trim(), form.role).await.map_err(refused)?;
    let notice = format!("{} {} ({})", ADMIN.member_added, added.email, added.role);
    done(&session, &format!("/admin/t/{}/members", caller.slug), &notice).await
}

/// `POST /admin/t/{slug}/members/{user_id}/role`.
pub async fn set_role(
    State(state): State<AppState>,
    session: Session,
    TenantCaller(caller): TenantCaller,
    Path((_, user_id)): Path<(String, Uuid)>,
    SessionForm(form): SessionForm<RoleForm>,
) -> Result<Response, AppError> {
    let change = admin::members::set_role(&state.db, &caller, user_id, form.role).await.map_err(refused)?;
    let notice = format!("{} {} → {}", ADMIN.member_role_changed, change.previous_role, form.role);
    done(&session, &format!("/admin/t/{}/members", caller.slug), &notice).await
}

/// `POST /admin/t/{slug}/members/{user_id}/remove`.
pub async fn remove(
    State(state): State<AppState>,
    session: Session,
    TenantCaller(caller): TenantCaller,
    Path((_, user_id)): Path<(String, Uuid)>,
    SessionForm(_): SessionForm<CsrfForm>,
) -> Result<Response, AppError> {
    admin::members::remove(&state.db, &caller, user_id).await.map_err(refused)?;
    if caller.user_id() == Some(user_id) {
        // Someone who leaves an organisation has nothing of it to administer any more.
        return done(&session, super::INDEX, ADMIN.member_removed).await;
    }
    done(&session, &format!("/admin/t/{}/members", caller.slug), ADMIN.member_removed).await
}

/// `POST /admin/t/{slug}/members/{user_id}/reset-mfa`.
pub async fn reset_mfa(
    State(state): State<AppState>,
    session: Session,
    TenantCaller(caller): TenantCaller,
    Path((_, user_id)): Path<(String, Uuid)>,
    SessionForm(_): SessionForm<CsrfForm>,
) -> Result<Response, AppError> {
    admin::members::act_on(&state.db, &caller, user_id, MemberAction::ResetMfa).await.map_err(refused)?;
    if caller.user_id() == Some(user_id) {
        // Their own second factor is gone, and with it this session.
        session::sign_out(&session).await?;
        return Ok(Redirect::to("/login").into_response());
    }
    done(&session, &format!("/admin/t/{}/members", caller.slug), EN.admin_mfa_reset_done).await
}

/// `POST /admin/t/{slug}/members/{user_id}/sign-out`: signs the member out everywhere.
pub async fn sign_out(
    State(state): State<AppState>,
    session: Session,
    TenantCaller(caller): TenantCaller,
    Path((_, user_id)): Path<(String, Uuid)>,
    SessionForm(_): SessionForm<CsrfForm>,
) -> Result<Response, AppError> {
    admin::members::act_on(&state.db, &caller, user_id, MemberAction::SignOutEverywhere).await.map_err(refused)?;
    if caller.user_id() == Some(user_id) {
        // An admin who signs themselves out everywhere is signed out here too.
        session::sign_out(&session).await?;
        return Ok(Redirect::to("/login").into_response());
    }
    done(&session, &format!("/admin/t/{}/members", caller.slug), EN.admin_sign_out_done).await
}

/// `POST /admin/t/{slug}/members/{user_id}/recovery-link`: the members page shows the link
/// once, after the redirect.
pub async fn recovery_link(
    State(state): State<AppState>,
    session: Session,
    TenantCaller(caller): TenantCaller,
    Path((_, user_id)): Path<(String, Uuid)>,
    SessionForm(_): SessionForm<CsrfForm>,
) -> Result<Response, AppError> {
    let issued = admin::members::recovery_link(&state.db, &state.config, &caller, user_id).await.map_err(refused)?;
    let member = admin::members::get(&state.db, &caller, user_id).await.map_err(refused)?;
    let label = format!(
        "{} {} {} {}",
        EN.admin_link_body,
        issued.expires_at.format("%Y-%m-%d %H:%M UTC"),
        ADMIN.link_for,
        member.email
    );
    frame::keep_once(&state, &session, &link_subject(&caller.slug), &label, &issued.link).await?;
    Ok(Redirect::to(&format!("/admin/t/{}/members", caller.slug)).into_response())
}
