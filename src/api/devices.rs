//! `/api/v1/devices`: the devices signed in to the tenant through the device grant
//! (`crate::admin::devices`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ApiCaller, ErrorBody, PageQuery};
use crate::admin::devices::{self, DeviceView};
use crate::error::AppError;
use crate::extract::Query;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(revoke))
}

/// `cursor`, `limit`, and a member to show the families of.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FamilyQuery {
    /// Only this member's.
    pub user_id: Option<Uuid>,
    /// The `next_cursor` of the page before.
    pub cursor: Option<String>,
    /// Items per page, 1-200 (default 50).
    pub limit: Option<u32>,
}

impl FamilyQuery {
    pub fn cursor(&self) -> Result<crate::admin::Cursor, AppError> {
        PageQuery { cursor: self.cursor.clone(), limit: self.limit }.cursor()
    }
}

/// A page of devices.
#[derive(Serialize, ToSchema)]
pub struct DevicePage {
    items: Vec<DeviceView>,
    /// Pass as `cursor` for the next page; absent on the last.
    next_cursor: Option<String>,
}

/// List the devices signed in to the tenant (live families begun by the device grant).
#[utoipa::path(get, path = "/devices", tag = "devices", operation_id = "devices_list",
    params(FamilyQuery),
    extensions(("x-permission" = json!("devices.read"))),
    responses((status = 200, body = DevicePage), (status = "4XX", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Query(q): Query<FamilyQuery>,
) -> Result<axum::Json<DevicePage>, AppError> {
    let page = devices::list(&state.db, &caller, q.user_id, &q.cursor()?).await?;
    Ok(axum::Json(DevicePage { items: page.items, next_cursor: page.next_cursor }))
}

/// Revoke a device: its refresh and access tokens end; it must ask again.
#[utoipa::path(delete, path = "/devices/{family_id}", tag = "devices", operation_id = "devices_revoke",
    params(("family_id" = Uuid, Path)),
    extensions(("x-permission" = json!("devices.manage"))),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn revoke(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(family_id): Path<Uuid>,
) -> Result<StatusCode, AppError> {
    devices::revoke(&state.db, &caller, family_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
