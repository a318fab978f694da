//! What the token endpoint's grants share (`token`: code, refresh, client credentials;
//! `device`: the device code, RFC 8628 §3.4): the replay response, the checks every grant makes
//! before it issues, and the `no-store` JSON answer. Both import it; neither imports the other's
//! grant code except `token` dispatching to `device::redeem` (ARCHITECTURE.md, "Code map").

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use crate::clients::GRANT_REFRESH_TOKEN;
use crate::db::{self, Tx, audit, clients::ClientRow};
use crate::error::{AppError, OAuthError};
use crate::protocol::meta::RequestMeta;
use crate::session::ACR_MFA;
use crate::vocabulary::{Role, TenantStatus, UserStatus};

/// A JSON body that caches must not keep.
pub fn json_no_store(body: impl serde::Serialize) -> Response {
    let mut res = axum::Json(body).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

/// Revokes the family a replayed code or refresh token belongs to and records the replay in
/// the audit log, once: concurrent replays find it revoked already and write nothing more.
pub(crate) async fn end_replayed_family(
    tx: &mut Tx,
    meta: &RequestMeta,
    client: &ClientRow,
    family_id: Uuid,
    reason: &str,
    action: &'static str,
) -> Result<(), AppError> {
    if db::families::revoke(tx, &client_actor(meta, client), family_id, reason).await? {
        let event = meta.event(
            action,
            "failure",
            ("client", Some(client.client_id.clone())),
            ("token_family", family_id.to_string()),
        );
        audit::append(tx, &event).await?;
    }
    Ok(())
}

/// The actor of what a client's token request causes.
pub(crate) fn client_actor(meta: &RequestMeta, client: &ClientRow) -> audit::Actor {
    meta.actor("client", Some(client.client_id.clone()))
}

/// Admin tokens never rest on a password alone (ARCHITECTURE.md, "Tokens").
pub(crate) fn second_factor_ok(role: Role, acr: Option<&str>) -> bool {
    role != Role::Admin || acr == Some(ACR_MFA)
}

/// Refresh tokens are issued to clients allowed the refresh grant.
pub(crate) fn refreshable(client: &ClientRow) -> bool {
    client.grant_types.iter().any(|g| g == GRANT_REFRESH_TOKEN)
}

/// The tenant's slug and the user's role in it; a user who is no longer an active member (or
/// a suspended tenant) gets no token.
pub(crate) async fn tenant_and_role(tx: &mut Tx, user_id: Uuid) -> Result<(String, Role), AppError> {
    let Some((slug, status)) = db::tenants::current(tx).await? else {
        return Err(OAuthError::invalid_grant("the tenant no longer exists").into());
    };
    if status != TenantStatus::Active {
        return Err(OAuthError::invalid_grant("the tenant is suspended").into());
    }
    let role = db::memberships::role_of(tx, user_id).await?;
    let active = db::users::claims(tx, user_id).await?.is_some_and(|u| u.status == UserStatus::Active);
    match role {
        Some(role) if active => Ok((slug, role)),
        _ => Err(OAuthError::invalid_grant("the user is not an active member of the tenant").into()),
    }
}

/// A client of a client ID metadata document gets tokens only for a tenant that allows such
/// clients (ARCHITECTURE.md, "Client ID metadata documents"): read in the grant's transaction,
/// so a tenant that turns them off is refused at the next code or refresh.
pub(crate) async fn tenant_accepts(tx: &mut Tx, client: &ClientRow) -> Result<bool, sqlx::Error> {
    Ok(!client.is_metadata_document() || db::tenants::allows_client_metadata_documents(tx).await?)
}
