//! The route-level check of the admin API: an access token this provider issued, with the
//! `admin` scope, names the tenant (`tid`) and the principal (`sub`); the role is read from
//! the membership (or the service account) now, so a demotion or removal takes effect at the
//! next request. Nothing the caller sends in a path or body chooses the tenant.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use uuid::Uuid;

use crate::admin::Caller;
use crate::error::{AppError, OAuthError};
use crate::protocol::bearer;
use crate::protocol::meta::RequestMeta;
use crate::protocol::types::Scopes;
use crate::protocol::userinfo::bearer_from;
use crate::session::ACR_MFA;
use crate::state::AppState;

/// The scope an access token needs for the admin API.
pub use crate::clients::ADMIN_SCOPE;

/// The caller of an admin API route (see the module).
#[derive(Debug, Clone)]
pub struct ApiCaller(pub Caller);

fn unauthorized(description: &'static str) -> AppError {
    let mut e = OAuthError::invalid_token();
    e.description = description.into();
    e.into()
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Ok(meta) = RequestMeta::from_request_parts(parts, state).await;
        let Some(token) = bearer_from(&parts.headers) else {
            let mut e = OAuthError::invalid_token();
            e.description = "an access token is required".into();
            e.www_authenticate = Some(HeaderValue::from_static("Bearer"));
            return Err(e.into());
        };
        let Some(at) = bearer::check(state, &token).await?.filter(|at| at.for_this_provider() && !at.is_dpop_bound())
        else {
            return Err(OAuthError::invalid_token().into());
        };
        let scope = Scopes::parse(at.str_claim("scope").unwrap_or("")).unwrap_or_default();
        if !scope.contains(ADMIN_SCOPE) {
            let mut e = OAuthError::invalid_token();
            e.status = StatusCode::FORBIDDEN;
            e.error = "insufficient_scope";
            e.description = "the access token lacks the admin scope".into();
            e.www_authenticate = Some(HeaderValue::from_static("Bearer error=\"insufficient_scope\", scope=\"admin\""));
            return Err(e.into());
        }
        let actor = meta.actor("user", None);
        let sub = at.str_claim("sub").unwrap_or("");
        // A service account's token names it as `sub` (its client id); a person's, by user id.
        let caller = if Some(sub) == at.str_claim("client_id") {
            Caller::service(&state.db, at.tenant_id, sub, actor, state.handler_checks).await?
        } else {
            let Ok(user_id) = sub.parse::<Uuid>() else { return Err(OAuthError::invalid_token().into()) };
            // Only with a second factor behind the token, as on the admin pages.
            if at.str_claim("acr") != Some(ACR_MFA) {
                return Err(unauthorized("the admin API needs a sign-in with a second factor"));
            }
            Caller::user(&state.db, at.tenant_id, user_id, actor, state.handler_checks).await?
        };
        caller.map(ApiCaller).ok_or_else(|| unauthorized("the access token no longer grants access to this tenant"))
    }
}
