//! The client registration endpoint (RFC 7591 §3) and the client configuration endpoint
//! (RFC 7592 §2: read and delete); the rules are `clients::registration`'s.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::clients::registration::{self, Authority, Metadata, Refused};
use crate::db::clients::ClientRow;
use crate::error::{AppError, OAuthError};
use crate::extract::{Json, Query};
use crate::protocol::discovery::paths::REGISTRATION;
use crate::protocol::grant::json_no_store;
use crate::protocol::meta::{RequestMeta, rate_limit};
use crate::protocol::userinfo::bearer_from;
use crate::secrets::sha256;
use crate::state::AppState;

/// Client metadata (RFC 7591 §2); members we do not know are ignored, as §2 asks. A list
/// member that is not a list of strings is refused by the decoder.
#[derive(Debug, Default, Deserialize)]
pub struct MetadataBody {
    client_name: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    grant_types: Vec<String>,
    #[serde(default)]
    response_types: Vec<String>,
    token_endpoint_auth_method: Option<String>,
    backchannel_logout_uri: Option<String>,
}

/// `?tenant=<slug>`: the tenant of an open registration.
#[derive(Debug, Default, Deserialize)]
pub struct RegistrationQuery {
    tenant: Option<String>,
}

/// Most entries a list member may have.
const MAX_LIST: usize = 20;

/// `POST /register`. With `Authorization: Bearer <initial access token>`, in its tenant; else
/// an open registration in `?tenant=` (rate-limited per client IP with the device
/// authorization limits, as each one stores a client).
pub async fn register(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    Query(q): Query<RegistrationQuery>,
    Json(body): Json<MetadataBody>,
) -> Result<Response, AppError> {
    if [&body.redirect_uris, &body.post_logout_redirect_uris, &body.grant_types, &body.response_types]
        .iter()
        .any(|l| l.len() > MAX_LIST)
    {
        return Err(refused(Refused::Metadata(format!("a list has more than {MAX_LIST} entries"))));
    }
    let token = bearer_from(&headers);
    let authority = match (&token, q.tenant.as_deref()) {
        (Some(token), _) => Authority::InitialToken(token),
        (None, Some(slug)) if slug.len() <= 63 => {
            if let Some(ip) = meta.ip {
                let key = sha256(format!("register-ip:{}", crate::identity::throttle::ip_key(ip)).as_bytes());
                rate_limit(&state, &key, state.config.rate_limits.device_per_ip).await?;
            }
            Authority::Open(slug)
        }
        _ => return Err(refused(Refused::Unauthorized)),
    };
    let metadata = Metadata {
        client_name: body.client_name,
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        grant_types: body.grant_types,
        response_types: body.response_types,
        token_endpoint_auth_method: body.token_endpoint_auth_method,
        backchannel_logout_uri: body.backchannel_logout_uri,
    };
    let origin = meta.actor("system", None);
    let done = registration::register(&state.db, authority, metadata, &origin).await.map_err(refused)?;
    let c = &done.client;
    let mut out = describe_created(&state, c);
    out["client_id_issued_at"] = json!(done.issued_at.timestamp());
    out["registration_access_token"] = json!(done.registration_access_token.expose());
    if let Some(secret) = &c.client_secret {
        out["client_secret"] = json!(secret.expose());
        out["client_secret_expires_at"] = json!(0);
    }
    let mut res = json_no_store(out);
    *res.status_mut() = StatusCode::CREATED;
    Ok(res)
}

/// `GET /register/{client_id}` (RFC 7592 §2.1) with the registration access token.
pub async fn read(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Result<Response, AppError> {
    let client = managed(&state, &headers, &client_id).await?;
    Ok(json_no_store(describe(&state, &client)))
}

/// `DELETE /register/{client_id}` (RFC 7592 §2.3): the client and every token it was issued end.
pub async fn delete(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Result<Response, AppError> {
    let client = managed(&state, &headers, &client_id).await?;
    let actor = meta.actor("client", Some(client.client_id.clone()));
    crate::clients::change::delete_client_in(&state.db, &actor, client.tenant_id, &client.client_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The client the request's registration access token manages; 401 otherwise (RFC 7592 §2).
async fn managed(state: &AppState, headers: &HeaderMap, client_id: &str) -> Result<ClientRow, AppError> {
    let token = bearer_from(headers).ok_or_else(|| refused(Refused::Unauthorized))?;
    if client_id.len() > 128 {
        return Err(refused(Refused::Unauthorized));
    }
    registration::managed(&state.db, client_id, &token).await?.ok_or_else(|| refused(Refused::Unauthorized))
}

/// A registration's metadata as RFC 7591 §3.2.1 answers it.
fn describe(state: &AppState, c: &ClientRow) -> Value {
    metadata(
        state,
        Described {
            client_id: &c.client_id,
            name: &c.name,
            redirect_uris: &c.redirect_uris,
            post_logout_redirect_uris: &c.post_logout_redirect_uris,
            grant_types: &c.grant_types,
            auth_method: &c.token_endpoint_auth_method,
        },
    )
}

fn describe_created(state: &AppState, c: &crate::clients::CreatedClient) -> Value {
    let mut out = metadata(
        state,
        Described {
            client_id: &c.client_id,
            name: &c.name,
            redirect_uris: &c.redirect_uris,
            post_logout_redirect_uris: &c.post_logout_redirect_uris,
            grant_types: &c.grant_types,
            auth_method: &c.token_endpoint_auth_method,
        },
    );
    if let Some(uri) = &c.backchannel_logout_uri {
        out["backchannel_logout_uri"] = json!(uri);
    }
    out
}

/// The members of a registration both answers carry.
struct Described<'a> {
    client_id: &'a str,
    name: &'a str,
    redirect_uris: &'a [String],
    post_logout_redirect_uris: &'a [String],
    grant_types: &'a [String],
    auth_method: &'a str,
}

fn metadata(state: &AppState, d: Described<'_>) -> Value {
    json!({
        "client_id": d.client_id,
        "client_name": d.name,
        "redirect_uris": d.redirect_uris,
        "post_logout_redirect_uris": d.post_logout_redirect_uris,
        "grant_types": d.grant_types,
        "response_types": ["code"],
        "token_endpoint_auth_method": d.auth_method,
        "registration_client_uri": format!("{}{REGISTRATION}/{}", state.config.issuer, d.client_id),
    })
}

/// The error answer of a refusal (RFC 7591 §3.2.2; 401 with a Bearer challenge, RFC 6750).
fn refused(why: Refused) -> AppError {
    match why {
        Refused::Unauthorized => {
            let mut e = OAuthError::invalid_token();
            e.description = "an initial access token is needed, or a tenant that allows open registration".into();
            e.www_authenticate = Some(HeaderValue::from_static("Bearer error=\"invalid_token\""));
            e.into()
        }
        Refused::RedirectUri(why) => OAuthError::bad("invalid_redirect_uri", why).into(),
        Refused::Metadata(why) => OAuthError::bad("invalid_client_metadata", why).into(),
        Refused::Internal(e) => AppError::Internal(e),
    }
}
