//! `/api/v1/invitations`: invitations to the tenant by email (`crate::admin::invitations`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ApiCaller, ErrorBody};
use crate::admin::invitations::{self, Invitation};
use crate::error::AppError;
use crate::extract::Json;
use crate::session::PageLang;
use crate::state::AppState;
use crate::vocabulary::Role;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(withdraw))
}

/// The tenant's open invitations.
#[derive(Serialize, ToSchema)]
pub struct InvitationList {
    items: Vec<Invitation>,
}

/// `POST /invitations`: who to invite, with which role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    #[schema(example = "ann@example.com", max_length = 254)]
    email: String,
    #[schema(value_type = String, example = "viewer")]
    role: Role,
}

/// List the open invitations (not accepted, withdrawn or expired), newest first, at most 200.
#[utoipa::path(get, path = "/invitations", tag = "members", operation_id = "invitations_list",
    extensions(("x-permission" = json!("members.read"))),
    responses((status = 200, body = InvitationList), (status = "4XX", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<axum::Json<InvitationList>, AppError> {
    Ok(axum::Json(InvitationList { items: invitations::list(&state.db, &caller).await? }))
}

/// Invite someone by email: a one-time link is mailed to the address (in the language of the
/// request's `Accept-Language`), which creates their account or links the one they have, adds
/// the membership and verifies the address. Inviting an address again replaces its open
/// invitation. The answer is the same whether or not the address has an account.
#[utoipa::path(post, path = "/invitations", tag = "members", operation_id = "invitations_create",
    request_body = NewInvitation,
    extensions(("x-permission" = json!("members.manage"))),
    responses((status = 201, body = Invitation), (status = "4XX", body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    PageLang(lang): PageLang,
    Json(body): Json<NewInvitation>,
) -> Result<Response, AppError> {
    let invited = invitations::invite(&state.db, &state.config, &caller, &body.email, body.role).await?;
    state.mailer.send_later(crate::notify::invitation_mail(lang, &invited));
    Ok((StatusCode::CREATED, axum::Json(Invitation::from(&invited))).into_response())
}

/// Withdraw an open invitation: its link stops working.
#[utoipa::path(delete, path = "/invitations/{invitation_id}", tag = "members", operation_id = "invitations_withdraw",
    params(("invitation_id" = Uuid, Path)),
    extensions(("x-permission" = json!("members.manage"))),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn withdraw(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, AppError> {
    invitations::withdraw(&state.db, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
