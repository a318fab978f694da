//! `/admin/t/{slug}/settings`: the organisation's settings (whether every member needs a
//! second factor).

use askama::Template;
use axum::response::Response;
use serde::Deserialize;

use super::frame::{Frame, Section, ticked};
use super::{Ctx, ok};
use crate::admin::settings::{SettingsChange, TenantSettings};
use crate::admin::{self, Action};
use crate::error::AppError;
use crate::html::text::{AdminText, Text};
use crate::session::SessionForm;

#[derive(Template)]
#[template(path = "admin/settings.html")]
struct SettingsPage<'a> {
    t: &'static Text,
    a: &'static AdminText,
    f: &'a Frame,
    s: &'a TenantSettings,
}

/// `GET /admin/t/{slug}/settings`.
pub async fn show(ctx: Ctx) -> Result<Response, AppError> {
    let s = admin::settings::get(&ctx.state.db, &ctx.caller).await.map_err(ctx.refused())?;
    let f = ctx.frame(Section::Settings).await?;
    ok(&SettingsPage { t: ctx.t(), a: ctx.a(), f: &f, s: &s })
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
pub async fn update(ctx: Ctx, SessionForm(form): SessionForm<SettingsForm>) -> Result<Response, AppError> {
    let change = SettingsChange { require_mfa: Some(ticked(&form.require_mfa)) };
    ctx.act(admin::settings::update(&ctx.state.db, &ctx.caller, change), "/settings", ctx.a().settings_saved).await
}
