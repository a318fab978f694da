//! `/api/v1/sessions`: the tenant's live sessions, what a sign-in through one of its clients
//! issued (`crate::admin::sessions`). A person's browser sign-in at this provider is theirs
//! across tenants, not the tenant's: it ends with `POST /members/{user_id}/sign-out`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::devices::FamilyQuery;
use super::{ApiCaller, ErrorBody};
use crate::admin::sessions::{self, SessionView};
use crate::error::AppError;
use crate::extract::Query;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(end))
}

/// A page of sessions.
#[derive(Serialize, ToSchema)]
pub struct SessionPage {
    items: Vec<SessionView>,
    /// Pass as `cursor` for the next page; absent on the last.
    next_cursor: Option<String>,
}

/// List the tenant's live sessions (token families not begun by the device grant). Browser
/// sign-ins are not listed: they are the person's, across tenants.
#[utoipa::path(get, path = "/sessions", tag = "sessions", operation_id = "sessions_list",
    params(FamilyQuery),
    extensions(("x-permission" = json!("sessions.read"))),
    responses((status = 200, body = SessionPage), (status = "4XX", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Query(q): Query<FamilyQuery>,
) -> Result<axum::Json<SessionPage>, AppError> {
    let page = sessions::list(&state.db, &caller, q.user_id, &q.cursor()?).await?;
    Ok(axum::Json(SessionPage { items: page.items, next_cursor: page.next_cursor }))
}

/// End a session: its refresh and access tokens end. To end a member's browser sign-in too,
/// sign them out everywhere (`POST /members/{user_id}/sign-out`).
#[utoipa::path(delete, path = "/sessions/{family_id}", tag = "sessions", operation_id = "sessions_end",
    params(("family_id" = Uuid, Path)),
    extensions(("x-permission" = json!("sessions.end"))),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn end(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(family_id): Path<Uuid>,
) -> Result<StatusCode, AppError> {
    sessions::end(&state.db, &caller, family_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
