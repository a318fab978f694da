//! The admin REST API under `/api/v1/`: members, clients, devices, sessions, the audit log,
//! tenant settings, and tenants for platform admins. Authenticated by access tokens with the
//! `admin` scope ([`caller::ApiCaller`]); strict JSON in (unknown fields refused, sizes
//! bounded), JSON out, errors in the house shape (`{error, error_description, request_id}`),
//! cursor pagination. The OpenAPI 3.1 document is generated from the same handlers
//! (`utoipa`), served at `/api/v1/openapi.json`; every route is registered through
//! [`OpenApiRouter::routes`], so none can be missing from it (ARCHITECTURE.md, "Admin surface").

pub mod audit;
pub mod caller;
pub mod clients;
pub mod devices;
pub mod invitations;
pub mod members;
pub mod platform;
pub mod resource_servers;
pub mod sessions;
pub mod settings;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use crate::admin::Cursor;
use crate::error::AppError;
use crate::state::AppState;

pub use caller::{ADMIN_SCOPE, ApiCaller};

/// Where the API lives.
pub const PREFIX: &str = "/api/v1";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "LaventeCare Auth admin API",
        description = "Administer one tenant with an access token of scope `admin`: the tenant is the token's `tid`, \
                       the role is the caller's membership now. Each operation names the permission it needs in \
                       `x-permission`; see the README for the table.",
        license(name = "Apache-2.0"),
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(ErrorBody)),
)]
struct ApiDoc;

/// The bearer token scheme every operation uses.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// The error body every failure has (the house shape of `crate::error`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// A machine-readable code: `invalid_request`, `invalid_token`, `insufficient_scope`,
    /// `forbidden`, `not_found`, `conflict`, `server_error`…
    error: String,
    error_description: Option<String>,
    request_id: String,
}

/// `cursor` and `limit` of every list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `next_cursor` of the page before.
    pub cursor: Option<String>,
    /// Items per page, 1-200 (default 50).
    pub limit: Option<u32>,
}

impl PageQuery {
    pub fn cursor(&self) -> Result<Cursor, AppError> {
        Ok(Cursor::parse(self.cursor.as_deref(), self.limit)?)
    }
}

/// The API's routes and their OpenAPI document, before the state is given.
pub fn routes() -> OpenApiRouter<AppState> {
    let resources = members::routes()
        .merge(clients::routes())
        .merge(devices::routes())
        .merge(invitations::routes())
        .merge(resource_servers::routes())
        .merge(sessions::routes())
        .merge(audit::routes())
        .merge(settings::routes())
        .merge(platform::routes());
    OpenApiRouter::with_openapi(ApiDoc::openapi()).nest(PREFIX, resources)
}

/// The OpenAPI document, as served.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

/// The API router with `/api/v1/openapi.json` beside it.
pub fn router() -> Router<AppState> {
    let (router, doc) = routes().split_for_parts();
    // Plain data: serialising it cannot fail, and the document is built once at start.
    let json: axum::body::Bytes = doc.to_json().expect("the OpenAPI document serialises").into();
    router.route(
        "/api/v1/openapi.json",
        axum::routing::get(move || {
            let json = json.clone();
            async move { json_document(json) }
        }),
    )
}

fn json_document(json: axum::body::Bytes) -> Response {
    let mut res = json.into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}
