//! `/api/v1/clients`: the tenant's clients and service accounts (`crate::admin::clients`).
//! A secret is in an answer once: when the client is created, and when it gets a new one.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiCaller, ErrorBody, PageQuery};
use crate::admin::clients::{self, ClientChange, ClientView, NewClient};
use crate::error::AppError;
use crate::extract::{Json, Query};
use crate::state::AppState;
use crate::vocabulary::Role;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(get, update, delete)).routes(routes!(rotate))
}

/// A page of clients.
#[derive(Serialize, ToSchema)]
pub struct ClientPage {
    items: Vec<ClientView>,
    /// Pass as `cursor` for the next page; absent on the last.
    next_cursor: Option<String>,
}

/// `POST /clients`: a client to register in the caller's tenant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientBody {
    #[schema(example = "Acme Web", max_length = 200)]
    name: String,
    /// `authorization_code`, `refresh_token`, `client_credentials`, `device_code`.
    #[schema(example = json!(["authorization_code", "refresh_token"]), max_items = 8)]
    grant_types: Vec<String>,
    /// A public client (a browser or native app, a device) has no secret and uses PKCE.
    #[serde(default)]
    public: bool,
    #[serde(default)]
    #[schema(max_items = 20)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    #[schema(max_items = 20)]
    post_logout_redirect_uris: Vec<String>,
    /// A service account's role (client credentials only); at most the caller's own.
    #[schema(value_type = Option<String>, example = "viewer")]
    role: Option<Role>,
    /// Refused (403) unless the caller is a platform admin: such a client receives tokens for
    /// other tenants' users.
    #[serde(default)]
    multi_tenant: bool,
    /// `RS256` (default), `ES256` or `EdDSA`.
    #[schema(max_length = 64)]
    signing_alg: Option<String>,
    /// `client_secret_basic` (default) or `client_secret_post`; `none` for public clients.
    #[schema(max_length = 64)]
    token_endpoint_auth_method: Option<String>,
    /// Every sign-in through this client needs a second factor.
    #[serde(default)]
    require_mfa: bool,
    /// Its authorization requests must be pushed to `/par` first (RFC 9126 §6).
    #[serde(default)]
    require_pushed_authorization_requests: bool,
    /// Where logout tokens are POSTed when a user's session with the client ends (OpenID
    /// Connect Back-Channel Logout 1.0): https, or http on a loopback address.
    #[schema(max_length = 2000)]
    backchannel_logout_uri: Option<String>,
    /// The client may ask for the `admin` scope (tokens for this API).
    #[serde(default)]
    admin_api: bool,
    /// A confidential client may leave PKCE out of its authorization requests (for relying
    /// parties that do not send it); public clients always need PKCE.
    #[serde(default)]
    pkce_optional: bool,
    /// Seconds within which the refresh token just used may be presented again and return the
    /// same successor pair (a lost response); 0, the default, allows no retry.
    #[serde(default)]
    #[schema(maximum = 300)]
    refresh_grace_secs: u32,
}

/// `PATCH /clients/{client_id}`: each field given replaces the registered one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    #[schema(max_length = 200)]
    name: Option<String>,
    #[schema(max_items = 20)]
    redirect_uris: Option<Vec<String>>,
    #[schema(max_items = 20)]
    post_logout_redirect_uris: Option<Vec<String>>,
    #[schema(maximum = 300)]
    refresh_grace_secs: Option<u32>,
}

/// A registered client with its secret (confidential clients), shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedClientBody {
    #[serde(flatten)]
    client: ClientView,
    /// Shown once; only its hash is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

/// A client's new secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct NewSecret {
    client_id: String,
    client_secret: String,
}

