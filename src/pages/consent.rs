//! The consent page: which application wants what, remembered per client and scope set.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use crate::db::{self, audit};
use crate::error::AppError;
use crate::extract::Query;
use crate::html::text::{Text, scope_description};
use crate::protocol::authorize::proceed;
use crate::protocol::authorize::reply::{Reply, expired_request, origin_of};
use crate::protocol::meta::RequestMeta;
use crate::protocol::types::Scopes;
use crate::render::render;
use crate::session::{self, PageLang, SessionForm};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    t: &'static Text,
    csrf: &'a str,
    req: &'a str,
    client_name: &'a str,
    email: &'a str,
    scopes: Vec<&'static str>,
    /// The APIs the request names (resource indicators), by name, with the scopes of each it
    /// asks for.
    apis: Vec<(String, String)>,
}

#[derive(Debug, Deserialize)]
pub struct ConsentQuery {
    req: String,
}

/// `GET /consent?req=…`.
pub async fn show(
    State(state): State<AppState>,
    session: Session,
    lang: PageLang,
    Query(q): Query<ConsentQuery>,
) -> Result<Response, AppError> {
    let (Some(p), Some(who)) = (session::pending(&session, &q.req).await?, session::signed_in(&session).await?) else {
        return Err(expired_request());
    };
    let Some(tenant) = p.tenant else { return Err(expired_request()) };
    let client_name = crate::pages::login::client_name(&state, &p).await?.unwrap_or_default();
    let mut tx = state.db.tenant(tenant).await?;
    let email = db::users::claims(&mut tx, who.user_id).await?.map(|u| u.email).unwrap_or_default();
    tx.commit().await?;
    let scopes = consent_scope(&state, &p).await?;
    let apis = apis_of(&state, &p, &scopes).await?;
    let csrf = session::csrf_token(&session).await?;
    let t = lang.text();
    let page = ConsentPage {
        t,
        csrf: &csrf,
        req: &p.id,
        client_name: &client_name,
        email: &email,
        scopes: scopes.iter().filter_map(|s| scope_description(t, s)).collect(),
        apis,
    };
    Ok(render(StatusCode::OK, &page, &[origin_of(&p.redirect_uri)]))
}

/// What the user is asked to allow: the request's scopes and those covering the claims it asks
/// for by name (`authorize::proceed::consent_scope`), so the page shows, and the consent
/// remembers, everything the client will read.
async fn consent_scope(state: &AppState, p: &session::Pending) -> Result<Scopes, AppError> {
    let client = crate::clients::find(&state.db, &p.client_id).await?.ok_or_else(expired_request)?;
    let requested = proceed::requested_claims_of(p, &client).map_err(|_| expired_request())?;
    Ok(proceed::consent_scope(p, &requested))
}

/// The APIs a waiting request names, each with its name and the scopes of it that `scopes`
/// (what the user is asked to allow) has. If one was removed (or stopped allowing the
/// client) since the request began, the request ends here.
async fn apis_of(state: &AppState, p: &session::Pending, scopes: &Scopes) -> Result<Vec<(String, String)>, AppError> {
    if p.resources.is_empty() {
        return Ok(Vec::new());
    }
    let client = crate::clients::find(&state.db, &p.client_id).await?.ok_or_else(expired_request)?;
    // All or none: a request whose APIs no longer all resolve is not shown (the code would
    // keep an API the page left out).
    let Ok(apis) = crate::clients::resources::resolve(&state.db, &client, &p.resources).await? else {
        return Err(expired_request());
    };
    Ok(apis
        .into_iter()
        .map(|api| {
            let asked: Vec<&str> = api.scopes.iter().map(String::as_str).filter(|s| scopes.contains(s)).collect();
            (api.name, asked.join(", "))
        })
        .collect())
}

#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    csrf: String,
    req: String,
    decision: String,
}

crate::session::csrf_field!(ConsentForm);

/// `POST /consent`.
pub async fn submit(
    State(state): State<AppState>,
    session: Session,
    PageLang(lang): PageLang,
    meta: RequestMeta,
    SessionForm(form): SessionForm<ConsentForm>,
) -> Result<Response, AppError> {
    let (Some(mut p), Some(who)) = (session::pending(&session, &form.req).await?, session::signed_in(&session).await?)
    else {
        return Err(expired_request());
    };
    let Some(tenant) = p.tenant else { return Err(expired_request()) };
    if form.decision != "allow" {
        let mut event = meta.event(
            "consent.denied",
            "success",
            ("user", Some(who.user_id.to_string())),
            ("client", p.client_id.clone()),
        );
        event.details = serde_json::json!({ "scope": p.scope });
        let mut tx = state.db.tenant(tenant).await?;
        audit::append(&mut tx, &event).await?;
        tx.commit().await?;
        session::finish_pending(&session, &p.id).await?;
        let reply = Reply {
            redirect_uri: &p.redirect_uri,
            form_post: p.form_post,
            state: p.state.as_deref(),
            issuer: &state.config.issuer,
            t: lang.text(),
        };
        return Ok(reply.error("access_denied", "the user denied the request"));
    }
    let scopes = consent_scope(&state, &p).await?;
    let mut tx = state.db.tenant(tenant).await?;
    db::consents::grant(&mut tx, who.user_id, &p.client_id, &scopes.to_vec()).await?;
    let mut event = meta.event(
        "consent.granted",
        "success",
        ("user", Some(who.user_id.to_string())),
        ("client", p.client_id.clone()),
    );
    event.details = serde_json::json!({ "scope": scopes.to_string() });
    audit::append(&mut tx, &event).await?;
    tx.commit().await?;
    p.consented = true;
    session::save_pending(&session, &p).await?;
    Ok(Redirect::to(&format!("/authorize/continue?req={}", p.id)).into_response())
}
