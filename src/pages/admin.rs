//! The admin pages: the organisations a user administers, their members, and recovery
//! (second-factor reset, one-time recovery link). Only for a session that passed MFA.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

use crate::db;
use crate::error::AppError;
use crate::html::text::{EN, Text};
use crate::identity::recovery;
use crate::pages::mfa::NoticePage;
use crate::protocol::meta::RequestMeta;
use crate::render::render;
use crate::session::{self, SessionForm, SignedIn};
use crate::state::AppState;
use crate::vocabulary::Role;

/// A member as the admin page lists them.
#[derive(Debug, sqlx::FromRow)]
pub struct MemberLine {
    pub user_id: Uuid,
    pub email: String,
    pub role: Role,
    pub mfa: bool,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage<'a> {
    t: &'static Text,
    csrf: &'a str,
    /// (slug, name) of each organisation the user administers.
    tenants: &'a [(String, String)],
    current_slug: Option<&'a str>,
    members: &'a [MemberLine],
    notice: Option<&'a str>,
}

/// An administrator's session: signed in with a second factor. Otherwise a redirect to sign in
/// (or step up) and come back.
async fn admin_session(session: &Session) -> Result<Result<SignedIn, Response>, AppError> {
    match session::signed_in(session).await? {
        Some(who) if who.has_mfa() => Ok(Ok(who)),
        Some(_) => {
            session::set_return_to(session, "/admin").await?;
            Ok(Err(Redirect::to("/login/mfa").into_response()))
        }
        None => {
            session::set_return_to(session, "/admin").await?;
            Ok(Err(Redirect::to("/login").into_response()))
        }
    }
}

/// The organisations the user administers: every one for a platform admin.
async fn administered(state: &AppState, user_id: Uuid) -> Result<Vec<(Uuid, String, String)>, AppError> {
    let mut tx = state.db.unscoped().await?;
    let mine = db::memberships::of_user(&mut tx, user_id).await?;
    let platform = db::tenants::platform(&mut tx).await?;
    let list = if mine.iter().any(|m| m.role == Role::Admin && Some(m.tenant_id) == platform) {
        db::tenants::list(&mut tx).await?.into_iter().map(|(id, slug)| (id, slug.clone(), slug)).collect()
    } else {
        mine.into_iter().filter(|m| m.role == Role::Admin).map(|m| (m.tenant_id, m.slug, m.name)).collect()
    };
    tx.commit().await?;
    Ok(list)
}

/// `GET /admin`.
pub async fn index(State(state): State<AppState>, session: Session) -> Result<Response, AppError> {
    let who = match admin_session(&session).await? {
        Ok(w) => w,
        Err(r) => return Ok(r),
    };
    let tenants = administered(&state, who.user_id).await?;
    page(&state, &session, &tenants, None, None).await
}

async fn page(
    state: &AppState,
    session: &Session,
    tenants: &[(Uuid, String, String)],
    current: Option<(Uuid, &str)>,
    notice: Option<&str>,
) -> Result<Response, AppError> {
    let members = match current {
        Some((tenant_id, _)) => {
            let mut tx = state.db.tenant(tenant_id).await?;
            let rows = db::memberships::members(&mut tx).await?;
            tx.commit().await?;
            rows.into_iter().map(|(user_id, email, role, mfa)| MemberLine { user_id, email, role, mfa }).collect()
        }
        None => Vec::new(),
    };
    let list: Vec<(String, String)> = tenants.iter().map(|(_, slug, name)| (slug.clone(), name.clone())).collect();
    let csrf = session::csrf_token(session).await?;
    let page = AdminPage {
        t: &EN,
        csrf: &csrf,
        tenants: &list,
        current_slug: current.map(|c| c.1),
        members: &members,
        notice,
    };
    Ok(render(StatusCode::OK, &page, &[]))
}

/// The administered tenant of a slug; a tenant the user does not administer is a 404 like a
/// missing one.
async fn tenant_for(
    state: &AppState,
    who: &SignedIn,
    slug: &str,
) -> Result<(Vec<(Uuid, String, String)>, Uuid), AppError> {
    let tenants = administered(state, who.user_id).await?;
    let id = tenants.iter().find(|t| t.1 == slug).map(|t| t.0).ok_or(AppError::NotFound)?;
    Ok((tenants, id))
}