/// List the tenant's clients (never a secret).
#[utoipa::path(get, path = "/clients", tag = "clients", operation_id = "clients_list",
    params(PageQuery),
    extensions(("x-permission" = json!("clients.read"))),
    responses((status = 200, body = ClientPage), (status = "4XX", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Query(q): Query<PageQuery>,
) -> Result<axum::Json<ClientPage>, AppError> {
    let page = clients::list(&state.db, &caller, &q.cursor()?).await?;
    Ok(axum::Json(ClientPage { items: page.items, next_cursor: page.next_cursor }))
}

/// Register a client. A service account's role may not be above the caller's (403), and only a
/// platform admin may register a multi-tenant client (403).
#[utoipa::path(post, path = "/clients", tag = "clients", operation_id = "clients_create",
    request_body = ClientBody,
    extensions(("x-permission" = json!("clients.manage"))),
    responses((status = 201, body = CreatedClientBody), (status = "4XX", body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Json(body): Json<ClientBody>,
) -> Result<Response, AppError> {
    let new = NewClient {
        name: body.name,
        grants: body.grant_types,
        public: body.public,
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        role: body.role,
        multi_tenant: body.multi_tenant,
        signing_alg: body.signing_alg,
        auth_method: body.token_endpoint_auth_method,
        require_mfa: body.require_mfa,
        admin_api: body.admin_api,
        pkce_optional: body.pkce_optional,
        refresh_grace_secs: body.refresh_grace_secs,
        require_par: body.require_pushed_authorization_requests,
        backchannel_logout_uri: body.backchannel_logout_uri,
    };
    let created = clients::create(&state.db, &caller, new).await?;
    let secret = created.client_secret.as_ref().map(|s| s.expose().to_owned());
    let client = clients::get(&state.db, &caller, &created.client_id).await?;
    Ok((StatusCode::CREATED, axum::Json(CreatedClientBody { client, client_secret: secret })).into_response())
}

/// One client (never its secret).
#[utoipa::path(get, path = "/clients/{client_id}", tag = "clients", operation_id = "clients_get",
    params(("client_id" = String, Path)),
    extensions(("x-permission" = json!("clients.read"))),
    responses((status = 200, body = ClientView), (status = "4XX", body = ErrorBody)))]
async fn get(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(client_id): Path<String>,
) -> Result<axum::Json<ClientView>, AppError> {
    Ok(axum::Json(clients::get(&state.db, &caller, &client_id).await?))
}

/// Change a client's name or redirect URIs.
#[utoipa::path(patch, path = "/clients/{client_id}", tag = "clients", operation_id = "clients_update",
    params(("client_id" = String, Path)),
    request_body = ClientPatch,
    extensions(("x-permission" = json!("clients.manage"))),
    responses((status = 200, body = ClientView), (status = "4XX", body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(client_id): Path<String>,
    Json(body): Json<ClientPatch>,
) -> Result<axum::Json<ClientView>, AppError> {
    let change = ClientChange {
        name: body.name,
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        refresh_grace_secs: body.refresh_grace_secs,
    };
    clients::update(&state.db, &caller, &client_id, change).await?;
    Ok(axum::Json(clients::get(&state.db, &caller, &client_id).await?))
}

/// Delete a client; every token it was issued ends.
#[utoipa::path(delete, path = "/clients/{client_id}", tag = "clients", operation_id = "clients_delete",
    params(("client_id" = String, Path)),
    extensions(("x-permission" = json!("clients.manage"))),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn delete(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(client_id): Path<String>,
) -> Result<StatusCode, AppError> {
    clients::delete(&state.db, &caller, &client_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Give a confidential client a new secret (shown once); the old one stops working at once,
/// tokens already issued stay valid.
#[utoipa::path(post, path = "/clients/{client_id}/secret", tag = "clients", operation_id = "clients_rotate_secret",
    params(("client_id" = String, Path)),
    extensions(("x-permission" = json!("clients.manage"))),
    responses((status = 201, body = NewSecret), (status = "4XX", body = ErrorBody)))]
async fn rotate(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(client_id): Path<String>,
) -> Result<Response, AppError> {
    let rotated = clients::rotate_secret(&state.db, &caller, &client_id).await?;
    let body = NewSecret { client_id: rotated.client_id, client_secret: rotated.client_secret.expose().to_owned() };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}
