//! Checking access tokens we issued: signature (by kid), `typ: at+jwt`, issuer and expiry,
//! then the database for revocation.

use chrono::Utc;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::db;
use crate::error::AppError;
use crate::state::AppState;
use crate::tokens::{Expected, TokenType, check_claims};

/// A live access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub tenant_id: Uuid,
    pub jti: Uuid,
    pub claims: Map<String, Value>,
}

impl AccessToken {
    pub fn str_claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// Whether the token is bound to a DPoP key (`cnf.jkt`, RFC 9449 §6): it is good only
    /// with a proof of that key, so never as a plain Bearer token (the admin API takes none).
    pub fn is_dpop_bound(&self) -> bool {
        self.claims.get("cnf").is_some_and(|c| c.get("jkt").is_some())
    }

    /// Whether the token is meant for this provider's own endpoints (UserInfo, the admin API):
    /// its `aud` is its client, as for every token issued without a resource indicator. A token
    /// meant for a tenant's API (`aud` the API's identifier, RFC 8707) is refused here, so an
    /// API that receives one cannot spend it on us.
    pub fn for_this_provider(&self) -> bool {
        self.str_claim("aud").is_some_and(|aud| Some(aud) == self.str_claim("client_id"))
    }
}

/// The access token's claims if it is ours, unexpired and not revoked; `None` otherwise.
pub async fn check(state: &AppState, token: &str) -> Result<Option<AccessToken>, AppError> {
    let Ok(claims) = state.keys.verify_fresh(token, TokenType::AccessToken).await else {
        return Ok(None);
    };
    let expected =
        Expected { issuer: &state.config.issuer, audience: None, now: Utc::now(), leeway: std::time::Duration::ZERO };
    if check_claims(&claims, &expected).is_err() {
        return Ok(None);
    }
    let uuid = |name: &str| claims.get(name).and_then(Value::as_str).and_then(|s| s.parse::<Uuid>().ok());
    let (Some(tenant_id), Some(jti)) = (uuid("tid"), uuid("jti")) else {
        return Ok(None);
    };
    let mut tx = state.db.tenant(tenant_id).await?;
    let active = db::access_tokens::is_active(&mut tx, jti).await?;
    tx.commit().await?;
    Ok(active.then_some(AccessToken { tenant_id, jti, claims }))
}
