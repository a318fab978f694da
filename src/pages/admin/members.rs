//! `/admin/t/{slug}/members`: the members of an organisation; adding someone by email with a
//! role, changing a role, removing; and acting on a member's sign-ins (second-factor reset, a
//! recovery link shown once, sign out everywhere); inviting by email, and withdrawing an open
//! invitation.

use askama::Template;
use axum::extract::Path;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::frame::{self, Frame, Section, Shown};
use super::{Button, Ctx, PageQuery, ok};
use crate::admin::{self, Action};
use crate::error::AppError;
use crate::extract::Query;
use crate::html::text::{AdminText, Text};
use crate::identity::recovery::MemberAction;
use crate::notify;
use crate::service_error::ServiceError;
use crate::session::{self, SessionForm};
use crate::vocabulary::Role;

#[derive(Template)]
#[template(path = "admin/members.html")]
struct MembersPage<'a> {
    t: &'static Text,
    a: &'static AdminText,
    f: &'a Frame,
    members: &'a [admin::members::Member],
    invitations: &'a [admin::invitations::Invitation],
    next: Option<String>,
    link: Option<Shown>,
    roles: &'static [Role],
}

/// The subject under which a recovery link waits for the members page (`frame::keep_once`).
fn link_subject(slug: &str) -> String {
    format!("members:{slug}")
}

/// A member's id in the path `…/members/{user_id}/…`.
type MemberPath = Path<(String, Uuid)>;

