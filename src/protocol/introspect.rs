//! Token introspection (RFC 7662), for authenticated clients of the token's own tenant.
//! Anything else — unknown, expired, revoked, another tenant's — is `{"active": false}`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::db;
use crate::error::AppError;
use crate::extract::Form;
use crate::protocol::bearer;
use crate::protocol::client_auth::{self, Presented};
use crate::protocol::grant::json_no_store;
use crate::secrets::{SecretString, exposed, sha256};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct IntrospectRequest {
    token: Option<SecretString>,
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
}

/// `POST /introspect`.
pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(req): Form<IntrospectRequest>,
) -> Result<Response, AppError> {
    let caller = client_auth::authenticate(
        &state.db,
        &headers,
        Presented { client_id: req.client_id.as_deref(), client_secret: exposed(&req.client_secret) },
    )
    .await?;
    // Introspection tells who a token belongs to: only a client that proves who it is may ask
    // (RFC 7662 §2.1, §4), not a public client known by its id.
    if caller.client_type == crate::vocabulary::ClientType::Public {
        return Err(crate::error::OAuthError::invalid_client().into());
    }
    let Some(token) = exposed(&req.token).filter(|t| !t.is_empty() && t.len() <= 16 * 1024) else {
        return Err(crate::error::OAuthError::invalid_request("token is missing").into());
    };
    let inactive = || Ok(json_no_store(json!({ "active": false })));

    // The hint only orders the lookups (RFC 7662 §2.1).
    let refresh_first = req.token_type_hint.as_deref() == Some("refresh_token");
    let as_access = if refresh_first { None } else { bearer::check(&state, token).await? };
    // A client may introspect the tokens of its own tenant, and its own tokens wherever they
    // are (a multi-tenant client's tokens are for the user's tenant).
    let may_see =
        |tenant_id: uuid::Uuid, client_id: &str| tenant_id == caller.tenant_id || client_id == caller.client_id;
    if let Some(at) = as_access {
        if !may_see(at.tenant_id, at.str_claim("client_id").unwrap_or("")) {
            return inactive();
        }
        return Ok(json_no_store(describe_access(&at)));
    }

    let hash = sha256(token.as_bytes());
    if let Some(mut tx) = state.db.in_tenant_of(db::TenantOf::RefreshToken(&hash)).await? {
        let tenant_id = tx.tenant_or_nil();
        let state_of = db::refresh_tokens::state(&mut tx, &hash).await?;
        tx.commit().await?;
        if let Some((family, true, expires_at)) = state_of
            && may_see(tenant_id, &family.client_id)
        {
            let mut out = Map::new();
            out.insert("active".into(), json!(true));
            out.insert("token_type".into(), json!("refresh_token"));
            out.insert("scope".into(), json!(family.scope));
            out.insert("client_id".into(), json!(family.client_id));
            if let Some(user) = family.user_id {
                out.insert("sub".into(), json!(user.to_string()));
            }
            out.insert("exp".into(), json!(expires_at.timestamp()));
            out.insert("tid".into(), json!(tenant_id.to_string()));
            return Ok(json_no_store(Value::Object(out)));
        }
    }
    // Hinted wrongly: still answer for an access token.
    if refresh_first
        && let Some(at) = bearer::check(&state, token).await?
        && may_see(at.tenant_id, at.str_claim("client_id").unwrap_or(""))
    {
        return Ok(json_no_store(describe_access(&at)));
    }
    inactive()
}

/// The introspection response of a live access token (RFC 7662 §2.2).
fn describe_access(at: &bearer::AccessToken) -> Value {
    let mut out = Map::new();
    out.insert("active".into(), json!(true));
    out.insert("token_type".into(), json!(if at.is_dpop_bound() { "DPoP" } else { "Bearer" }));
    // `cnf` tells a resource server which DPoP key the token is bound to (RFC 9449 §6.2).
    for name in ["scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti", "tid", "tenant", "roles", "cnf"] {
        if let Some(v) = at.claims.get(name) {
            out.insert(name.into(), v.clone());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod redaction {
    /// A logged `IntrospectRequest` shows no secret it carries.
    #[test]
    fn debug_shows_no_secret() {
        crate::secrets::assert_debug_redacts::<super::IntrospectRequest>(
            "token=t0ken-s3cret&client_id=c&client_secret=cl1ent-s3cret",
            &["t0ken-s3cret", "cl1ent-s3cret"],
        );
    }
}
