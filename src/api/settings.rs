//! `/api/v1/settings`: the tenant's settings (`crate::admin::settings`).

use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiCaller, ErrorBody};
use crate::admin::settings::{self, SettingsChange, TenantSettings};
use crate::error::AppError;
use crate::extract::Json;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get, update))
}

/// `PATCH /settings`: what to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    /// Every member needs a second factor at their next sign-in for this tenant.
    require_mfa: Option<bool>,
}

/// The tenant's settings.
#[utoipa::path(get, path = "/settings", tag = "settings", operation_id = "settings_get",
    extensions(("x-permission" = json!("settings.read"))),
    responses((status = 200, body = TenantSettings), (status = "4XX", body = ErrorBody)))]
async fn get(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<axum::Json<TenantSettings>, AppError> {
    Ok(axum::Json(settings::get(&state.db, &caller).await?))
}

/// Change the tenant's settings (audited as `tenant.mfa_policy_changed`).
#[utoipa::path(patch, path = "/settings", tag = "settings", operation_id = "settings_update",
    request_body = SettingsPatch,
    extensions(("x-permission" = json!("settings.manage"))),
    responses((status = 200, body = TenantSettings), (status = "4XX", body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Json(body): Json<SettingsPatch>,
) -> Result<axum::Json<TenantSettings>, AppError> {
    let change = SettingsChange { require_mfa: body.require_mfa };
    Ok(axum::Json(settings::update(&state.db, &caller, change).await?))
}
