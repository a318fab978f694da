//! `/admin/t/{slug}/audit`: the organisation's audit log, newest first, filtered by action,
//! actor, target and time, a page at a time (the cursor of the last entry shown).

use askama::Template;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use super::frame::{Frame, Section};
use super::{Ctx, ok};
use crate::admin::audit::{AuditEntry, AuditFilter};
use crate::admin::{self, Cursor};
use crate::error::AppError;
use crate::extract::Query;
use crate::html::text::{AdminText, Text};
use crate::service_error::ServiceError;

/// Entries on one page.
const PER_PAGE: u32 = 50;

/// The filters as the form sends them (empty fields are no filter).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub since: String,
    #[serde(default)]
    pub until: String,
    pub cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage<'a> {
    t: &'static Text,
    a: &'static AdminText,
    f: &'a Frame,
    q: &'a AuditQuery,
    entries: &'a [AuditEntry],
    /// The query string of the next page (the filters and its cursor).
    next: Option<String>,
}

/// A moment as the filter form takes it: RFC 3339, or a date (its midnight, UTC).
fn moment(field: &str, what: &str) -> Result<Option<DateTime<Utc>>, ServiceError> {
    let field = field.trim();
    if field.is_empty() {
        return Ok(None);
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(field) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    NaiveDate::parse_from_str(field, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| Some(d.and_utc()))
        .ok_or_else(|| ServiceError::Invalid(format!("{what} must be a date (YYYY-MM-DD) or an RFC 3339 time")))
}

fn text(field: &str) -> Option<String> {
    let field = field.trim();
    (!field.is_empty()).then(|| field.to_owned())
}

/// `GET /admin/t/{slug}/audit`.
pub async fn list(ctx: Ctx, Query(q): Query<AuditQuery>) -> Result<Response, AppError> {
    let filter = AuditFilter {
        action: text(&q.action),
        actor: text(&q.actor),
        target: text(&q.target),
        since: moment(&q.since, "since").map_err(ctx.refused())?,
        until: moment(&q.until, "until").map_err(ctx.refused())?,
    };
    let cursor = Cursor::parse(q.cursor.as_deref(), Some(PER_PAGE)).map_err(ctx.refused())?;
    let page = admin::audit::query(&ctx.state.db, &ctx.caller, &filter, &cursor).await.map_err(ctx.refused())?;
    let f = ctx.frame(Section::Audit).await?;
    let next = page.next_cursor.map(|c| {
        serde_urlencoded::to_string([
            ("action", q.action.as_str()),
            ("actor", &q.actor),
            ("target", &q.target),
            ("since", &q.since),
            ("until", &q.until),
            ("cursor", &c),
        ])
        .unwrap_or_default()
    });
    ok(&AuditPage { t: ctx.t(), a: ctx.a(), f: &f, q: &q, entries: &page.items, next })
}
