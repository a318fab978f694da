//! `/admin/t/{slug}/sessions`: the live sign-ins of applications (token families not begun by
//! the device grant), and ending one.

use axum::extract::Path;
use axum::response::Response;
use uuid::Uuid;

use super::families::{self, Kind};
use super::{Button, Ctx, PageQuery};
use crate::admin;
use crate::error::AppError;
use crate::extract::Query;

/// `GET /admin/t/{slug}/sessions`.
pub async fn list(ctx: Ctx, Query(q): Query<PageQuery>) -> Result<Response, AppError> {
    let page = ctx.page(&q, async |db, caller, cursor| admin::sessions::list(db, caller, None, cursor).await).await?;
    families::show(&ctx, Kind::Sessions, page).await
}

/// `POST /admin/t/{slug}/sessions/{family}/end`.
pub async fn end(ctx: Ctx, Path((_, family)): Path<(String, Uuid)>, _: Button) -> Result<Response, AppError> {
    ctx.act(admin::sessions::end(&ctx.state.db, &ctx.caller, family), "/sessions", ctx.a().session_ended).await
}
