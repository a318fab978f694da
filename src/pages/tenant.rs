//! Choosing the tenant for a multi-tenant client.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use crate::db::memberships::MembershipOf;
use crate::error::AppError;
use crate::extract::Query;
use crate::html::text::{Text, Words};
use crate::protocol::authorize::proceed::choosable_tenants;
use crate::protocol::authorize::reply::{expired_request, origin_of};
use crate::render::render;
use crate::session::{self, PageLang, SessionForm};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "select_tenant.html")]
struct TenantPage<'a> {
    t: &'static Text,
    csrf: &'a str,
    req: &'a str,
    client_name: &'a str,
    tenants: &'a [MembershipOf],
}

#[derive(Debug, Deserialize)]
pub struct TenantQuery {
    req: String,
}

/// `GET /select-tenant?req=…`.
pub async fn show(
    State(state): State<AppState>,
    session: Session,
    lang: PageLang,
    Query(q): Query<TenantQuery>,
) -> Result<Response, AppError> {
    let (Some(p), Some(who)) = (session::pending(&session, &q.req).await?, session::signed_in(&session).await?) else {
        return Err(expired_request());
    };
    let Some(client) = crate::clients::find(&state.db, &p.client_id).await? else {
        return Err(expired_request());
    };
    let tenants = choosable_tenants(&state, &client, who.user_id).await?;
    let client_name = crate::pages::login::client_name(&state, &p).await?.unwrap_or_default();
    let csrf = session::csrf_token(&session).await?;
    let page = TenantPage { t: lang.text(), csrf: &csrf, req: &p.id, client_name: &client_name, tenants: &tenants };
    Ok(render(StatusCode::OK, &page, &[origin_of(&p.redirect_uri)]))
}

#[derive(Debug, Deserialize)]
pub struct TenantForm {
    csrf: String,
    req: String,
    tenant: String,
}

crate::session::csrf_field!(TenantForm);

/// `POST /select-tenant`: only one of the user's own memberships can be chosen.
pub async fn submit(
    State(state): State<AppState>,
    session: Session,
    SessionForm(form): SessionForm<TenantForm>,
) -> Result<Response, AppError> {
    let (Some(mut p), Some(who)) = (session::pending(&session, &form.req).await?, session::signed_in(&session).await?)
    else {
        return Err(expired_request());
    };
    // Only a multi-tenant client lets the user choose, among the tenants it may have.
    let Some(client) = crate::clients::find(&state.db, &p.client_id).await?.filter(|c| c.multi_tenant) else {
        return Err(expired_request());
    };
    let tenants = choosable_tenants(&state, &client, who.user_id).await?;
    let Some(chosen) = tenants.iter().find(|m| m.slug == form.tenant) else {
        return Err(crate::render::page_error(
            StatusCode::BAD_REQUEST,
            Words::Of(|t| t.error_unknown_organisation_title),
            Words::Of(|t| t.error_unknown_organisation_body),
        ));
    };
    p.tenant = Some(chosen.tenant_id);
    p.prompt_select_account = false;
    session::save_pending(&session, &p).await?;
    Ok(Redirect::to(&format!("/authorize/continue?req={}", p.id)).into_response())
}
