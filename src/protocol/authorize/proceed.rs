//! The next step of a waiting request: login, tenant choice, consent, or the code; and
//! whether the sign-in needs a second factor.

use axum::response::{IntoResponse, Redirect, Response};
use chrono::{Duration, Utc};
use tower_sessions::Session;
use uuid::Uuid;

use super::claims::{ClaimSet, ClaimsRequest};
use super::reply::{Reply, expired_request};
use crate::db::families::RequestedClaims;
use crate::db::{self, audit, clients::ClientRow};
use crate::error::AppError;
use crate::html::text::{Lang, Text};
use crate::identity::security;
use crate::protocol::issue::{covering_scope, requested_user_claims};
use crate::protocol::meta::RequestMeta;
use crate::protocol::types::Scopes;
use crate::secrets::Secret;
use crate::session;
use crate::state::AppState;

/// Whether a sign-in through `client` into `tenant_id` must have passed a second factor:
/// `requested` by the request (demanded by its `acr`, see `claims`, or a step-up), required
/// by the client or the tenant, or because the user has one or administers a tenant. The
/// code flow and the device page both ask this.
pub async fn needs_mfa(
    state: &AppState,
    client: &ClientRow,
    tenant_id: Uuid,
    user_id: Uuid,
    requested: bool,
) -> Result<bool, AppError> {
    if requested {
        return Ok(true);
    }
    let mut tx = state.db.tenant_and_user(tenant_id, user_id).await?;
    let required = security::second_factor_required(&mut tx, client.require_mfa, user_id).await?;
    tx.commit().await?;
    Ok(required)
}

/// Resumes a stored request after a step, its pages in `lang` (`session::PageLang`).
pub(super) async fn proceed(
    state: &AppState,
    session: &Session,
    meta: &RequestMeta,
    pending: session::Pending,
    lang: Lang,
) -> Result<Response, AppError> {
    let Some(client) = crate::clients::find(&state.db, &pending.client_id).await? else {
        return Err(expired_request());
    };
    decide(state, session, meta, &client, pending, false, lang.text()).await
}

