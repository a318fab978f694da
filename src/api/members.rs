//! `/api/v1/members`: the tenant's members (`crate::admin::members`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ApiCaller, ErrorBody, PageQuery};
use crate::admin::members::{self, Member, MemberProfile};
use crate::error::AppError;
use crate::extract::{Json, Query};
use crate::identity::profile::{Field, ProfileEdit};
use crate::identity::recovery::MemberAction;
use crate::state::AppState;
use crate::vocabulary::Role;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(get, update, remove))
        .routes(routes!(sign_out))
        .routes(routes!(reset_mfa))
        .routes(routes!(recovery_link))
        .routes(routes!(set_profile))
}

/// A page of members.
#[derive(Serialize, ToSchema)]
pub struct MemberPage {
    items: Vec<Member>,
    /// Pass as `cursor` for the next page; absent on the last.
    next_cursor: Option<String>,
}

/// `POST /members`: who to add, with which role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    #[schema(example = "ann@example.com", max_length = 254)]
    email: String,
    #[schema(value_type = String, example = "viewer")]
    role: Role,
}

/// `PATCH /members/{user_id}`: the new role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberUpdate {
    #[schema(value_type = String, example = "editor")]
    role: Role,
}

/// What signing a member out ended.
#[derive(Serialize, ToSchema)]
pub struct SignedOut {
    sessions_ended: u64,
    families_revoked: u64,
}

/// A one-time recovery link: shown once, never stored.
#[derive(Serialize, ToSchema)]
pub struct RecoveryLink {
    link: String,
    expires_at: DateTime<Utc>,
}

/// List the tenant's members.
#[utoipa::path(get, path = "/members", tag = "members", operation_id = "members_list",
    params(PageQuery),
    extensions(("x-permission" = json!("members.read"))),
    responses((status = 200, body = MemberPage), (status = "4XX", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Query(q): Query<PageQuery>,
) -> Result<axum::Json<MemberPage>, AppError> {
    let page = members::list(&state.db, &caller, &q.cursor()?).await?;
    Ok(axum::Json(MemberPage { items: page.items, next_cursor: page.next_cursor }))
}

/// Add a member. Someone without an account is invited: created without a password, to set
/// one through a recovery link. The answer is the same either way.
#[utoipa::path(post, path = "/members", tag = "members", operation_id = "members_add",
    request_body = NewMember,
    extensions(("x-permission" = json!("members.manage"))),
    responses((status = 201, body = Member), (status = "4XX", body = ErrorBody)))]
async fn add(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Json(body): Json<NewMember>,
) -> Result<Response, AppError> {
    let member = members::add(&state.db, &caller, &body.email, body.role).await?;
    Ok((StatusCode::CREATED, axum::Json(member)).into_response())
}

/// One member.
#[utoipa::path(get, path = "/members/{user_id}", tag = "members", operation_id = "members_get",
    params(("user_id" = Uuid, Path)),
    extensions(("x-permission" = json!("members.read"))),
    responses((status = 200, body = Member), (status = "4XX", body = ErrorBody)))]
async fn get(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(user_id): Path<Uuid>,
) -> Result<axum::Json<Member>, AppError> {
    Ok(axum::Json(members::get(&state.db, &caller, user_id).await?))
}

/// Change a member's role (the tenant's last admin cannot be demoted).
#[utoipa::path(patch, path = "/members/{user_id}", tag = "members", operation_id = "members_update",
    params(("user_id" = Uuid, Path)),
    request_body = MemberUpdate,
    extensions(("x-permission" = json!("members.manage"))),
    responses((status = 200, body = Member), (status = "4XX", body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(user_id): Path<Uuid>,
    Json(body): Json<MemberUpdate>,
) -> Result<axum::Json<Member>, AppError> {
    members::set_role(&state.db, &caller, user_id, body.role).await?;
    Ok(axum::Json(members::get(&state.db, &caller, user_id).await?))
}

/// Remove a member; their token families in this tenant end.
#[utoipa::path(delete, path = "/members/{user_id}", tag = "members", operation_id = "members_remove",
    params(("user_id" = Uuid, Path)),
    extensions(("x-permission" = json!("members.manage"))),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn remove(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(user_id): Path<Uuid>,
) -> Result<StatusCode, AppError> {
    members::remove(&state.db, &caller, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sign a member out everywhere: every session and token family of theirs ends.
#[utoipa::path(post, path = "/members/{user_id}/sign-out", tag = "members", operation_id = "members_sign_out",
    params(("user_id" = Uuid, Path)),
    extensions(("x-permission" = json!("members.recover"))),
    responses((status = 200, body = SignedOut), (status = "4XX", body = ErrorBody)))]
async fn sign_out(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(user_id): Path<Uuid>,
) -> Result<axum::Json<SignedOut>, AppError> {
    let ended = members::act_on(&state.db, &caller, user_id, MemberAction::SignOutEverywhere).await?;
    Ok(axum::Json(SignedOut { sessions_ended: ended.sessions, families_revoked: ended.families }))
}

/// Reset a member's second factor (they enrol again at their next sign-in) and sign them out.
#[utoipa::path(post, path = "/members/{user_id}/reset-mfa", tag = "members", operation_id = "members_reset_mfa",
    params(("user_id" = Uuid, Path)),
    extensions(("x-permission" = json!("members.recover"))),
    responses((status = 200, body = SignedOut), (status = "4XX", body = ErrorBody)))]
