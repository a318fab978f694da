//! `/api/v1/platform/tenants`: tenants, for platform admins (`crate::admin::platform`).
//! Everyone else gets a 404 on every route here, as for a route that does not exist.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiCaller, ErrorBody, PageQuery};
use crate::admin::platform::{self, AppointedAdmin, CreatedTenant, NewTenant, TenantView};
use crate::error::AppError;
use crate::extract::{Json, Query};
use crate::state::AppState;
use crate::tenancy::TenantStatusChange;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get))
        .routes(routes!(suspend))
        .routes(routes!(reactivate))
        .routes(routes!(appoint))
}

/// A page of tenants.
#[derive(Serialize, ToSchema)]
pub struct TenantPage {
    items: Vec<TenantView>,
    /// Pass as `cursor` for the next page; absent on the last.
    next_cursor: Option<String>,
}

/// `POST /platform/tenants`: a tenant and its first admin.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantBody {
    /// 1-63 of a-z, 0-9 and `-`.
    #[schema(example = "globex", max_length = 63)]
    slug: String,
    #[schema(example = "Globex Corporation", max_length = 200)]
    name: String,
    /// Invited when they have no account; the answer then holds a recovery link for them.
    #[schema(example = "hank@globex.example", max_length = 254)]
    admin_email: String,
}

/// `POST /platform/tenants/{slug}/admins`: who to make admin.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminBody {
    #[schema(example = "hank@globex.example", max_length = 254)]
    email: String,
}

/// A tenant's status after a suspension or reactivation.
#[derive(Serialize, ToSchema)]
pub struct TenantStatusBody {
    slug: String,
    #[schema(example = "suspended")]
    status: String,
    /// False when the tenant already had this status.
    changed: bool,
}

impl From<TenantStatusChange> for TenantStatusBody {
    fn from(c: TenantStatusChange) -> Self {
        Self { slug: c.slug, status: c.status.as_str().to_owned(), changed: c.changed }
    }
}

/// Every tenant, by slug.
#[utoipa::path(get, path = "/platform/tenants", tag = "platform", operation_id = "platform_tenants_list",
    params(PageQuery),
    extensions(("x-permission" = json!("tenants.manage"))),
    responses((status = 200, body = TenantPage), (status = "4XX", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Query(q): Query<PageQuery>,
) -> Result<axum::Json<TenantPage>, AppError> {
    let page = platform::list_tenants(&state.db, &caller, &q.cursor()?).await?;
    Ok(axum::Json(TenantPage { items: page.items, next_cursor: page.next_cursor }))
}

/// Create a tenant with its first admin. An admin who has no password yet (an invited one)
/// gets a one-time recovery link in the answer, shown once.
#[utoipa::path(post, path = "/platform/tenants", tag = "platform", operation_id = "platform_tenants_create",
    request_body = TenantBody,
    extensions(("x-permission" = json!("tenants.manage"))),
    responses((status = 201, body = CreatedTenant), (status = "4XX", body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Json(body): Json<TenantBody>,
) -> Result<Response, AppError> {
    let new = NewTenant { slug: body.slug, name: body.name, admin_email: body.admin_email };
    let created = platform::create_tenant(&state.db, &state.config, &caller, new).await?;
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

/// One tenant.
#[utoipa::path(get, path = "/platform/tenants/{slug}", tag = "platform", operation_id = "platform_tenants_get",
    params(("slug" = String, Path)),
    extensions(("x-permission" = json!("tenants.manage"))),
    responses((status = 200, body = TenantView), (status = "4XX", body = ErrorBody)))]
async fn get(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(slug): Path<String>,
) -> Result<axum::Json<TenantView>, AppError> {
    Ok(axum::Json(platform::get_tenant(&state.db, &caller, &slug).await?))
}

/// Suspend a tenant: its clients, sign-ins and tokens stop working at once; nothing is
/// deleted. The platform tenant cannot be suspended.
#[utoipa::path(post, path = "/platform/tenants/{slug}/suspend", tag = "platform",
    operation_id = "platform_tenants_suspend",
    params(("slug" = String, Path)),
    extensions(("x-permission" = json!("tenants.manage"))),
    responses((status = 200, body = TenantStatusBody), (status = "4XX", body = ErrorBody)))]
async fn suspend(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(slug): Path<String>,
) -> Result<axum::Json<TenantStatusBody>, AppError> {
    Ok(axum::Json(platform::set_suspended(&state.db, &caller, &slug, true).await?.into()))
}

/// Reactivate a suspended tenant: everything works again.
#[utoipa::path(post, path = "/platform/tenants/{slug}/reactivate", tag = "platform",
    operation_id = "platform_tenants_reactivate",
    params(("slug" = String, Path)),
    extensions(("x-permission" = json!("tenants.manage"))),
    responses((status = 200, body = TenantStatusBody), (status = "4XX", body = ErrorBody)))]
async fn reactivate(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(slug): Path<String>,
) -> Result<axum::Json<TenantStatusBody>, AppError> {
    Ok(axum::Json(platform::set_suspended(&state.db, &caller, &slug, false).await?.into()))
}

/// Make someone an admin of a tenant: added (invited when they have no account) or promoted.
/// One without a password gets a one-time recovery link in the answer.
#[utoipa::path(post, path = "/platform/tenants/{slug}/admins", tag = "platform",
    operation_id = "platform_tenants_appoint_admin",
    params(("slug" = String, Path)),
    request_body = AdminBody,
    extensions(("x-permission" = json!("tenants.manage"))),
    responses((status = 200, body = AppointedAdmin), (status = "4XX", body = ErrorBody)))]
async fn appoint(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(slug): Path<String>,
    Json(body): Json<AdminBody>,
) -> Result<axum::Json<AppointedAdmin>, AppError> {
    Ok(axum::Json(platform::appoint_admin(&state.db, &state.config, &caller, &slug, &body.email).await?))
}