/// The next step of a request: login, tenant choice, consent, or the code. `t`: the words
/// of a form post answer, in the request's language.
pub(super) async fn decide(
    state: &AppState,
    session: &Session,
    meta: &RequestMeta,
    client: &ClientRow,
    mut pending: session::Pending,
    prompt_none: bool,
    t: &'static Text,
) -> Result<Response, AppError> {
    let reply = Reply {
        redirect_uri: &pending.redirect_uri,
        form_post: pending.form_post,
        state: pending.state.as_deref(),
        issuer: &state.config.issuer,
        t,
    };
    let to = |page: &str| Redirect::to(&format!("/{page}?req={}", pending.id)).into_response();

    // The user claims the `claims` parameter names (OIDC Core §5.5), which the code keeps. Its
    // bound is checked here, on the request's first step, before anyone signs in.
    let requested = match requested_claims_of(&pending, client) {
        Ok(requested) => requested,
        Err(why) => {
            if !prompt_none {
                session::finish_pending(session, &pending.id).await?;
            }
            return Ok(reply.error("invalid_request", why));
        }
    };

    // Authentication (OIDC Core §3.1.2.3).
    let who = session::signed_in(session).await?;
    let now = Utc::now().timestamp();
    let needs_login = match &who {
        None => true,
        Some(w) => {
            // Once this request has had its login, prompt=login and max_age are satisfied.
            (!pending.logged_in && (pending.prompt_login || pending.max_age.is_some_and(|max| now - w.auth_time > max)))
                || pending.hint_sub.is_some_and(|sub| sub != w.user_id)
        }
    };
    let who = match who {
        Some(w) if !needs_login => w,
        _ if prompt_none => return Ok(reply.error("login_required", "the user is not signed in")),
        _ => return Ok(to("login")),
    };

    // The tenant the tokens will be for.
    // A stored choice counts only for a multi-tenant client; any other client's tokens are
    // for its own tenant, checked again every time.
    let tenant_id = match pending.tenant.filter(|_| client.multi_tenant) {
        Some(t) => t,
        None => {
            let memberships = choosable_tenants(state, client, who.user_id).await?;
            let chosen = if client.multi_tenant {
                let hinted = pending.tenant_hint.as_deref().and_then(|h| memberships.iter().find(|m| m.slug == h));
                match (hinted, memberships.as_slice()) {
                    (Some(m), _) if !pending.prompt_select_account => Some(m.tenant_id),
                    (_, [only]) if !pending.prompt_select_account => Some(only.tenant_id),
                    (_, []) => None,
                    _ if prompt_none => {
                        return Ok(reply.error("account_selection_required", "the user must choose an organisation"));
                    }
                    _ => return Ok(to("select-tenant")),
                }
            } else {
                memberships.iter().find(|m| m.tenant_id == client.tenant_id).map(|m| m.tenant_id)
            };
            let Some(tenant_id) = chosen else {
                // ARCHITECTURE.md, "Tenancy": no membership → access_denied, audited, and no token.
                let event = refusal(meta, "authorization.denied_no_membership", who.user_id, &client.client_id);
                append_refusal(state, client.tenant_id, event).await?;
                session::finish_pending(session, &pending.id).await?;
                return Ok(reply.error("access_denied", "the user is not a member of this organisation"));
            };
            pending.tenant = Some(tenant_id);
            if !prompt_none {
                session::save_pending(session, &pending).await?;
            }
            tenant_id
        }
    };

    // A client of a metadata document gets tokens only for a tenant that allows such clients,
    // however the tenant was chosen (the token endpoint checks again).
    if client.is_metadata_document()
        && crate::clients::metadata_document::allowed_tenants(&state.db, client, &[tenant_id]).await?.is_empty()
    {
        let event = refusal(meta, "authorization.denied_tenant_policy", who.user_id, &client.client_id);
        append_refusal(state, client.tenant_id, event).await?;
        if !prompt_none {
            session::finish_pending(session, &pending.id).await?;
        }
        return Ok(reply.error("access_denied", "the organisation does not accept this application"));
    }

    // The second factor: demanded by the request, required by the client or the tenant, or
    // because the user has one or administers a tenant (admin tokens never rest on a password
    // alone). A session that signed in with the password only steps up here.
    if !who.has_mfa() && needs_mfa(state, client, tenant_id, who.user_id, pending.mfa_required).await? {
        if prompt_none {
            return Ok(reply.error("interaction_required", "a second factor is needed"));
        }
        pending.mfa_required = true;
        session::save_pending(session, &pending).await?;
        return Ok(to("login/mfa"));
    }
    // An essential acr claim: the acr issued is the one achieved, so it must be one the
    // request allows, or the sign-in failed (OIDC Core §5.5.1.1; the error code is OpenID
    // Connect Core Error Code unmet_authentication_requirements 1.0, §1). Reached when a
    // password-only acr is demanded of a sign-in that passed a second factor.
    if let Some(allowed) = pending.acr_essential.as_ref().filter(|allowed| !allowed.contains(&who.acr)) {
        let mut event = refusal(meta, "authorization.unmet_acr", who.user_id, &client.client_id);
        event.details = serde_json::json!({ "acr": who.acr, "essential": allowed });
        append_refusal(state, tenant_id, event).await?;
        if !prompt_none {
            session::finish_pending(session, &pending.id).await?;
        }
        return Ok(reply.error("unmet_authentication_requirements", "the sign-in does not meet the essential acr"));
    }

    // Consent, remembered per client and scope set (OIDC Core §3.1.2.4), for the scopes asked
    // and those covering the claims asked for by name.
    let scope = Scopes::parse(&pending.scope).unwrap_or_default();
    if !pending.consented {
        let mut tx = state.db.tenant(tenant_id).await?;
        let granted = db::consents::granted(&mut tx, who.user_id, &client.client_id).await?;
        tx.commit().await?;
        let remembered = consent_scope(&pending, &requested).is_subset_of(&granted);
        if pending.prompt_consent || !remembered {
            if prompt_none {
                return Ok(reply.error("consent_required", "the user has not consented"));
            }
            return Ok(to("consent"));
        }
    }

    // The code: 256 random bits, stored as a hash, single use, short-lived.
    let code = Secret::generate();
    let grant = db::authorization_codes::CodeGrant {
        client_id: client.client_id.clone(),
        user_id: who.user_id,
        redirect_uri: pending.redirect_uri.clone(),
        scope: scope.to_string(),
        nonce: pending.nonce.clone(),
        code_challenge: pending.code_challenge.clone(),
        auth_time: chrono::DateTime::from_timestamp(who.auth_time, 0).unwrap_or_default(),
        amr: who.amr.clone(),
        acr: who.acr.clone(),
        sid: who.sid.clone(),
        security_stamp: Some(who.stamp),
        resources: pending.resources.clone(),
        dpop_jkt: pending.dpop_jkt.clone(),
    };
    let expires = Utc::now() + Duration::from_std(state.config.ttl.code).unwrap_or_default();
    let mut tx = state.db.tenant(tenant_id).await?;
    db::authorization_codes::insert_with_claims(&mut tx, &code.hash(), &grant, &requested, expires).await?;
    tx.commit().await?;
    if !prompt_none {
        session::finish_pending(session, &pending.id).await?;
    }
    Ok(reply.code(code.expose()))
}

/// The tenants a user may choose for tokens of `client`: their memberships, and for a client
/// of a client ID metadata document only those in tenants that allow such clients
/// (`clients::metadata_document::allowed_tenants`).
pub async fn choosable_tenants(
    state: &AppState,
    client: &ClientRow,
    user_id: Uuid,
) -> Result<Vec<db::memberships::MembershipOf>, AppError> {
    let mut tx = state.db.unscoped().await?;
    let mut memberships = db::memberships::of_user(&mut tx, user_id).await?;
    tx.commit().await?;
    if client.is_metadata_document() {
        let ids: Vec<Uuid> = memberships.iter().map(|m| m.tenant_id).collect();
        let allowed = crate::clients::metadata_document::allowed_tenants(&state.db, client, &ids).await?;
        memberships.retain(|m| allowed.contains(&m.tenant_id));
    }
    Ok(memberships)
}

