//! `/admin/t/{slug}/devices`: the devices signed in through the device grant (RFC 8628), and
//! revoking one.

use axum::extract::Path;
use axum::response::Response;
use uuid::Uuid;

use super::families::{self, Kind};
use super::{Button, Ctx, PageQuery};
use crate::admin;
use crate::error::AppError;
use crate::extract::Query;

/// `GET /admin/t/{slug}/devices`.
pub async fn list(ctx: Ctx, Query(q): Query<PageQuery>) -> Result<Response, AppError> {
    let page = ctx.page(&q, async |db, caller, cursor| admin::devices::list(db, caller, None, cursor).await).await?;
    families::show(&ctx, Kind::Devices, page).await
}

/// `POST /admin/t/{slug}/devices/{family}/revoke`.
pub async fn revoke(ctx: Ctx, Path((_, family)): Path<(String, Uuid)>, _: Button) -> Result<Response, AppError> {
    ctx.act(admin::devices::revoke(&ctx.state.db, &ctx.caller, family), "/devices", ctx.a().device_revoked).await
}
