//! Token revocation (RFC 7009). Revoking a refresh token ends its whole family, access tokens
//! included (§2.1); revoking an access token ends that token. The answer is 200 whether or not
//! the token was valid (§2.2), so it tells a caller nothing about other clients' tokens.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::db::{self, audit};
use crate::error::{AppError, OAuthError};
use crate::extract::Form;
use crate::protocol::bearer;
use crate::protocol::client_auth::{self, Presented};
use crate::protocol::meta::RequestMeta;
use crate::secrets::{SecretString, exposed, sha256};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct RevokeRequest {
    token: Option<SecretString>,
    // token_type_hint is not read: both kinds are always tried, so an unknown hint is
    // ignored as RFC 7009 §2.1 allows.
    client_id: Option<String>,
    client_secret: Option<SecretString>,
}

/// `POST /revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    Form(req): Form<RevokeRequest>,
) -> Result<Response, AppError> {
    let caller = client_auth::authenticate(
        &state.db,
        &headers,
        Presented { client_id: req.client_id.as_deref(), client_secret: exposed(&req.client_secret) },
    )
    .await?;
    let Some(token) = exposed(&req.token).filter(|t| !t.is_empty() && t.len() <= 16 * 1024) else {
        return Err(OAuthError::invalid_request("token is missing").into());
    };

    let hash = sha256(token.as_bytes());
    if let Some(mut tx) = state.db.in_tenant_of(db::TenantOf::RefreshToken(&hash)).await? {
        if let Some((family, _, _)) = db::refresh_tokens::state(&mut tx, &hash).await?
            && family.client_id == caller.client_id
            && db::families::revoke(
                &mut tx,
                &meta.actor("client", Some(caller.client_id.clone())),
                family.family_id,
                "revoked",
            )
            .await?
        {
            audit::append(
                &mut tx,
                &audit::Event {
                    details: json!({ "token_type": "refresh_token" }),
                    ..meta.event(
                        "token.revoked",
                        "success",
                        ("client", Some(caller.client_id.clone())),
                        ("token_family", family.family_id.to_string()),
                    )
                },
            )
            .await?;
        }
        tx.commit().await?;
    } else if let Some(at) = bearer::check(&state, token).await? {
        let mut tx = state.db.tenant(at.tenant_id).await?;
        if db::access_tokens::revoke(&mut tx, at.jti, &caller.client_id).await? {
            audit::append(
                &mut tx,
                &audit::Event {
                    details: json!({ "token_type": "access_token" }),
                    ..meta.event(
                        "token.revoked",
                        "success",
                        ("client", Some(caller.client_id.clone())),
                        ("access_token", at.jti.to_string()),
                    )
                },
            )
            .await?;
        }
        tx.commit().await?;
    }
    Ok(StatusCode::OK.into_response())
}

#[cfg(test)]
mod redaction {
    /// A logged `RevokeRequest` shows no secret it carries.
    #[test]
    fn debug_shows_no_secret() {
        crate::secrets::assert_debug_redacts::<super::RevokeRequest>(
            "token=t0ken-s3cret&client_id=c&client_secret=cl1ent-s3cret",
            &["t0ken-s3cret", "cl1ent-s3cret"],
        );
    }
}