async fn reset_mfa(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(user_id): Path<Uuid>,
) -> Result<axum::Json<SignedOut>, AppError> {
    let ended = members::act_on(&state.db, &caller, user_id, MemberAction::ResetMfa).await?;
    crate::notify::send(&state, user_id, crate::notify::Notice::MfaReset).await;
    Ok(axum::Json(SignedOut { sessions_ended: ended.sessions, families_revoked: ended.families }))
}

/// Issue a one-time recovery link for a member (shown once).
#[utoipa::path(post, path = "/members/{user_id}/recovery-link", tag = "members",
    operation_id = "members_recovery_link",
    params(("user_id" = Uuid, Path)),
    extensions(("x-permission" = json!("members.recover"))),
    responses((status = 201, body = RecoveryLink), (status = "4XX", body = ErrorBody)))]
async fn recovery_link(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(user_id): Path<Uuid>,
) -> Result<Response, AppError> {
    let issued = members::recovery_link(&state.db, &state.config, &caller, user_id).await?;
    let body = RecoveryLink { link: issued.link, expires_at: issued.expires_at };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// `PATCH /members/{user_id}/profile`: the profile fields to change (OIDC Core §5.1). A field
/// left out stays as it is; `null` removes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 200, example = "Ann Lee")]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 200, example = "Ann")]
    given_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 200, example = "Lee")]
    family_name: Option<Option<String>>,
    /// No spaces.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 100, example = "ann")]
    preferred_username: Option<Option<String>>,
    /// A BCP 47 language tag.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 35, example = "nl-NL")]
    locale: Option<Option<String>>,
    /// An IANA time zone name.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 64, example = "Europe/Amsterdam")]
    zoneinfo: Option<Option<String>>,
    /// Whether the member's email address is verified (the `email_verified` claim).
    email_verified: Option<bool>,
}

/// A field that is present: `null` becomes `Some(None)` (remove it), where a missing field
/// stays `None` (keep it) through `#[serde(default)]`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl ProfileUpdate {
    fn edit(self) -> ProfileEdit {
        let field = |f: Option<Option<String>>| match f {
            None => Field::Keep,
            Some(None) => Field::Clear,
            Some(Some(v)) => Field::Set(v),
        };
        ProfileEdit {
            name: field(self.name),
            given_name: field(self.given_name),
            family_name: field(self.family_name),
            preferred_username: field(self.preferred_username),
            locale: field(self.locale),
            zoneinfo: field(self.zoneinfo),
            email_verified: self.email_verified,
        }
    }
}

/// Change a member's profile, audited as `user.profile_changed`. The member's profile is
/// theirs in every tenant they belong to, so someone who also belongs to a tenant the caller
/// does not administer is not found (the recovery rule).
#[utoipa::path(patch, path = "/members/{user_id}/profile", tag = "members", operation_id = "members_profile_update",
    params(("user_id" = Uuid, Path)),
    request_body = ProfileUpdate,
    extensions(("x-permission" = json!("members.manage"))),
    responses((status = 200, body = MemberProfile), (status = "4XX", body = ErrorBody)))]
async fn set_profile(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(user_id): Path<Uuid>,
    Json(body): Json<ProfileUpdate>,
) -> Result<axum::Json<MemberProfile>, AppError> {
    Ok(axum::Json(members::set_profile(&state.db, &caller, user_id, &body.edit()).await?))
}