/// The claims a waiting request names that the code will keep: those of its `claims`
/// parameter ([`requested_claims`]) whose covering scope (`issue::covering_scope`) the client
/// is registered for, as a scope would be.
pub fn requested_claims_of(pending: &session::Pending, client: &ClientRow) -> Result<RequestedClaims, &'static str> {
    let claims = pending.claims.as_ref().and_then(ClaimsRequest::from_stored);
    let mut requested = requested_claims(claims.as_ref())?;
    let allowed = |name: &String| covering_scope(name).is_some_and(|s| client.scopes.iter().any(|c| c == s));
    requested.id_token_claims.retain(allowed);
    requested.userinfo_claims.retain(allowed);
    Ok(requested)
}

/// What the user consents to for a waiting request: the scopes it asks, and the scopes that
/// cover the claims it names (a claim asked for by name needs the consent its scope would;
/// without this, a request for `openid` alone could read an email the user never agreed to
/// show: OIDC Core §5.5 leaves the release of requested claims to the OP's consent), and one
/// `resource:<identifier>` word for each API the request names (resource indicators), so a
/// consent given without an API does not cover a request for one. Built from words already
/// checked, never re-parsed: an empty set here would be a consent to nothing that every
/// remembered consent covers.
pub fn consent_scope(pending: &session::Pending, requested: &RequestedClaims) -> Scopes {
    let named = requested.id_token_claims.iter().chain(&requested.userinfo_claims).filter_map(|n| covering_scope(n));
    let apis: Vec<String> = pending.resources.iter().map(|r| format!("{RESOURCE_CONSENT_PREFIX}{r}")).collect();
    Scopes::of_words(pending.scope.split(' ').chain(named).chain(apis.iter().map(String::as_str)))
}

/// The word a remembered consent keeps for an API (`consent_scope`).
pub const RESOURCE_CONSENT_PREFIX: &str = "resource:";

/// The user claims a `claims` parameter names for the ID token and for UserInfo, as the code
/// keeps them (`issue::requested_user_claims` says which, and refuses more than 40 in a member).
fn requested_claims(request: Option<&ClaimsRequest>) -> Result<RequestedClaims, &'static str> {
    let names = |set: Option<&ClaimSet>| {
        let names: Vec<&str> = set.into_iter().flat_map(ClaimSet::names).collect();
        requested_user_claims(&names)
    };
    Ok(RequestedClaims {
        id_token_claims: names(request.and_then(|r| r.id_token.as_ref()))?,
        userinfo_claims: names(request.and_then(|r| r.userinfo.as_ref()))?,
    })
}

/// The audit event of an authorization refused to a signed-in user (`outcome` failure).
fn refusal<'a>(meta: &RequestMeta, action: &'a str, user_id: Uuid, client_id: &str) -> audit::Event<'a> {
    meta.event(action, "failure", ("user", Some(user_id.to_string())), ("client", client_id.to_owned()))
}

/// Appends `event` to `tenant_id`'s chain in a transaction of its own.
async fn append_refusal(state: &AppState, tenant_id: Uuid, event: audit::Event<'_>) -> Result<(), AppError> {
    let mut tx = state.db.tenant(tenant_id).await?;
    audit::append(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requested(raw: &str) -> Result<RequestedClaims, &'static str> {
        requested_claims(Some(&ClaimsRequest::parse(raw).unwrap()))
    }

    #[test]
    fn keeps_the_user_claims_named_in_each_member() {
        let got = requested(
            r#"{"id_token":{"given_name":{"essential":true},"email":null,"acr":null,"sub":{"value":"x"}},
                "userinfo":{"name":null,"http://example.info/claims/groups":null,"phone_number":{"essential":true}}}"#,
        )
        .unwrap();
        assert_eq!(got.id_token_claims, ["email", "given_name"], "acr and sub are the token's own business");
        assert_eq!(got.userinfo_claims, ["name"], "names of other vocabularies are ignored");
        assert_eq!(requested_claims(None).unwrap(), RequestedClaims::default());
        assert_eq!(requested("{}").unwrap(), RequestedClaims::default());
    }

    #[test]
    fn refuses_more_than_forty_names_in_a_member() {
        let member = |n: usize| (0..n).map(|i| format!(r#""x{i}":null"#)).collect::<Vec<_>>().join(",");
        assert!(requested(&format!(r#"{{"userinfo":{{{}}}}}"#, member(40))).is_ok(), "the limit itself");
        assert!(requested(&format!(r#"{{"id_token":{{{}}}}}"#, member(41))).is_err());
        assert!(requested(&format!(r#"{{"userinfo":{{{}}}}}"#, member(41))).is_err());
        let both = format!(r#"{{"id_token":{{{0}}},"userinfo":{{{0}}}}}"#, member(40));
        assert!(requested(&both).is_ok(), "the bound is per member");
    }
}
