//! `/admin/t/{slug}/clients`: the organisation's clients; registering one (name, grants,
//! redirect URIs, public or confidential), changing its name and redirect URIs, a new secret,
//! deletion. A secret is shown once, on the client's page right after the redirect that follows
//! the form (`frame::keep_once`); reloading that page or coming back to it shows it no more.

use askama::Template;
use axum::extract::Path;
use axum::response::Response;
use serde::Deserialize;

use super::frame::{self, Frame, Section, Shown, ticked};
use super::{Button, Ctx, PageQuery, ok};
use crate::admin::clients::{ClientChange, ClientView, NewClient};
use crate::admin::{self, Action};
use crate::error::AppError;
use crate::extract::Query;
use crate::html::text::{AdminText, Text};
use crate::service_error::ServiceError;
use crate::session::SessionForm;
use crate::vocabulary::{ClientType, Role};

/// The most redirect URIs a page form may give, and the longest field that holds them.
const MAX_URIS: usize = 20;
const MAX_URIS_LEN: usize = 8 * 1024;

#[derive(Template)]
#[template(path = "admin/clients.html")]
struct ClientsPage<'a> {
    t: &'static Text,
    a: &'static AdminText,
    f: &'a Frame,
    clients: &'a [ClientView],
    next: Option<String>,
    roles: &'static [Role],
}

#[derive(Template)]
#[template(path = "admin/client.html")]
struct ClientPage<'a> {
    t: &'static Text,
    a: &'static AdminText,
    f: &'a Frame,
    c: &'a ClientView,
    secret: Option<Shown>,
    confidential: bool,
}

/// The subject under which a client's new secret waits for its page.
fn subject(client_id: &str) -> String {
    format!("client:{client_id}")
}

/// A client's id in the path `…/clients/{client_id}…`.
type ClientPath = Path<(String, String)>;

/// `GET /admin/t/{slug}/clients`.
pub async fn list(ctx: Ctx, Query(q): Query<PageQuery>) -> Result<Response, AppError> {
    let page = ctx.page(&q, admin::clients::list).await?;
    let f = ctx.frame(Section::Clients).await?;
    ok(&ClientsPage { t: ctx.t(), a: ctx.a(), f: &f, clients: &page.items, next: page.next_cursor, roles: Role::ALL })
}

/// `GET /admin/t/{slug}/clients/{client_id}`: one client, with its new secret if this is the
/// page right after it was made.
pub async fn show(ctx: Ctx, Path((_, client_id)): ClientPath) -> Result<Response, AppError> {
    let c = admin::clients::get(&ctx.state.db, &ctx.caller, &client_id).await.map_err(ctx.refused())?;
    let f = ctx.frame(Section::Clients).await?;
    let secret = frame::take_once(&ctx.state, &ctx.session, &subject(&client_id)).await?;
    let confidential = c.client_type == ClientType::Confidential;
    ok(&ClientPage { t: ctx.t(), a: ctx.a(), f: &f, c: &c, secret, confidential })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateForm {
    csrf: String,
    name: String,
    public: Option<String>,
    grant_code: Option<String>,
    grant_refresh: Option<String>,
    grant_client_credentials: Option<String>,
    grant_device: Option<String>,
    #[serde(default)]
    redirect_uris: String,
    /// A service account's role; empty for none.
    #[serde(default)]
    role: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateForm {
    csrf: String,
    name: String,
    #[serde(default)]
    redirect_uris: String,
}

crate::session::csrf_field!(CreateForm, UpdateForm);

/// The redirect URIs of a form field: separated by spaces (a URI has none, and a newline is a
/// control character, which the form extractor refuses).
fn uris(ctx: &Ctx, field: &str) -> Result<Vec<String>, AppError> {
    let list: Vec<String> = field.split_whitespace().map(str::to_owned).collect();
    if field.len() > MAX_URIS_LEN || list.len() > MAX_URIS {
        return Err(ctx.refused()(ServiceError::Invalid(format!("give at most {MAX_URIS} redirect URIs"))));
    }
    Ok(list)
}

/// `POST /admin/t/{slug}/clients`.
pub async fn create(ctx: Ctx, SessionForm(form): SessionForm<CreateForm>) -> Result<Response, AppError> {
    let grants = [
        (&form.grant_code, "authorization_code"),
        (&form.grant_refresh, "refresh_token"),
        (&form.grant_client_credentials, "client_credentials"),
        (&form.grant_device, "device_code"),
    ]
    .into_iter()
    .filter(|(on, _)| ticked(on))
    .map(|(_, grant)| grant.to_owned())
    .collect();
    let role = match form.role.as_str() {
        "" => None,
        word => {
            Some(Role::from_db_str(word).ok_or_else(|| ctx.refused()(ServiceError::Invalid("unknown role".into())))?)
        }
    };
    let new = NewClient {
        name: form.name,
        grants,
        public: ticked(&form.public),
        redirect_uris: uris(&ctx, &form.redirect_uris)?,
        role,
        ..Default::default()
    };
    let created = admin::clients::create(&ctx.state.db, &ctx.caller, new).await.map_err(ctx.refused())?;
    if let Some(secret) = &created.client_secret {
        keep_secret(&ctx, &created.client_id, secret.expose()).await?;
    }
    ctx.done(&format!("/clients/{}", created.client_id), ctx.a().client_created).await
}

/// `POST /admin/t/{slug}/clients/{client_id}`: a new name and redirect URIs.
pub async fn update(
    ctx: Ctx,
    Path((_, client_id)): ClientPath,
    SessionForm(form): SessionForm<UpdateForm>,
) -> Result<Response, AppError> {
    let change = ClientChange {
        name: Some(form.name),
        redirect_uris: Some(uris(&ctx, &form.redirect_uris)?),
        ..Default::default()
    };
    let op = admin::clients::update(&ctx.state.db, &ctx.caller, &client_id, change);
    ctx.act(op, &format!("/clients/{client_id}"), ctx.a().client_updated).await
}

/// `POST /admin/t/{slug}/clients/{client_id}/rotate`: a new secret, shown once.
pub async fn rotate(ctx: Ctx, Path((_, client_id)): ClientPath, _: Button) -> Result<Response, AppError> {
    let rotated = admin::clients::rotate_secret(&ctx.state.db, &ctx.caller, &client_id).await.map_err(ctx.refused())?;
    keep_secret(&ctx, &client_id, rotated.client_secret.expose()).await?;
    ctx.done(&format!("/clients/{client_id}"), ctx.a().client_rotated).await
}

/// `POST /admin/t/{slug}/clients/{client_id}/delete`.
pub async fn delete(ctx: Ctx, Path((_, client_id)): ClientPath, _: Button) -> Result<Response, AppError> {
    ctx.act(admin::clients::delete(&ctx.state.db, &ctx.caller, &client_id), "/clients", ctx.a().client_deleted).await
}

/// Keeps a client's new secret for the client's page, the next this session opens.
async fn keep_secret(ctx: &Ctx, client_id: &str, secret: &str) -> Result<(), AppError> {
    frame::keep_once(&ctx.state, &ctx.session, &subject(client_id), ctx.a().client_secret, secret).await
}
