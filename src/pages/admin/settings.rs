//! `/admin/t/{slug}/settings`: the organisation's settings (whether every member needs a
//! second factor).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tower_sessions::Session;

use super::frame::{Frame, Section, refused, ticked};
use super::{TenantCaller, done};
use crate::admin::settings::{SettingsChange, TenantSettings};
use crate::admin::{self, Action};
use crate::error::AppError;
use crate::html::text::{ADMIN, AdminText, EN, Text};
use crate::render::render;
use crate::session::SessionForm;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "admin/settings.html")]
struct SettingsPage<'a> {
    t: &'static Text,
    a: &'static AdminText,
    f: &'a Frame,
    s: &'a TenantSettings,
}

/// `GET /admin/t/{slug}/settings`.
pub async fn show(
    State(state): State<AppState>,
    session: Session,
    TenantCaller(caller): TenantCaller,
) -> Result<Response, AppError> {
    let s = admin::settings::get(&state.db, &caller).await.map_err(refused)?;
    let f = Frame::new(&session, &caller, Section::Settings).await?;
    Ok(render(StatusCode::OK, &SettingsPage { t: &EN, a: &ADMIN, f: &f, s: &s }, &[]))
}

/// The settings form: a checkbox is absent when unticked.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsForm {
    csrf: String,
    require_mfa: Option<String>,
}

crate::session::csrf_field!(SettingsForm);

/// `POST /admin/t/{slug}/settings`.
pub async fn update(
    State(state): State<AppState>,
    session: Session,
    TenantCaller(caller): TenantCaller,
    SessionForm(form): SessionForm<SettingsForm>,
) -> Result<Response, AppError> {
    let change = SettingsChange { require_mfa: Some(ticked(&form.require_mfa)) };
    admin::settings::update(&state.db, &caller, change).await.map_err(refused)?;
    done(&session, &format!("/admin/t/{}/settings", caller.slug), ADMIN.settings_saved).await
}
