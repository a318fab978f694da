//! `/api/v1/resource-servers`: the tenant's APIs, for resource indicators (RFC 8707;
//! `crate::admin::resources`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ApiCaller, ErrorBody};
use crate::admin::resources::{self, Resource};
use crate::clients::resources::{ResourceChange, ResourceRequest};
use crate::error::AppError;
use crate::extract::Json;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(update, delete))
}

/// The tenant's APIs.
#[derive(Serialize, ToSchema)]
pub struct ResourceList {
    items: Vec<Resource>,
}

/// `POST /resource-servers`: an API to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewResource {
    /// An absolute URI without a fragment or query; compared as the exact string.
    #[schema(example = "https://orders.example.com/", max_length = 255)]
    identifier: String,
    #[schema(example = "Orders API", max_length = 200)]
    name: String,
    #[serde(default)]
    #[schema(max_items = 50)]
    scopes: Vec<String>,
    #[serde(default)]
    #[schema(max_items = 200)]
    client_ids: Vec<String>,
}

/// `PATCH /resource-servers/{id}`: each field given replaces the registered one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourcePatch {
    #[schema(max_length = 200)]
    name: Option<String>,
    #[schema(max_items = 50)]
    scopes: Option<Vec<String>>,
    #[schema(max_items = 200)]
    client_ids: Option<Vec<String>>,
}

/// List the tenant's APIs, by identifier.
#[utoipa::path(get, path = "/resource-servers", tag = "clients", operation_id = "resource_servers_list",
    extensions(("x-permission" = json!("clients.read"))),
    responses((status = 200, body = ResourceList), (status = "4XX", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<axum::Json<ResourceList>, AppError> {
    Ok(axum::Json(ResourceList { items: resources::list(&state.db, &caller).await? }))
}

/// Register an API: a client it allows may name it in `resource` at the authorization and
/// token endpoints, and gets an access token whose `aud` is its identifier.
#[utoipa::path(post, path = "/resource-servers", tag = "clients", operation_id = "resource_servers_create",
    request_body = NewResource,
    extensions(("x-permission" = json!("clients.manage"))),
    responses((status = 201, body = Resource), (status = "4XX", body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Json(body): Json<NewResource>,
) -> Result<Response, AppError> {
    let req = ResourceRequest {
        identifier: body.identifier,
        name: body.name,
        scopes: body.scopes,
        client_ids: body.client_ids,
    };
    let created = resources::register(&state.db, &caller, req).await?;
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

/// Change an API's name, scopes or allowed clients.
#[utoipa::path(patch, path = "/resource-servers/{resource_server_id}", tag = "clients",
    operation_id = "resource_servers_update",
    params(("resource_server_id" = Uuid, Path)),
    request_body = ResourcePatch,
    extensions(("x-permission" = json!("clients.manage"))),
    responses((status = 200, body = Resource), (status = "4XX", body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Uuid>,
    Json(body): Json<ResourcePatch>,
) -> Result<axum::Json<Resource>, AppError> {
    let change = ResourceChange { name: body.name, scopes: body.scopes, client_ids: body.client_ids };
    Ok(axum::Json(resources::update(&state.db, &caller, id, change).await?))
}

/// Remove an API: no new token is issued for it.
#[utoipa::path(delete, path = "/resource-servers/{resource_server_id}", tag = "clients",
    operation_id = "resource_servers_delete",
    params(("resource_server_id" = Uuid, Path)),
    extensions(("x-permission" = json!("clients.manage"))),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn delete(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, AppError> {
    resources::remove(&state.db, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