/// `GET /admin/t/{slug}/members`.
pub async fn list(ctx: Ctx, Query(q): Query<PageQuery>) -> Result<Response, AppError> {
    let page = ctx.page(&q, admin::members::list).await?;
    let f = ctx.frame(Section::Members).await?;
    let link = frame::take_once(&ctx.state, &ctx.session, &link_subject(&ctx.caller.slug)).await?;
    let invitations = admin::invitations::list(&ctx.state.db, &ctx.caller).await.map_err(ctx.refused())?;
    ok(&MembersPage {
        t: ctx.t(),
        a: ctx.a(),
        f: &f,
        members: &page.items,
        invitations: &invitations,
        next: page.next_cursor,
        link,
        roles: Role::ALL,
    })
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

/// The form of `POST …/invitations`: like adding, but by a mailed link.
pub type InviteForm = AddForm;

/// `POST /admin/t/{slug}/members`: adds the person with this email (invited when they have
/// no account; the page says the same either way, so it tells nothing of other tenants).
pub async fn add(ctx: Ctx, SessionForm(form): SessionForm<AddForm>) -> Result<Response, AppError> {
    if form.email.len() > 320 {
        return Err(ctx.refused()(ServiceError::Invalid("the email address is too long".into())));
    }
    let added =
        admin::members::add(&ctx.state.db, &ctx.caller, form.email.trim(), form.role).await.map_err(ctx.refused())?;
    ctx.done("/members", &format!("{} {} ({})", ctx.a().member_added, added.email, added.role)).await
}

/// `POST /admin/t/{slug}/members/{user_id}/role`.
pub async fn set_role(
    ctx: Ctx,
    Path((_, user_id)): MemberPath,
    SessionForm(form): SessionForm<RoleForm>,
) -> Result<Response, AppError> {
    let change =
        admin::members::set_role(&ctx.state.db, &ctx.caller, user_id, form.role).await.map_err(ctx.refused())?;
    ctx.done("/members", &format!("{} {} → {}", ctx.a().member_role_changed, change.previous_role, form.role)).await
}

/// `POST /admin/t/{slug}/members/{user_id}/remove`.
pub async fn remove(ctx: Ctx, Path((_, user_id)): MemberPath, _: Button) -> Result<Response, AppError> {
    admin::members::remove(&ctx.state.db, &ctx.caller, user_id).await.map_err(ctx.refused())?;
    if ctx.caller.user_id() == Some(user_id) {
        // Someone who leaves an organisation has nothing of it to administer any more.
        return super::done(&ctx.session, super::INDEX, ctx.a().member_removed).await;
    }
    ctx.done("/members", ctx.a().member_removed).await
}

/// `POST /admin/t/{slug}/members/{user_id}/reset-mfa`.
pub async fn reset_mfa(ctx: Ctx, Path((_, user_id)): MemberPath, _: Button) -> Result<Response, AppError> {
    // Their own second factor is gone, and with it this session.
    let notice = ctx.t().admin_mfa_reset_done;
    act_on(ctx, user_id, MemberAction::ResetMfa, notice).await
}

/// `POST /admin/t/{slug}/members/{user_id}/sign-out`: signs the member out everywhere.
pub async fn sign_out(ctx: Ctx, Path((_, user_id)): MemberPath, _: Button) -> Result<Response, AppError> {
    // An admin who signs themselves out everywhere is signed out here too.
    let notice = ctx.t().admin_sign_out_done;
    act_on(ctx, user_id, MemberAction::SignOutEverywhere, notice).await
}

/// Acts on a member's sign-ins; when the member is the caller, this session ends too and the
/// answer is the sign-in page.
async fn act_on(ctx: Ctx, user_id: Uuid, action: MemberAction, notice: &str) -> Result<Response, AppError> {
    admin::members::act_on(&ctx.state.db, &ctx.caller, user_id, action).await.map_err(ctx.refused())?;
    if matches!(action, MemberAction::ResetMfa) {
        notify::send(&ctx.state, user_id, notify::Notice::MfaReset).await;
    }
    if ctx.caller.user_id() == Some(user_id) {
        session::sign_out(&ctx.session).await?;
        return Ok(Redirect::to("/login").into_response());
    }
    ctx.done("/members", notice).await
}

/// `POST /admin/t/{slug}/members/{user_id}/recovery-link`: the members page shows the link
/// once, after the redirect.
pub async fn recovery_link(ctx: Ctx, Path((_, user_id)): MemberPath, _: Button) -> Result<Response, AppError> {
    let (db, caller) = (&ctx.state.db, &ctx.caller);
    let issued = admin::members::recovery_link(db, &ctx.state.config, caller, user_id).await.map_err(ctx.refused())?;
    let member = admin::members::get(db, caller, user_id).await.map_err(ctx.refused())?;
    let label = format!(
        "{} {} {} {}",
        ctx.t().admin_link_body,
        issued.expires_at.format("%Y-%m-%d %H:%M UTC"),
        ctx.a().link_for,
        member.email
    );
    frame::keep_once(&ctx.state, &ctx.session, &link_subject(&caller.slug), &label, &issued.link).await?;
    Ok(Redirect::to(&ctx.path("/members")).into_response())
}

/// `POST /admin/t/{slug}/invitations`: invites the address with the role and mails the link,
/// in this page's language; the notice is the same whether or not the address has an account.
pub async fn invite(ctx: Ctx, SessionForm(form): SessionForm<InviteForm>) -> Result<Response, AppError> {
    if form.email.len() > 320 {
        return Err(ctx.refused()(ServiceError::Invalid("the email address is too long".into())));
    }
    let (state, caller) = (&ctx.state, &ctx.caller);
    let invited = admin::invitations::invite(&state.db, &state.config, caller, form.email.trim(), form.role)
        .await
        .map_err(ctx.refused())?;
    state.mailer.send_later(notify::invitation_mail(ctx.lang, &invited));
    ctx.done("/members", &format!("{} {} ({})", ctx.a().invitation_sent, invited.email, invited.role)).await
}

/// `POST /admin/t/{slug}/invitations/{id}/withdraw`.
pub async fn withdraw(ctx: Ctx, Path((_, id)): Path<(String, Uuid)>, _: Button) -> Result<Response, AppError> {
    admin::invitations::withdraw(&ctx.state.db, &ctx.caller, id).await.map_err(ctx.refused())?;
    ctx.done("/members", ctx.a().invitation_withdrawn).await
}