/// `GET /admin/t/{slug}`: the members of one organisation.
pub async fn tenant(
    State(state): State<AppState>,
    session: Session,
    Path(slug): Path<String>,
) -> Result<Response, AppError> {
    let who = match admin_session(&session).await? {
        Ok(w) => w,
        Err(r) => return Ok(r),
    };
    let (tenants, id) = tenant_for(&state, &who, &slug).await?;
    page(&state, &session, &tenants, Some((id, &slug)), None).await
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

crate::session::csrf_field!(CsrfForm);

/// An administrator acting on a member of one of their organisations.
struct Acting {
    who: SignedIn,
    /// The organisations they administer (for the page shown after).
    tenants: Vec<(Uuid, String, String)>,
    tenant_id: Uuid,
    actor: crate::db::audit::Actor,
}

/// The admin session behind a member action, and the organisation of `slug` (a 404 when they
/// do not administer it); a redirect to sign in or step up otherwise.
async fn acting(
    state: &AppState,
    session: &Session,
    meta: &RequestMeta,
    slug: &str,
) -> Result<Result<Acting, Response>, AppError> {
    let who = match admin_session(session).await? {
        Ok(w) => w,
        Err(r) => return Ok(Err(r)),
    };
    let (tenants, tenant_id) = tenant_for(state, &who, slug).await?;
    let actor = meta.actor("user", Some(who.user_id.to_string()));
    Ok(Ok(Acting { who, tenants, tenant_id, actor }))
}

/// `POST /admin/t/{slug}/members/{user_id}/reset-mfa`.
pub async fn reset_mfa(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Path((slug, target)): Path<(String, Uuid)>,
    _checked: SessionForm<CsrfForm>,
) -> Result<Response, AppError> {
    let Acting { tenants, tenant_id: id, actor, .. } = match acting(&state, &session, &meta, &slug).await? {
        Ok(a) => a,
        Err(to_sign_in) => return Ok(to_sign_in),
    };
    recovery::reset_mfa(&state.db, &actor, id, target).await?.ok_or(AppError::NotFound)?;
    page(&state, &session, &tenants, Some((id, &slug)), Some(EN.admin_mfa_reset_done)).await
}

/// `POST /admin/t/{slug}/members/{user_id}/sign-out`: signs the member out everywhere.
pub async fn sign_out_everywhere(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Path((slug, target)): Path<(String, Uuid)>,
    _checked: SessionForm<CsrfForm>,
) -> Result<Response, AppError> {
    let Acting { who, tenants, tenant_id: id, actor } = match acting(&state, &session, &meta, &slug).await? {
        Ok(a) => a,
        Err(to_sign_in) => return Ok(to_sign_in),
    };
    recovery::sign_out_everywhere(&state.db, &actor, id, target).await?.ok_or(AppError::NotFound)?;
    if target == who.user_id {
        // An admin who signs themselves out everywhere is signed out here too.
        session::sign_out(&session).await?;
        return Ok(Redirect::to("/login").into_response());
    }
    page(&state, &session, &tenants, Some((id, &slug)), Some(EN.admin_sign_out_done)).await
}

/// `POST /admin/t/{slug}/members/{user_id}/recovery-link`: the link is shown once.
pub async fn recovery_link(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Path((slug, target)): Path<(String, Uuid)>,
    _checked: SessionForm<CsrfForm>,
) -> Result<Response, AppError> {
    let Acting { tenant_id: id, actor, .. } = match acting(&state, &session, &meta, &slug).await? {
        Ok(a) => a,
        Err(to_sign_in) => return Ok(to_sign_in),
    };
    let issued = recovery::issue_link(&state.db, &state.config, &actor, id, target).await?.ok_or(AppError::NotFound)?;
    let body = format!("{} {}", EN.admin_link_body, issued.expires_at.format("%Y-%m-%d %H:%M UTC"));
    let back = format!("/admin/t/{slug}");
    let notice =
        NoticePage { t: &EN, title: EN.admin_link_title, body: &body, code: Some(&issued.link), next: Some(&back) };
    Ok(render(StatusCode::OK, &notice, &[]))
}
