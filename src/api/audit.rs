//! `/api/v1/audit`: the tenant's audit log (`crate::admin::audit`): filtered pages newest
//! first, an export as JSON lines oldest first, and a check of the keyed hash chain.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiCaller, ErrorBody, PageQuery};
use crate::admin::audit::{self, AuditEntry, AuditFilter, AuditVerification};
use crate::error::AppError;
use crate::extract::Query;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(export)).routes(routes!(verify))
}

/// The filters of `GET /audit` and `GET /audit/export`, with `cursor` and `limit` for pages.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// An action (`client.created`), or a prefix ending in `*` (`client.*`).
    #[param(max_length = 200)]
    action: Option<String>,
    /// Who acted: `kind:id` (`user:…`, `client:…`), `kind:` or an id alone.
    #[param(max_length = 200)]
    actor: Option<String>,
    /// What was acted on: `kind:id` (`user:…`, `client:…`, `token_family:…`), `kind:` or an id.
    #[param(max_length = 200)]
    target: Option<String>,
    /// At or after (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// Before (RFC 3339).
    until: Option<DateTime<Utc>>,
    /// The `next_cursor` of the page before (`GET /audit` only).
    cursor: Option<String>,
    /// Items per page, 1-200 (default 50; `GET /audit` only).
    limit: Option<u32>,
}

impl AuditQuery {
    fn filter(&self) -> AuditFilter {
        AuditFilter {
            action: self.action.clone(),
            actor: self.actor.clone(),
            target: self.target.clone(),
            since: self.since,
            until: self.until,
        }
    }
}

/// A page of entries, newest first.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    items: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; absent on the last.
    next_cursor: Option<String>,
}

/// The entries the filters select, newest first.
#[utoipa::path(get, path = "/audit", tag = "audit", operation_id = "audit_list",
    params(AuditQuery),
    extensions(("x-permission" = json!("audit.read"))),
    responses((status = 200, body = AuditPage), (status = "4XX", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Query(q): Query<AuditQuery>,
) -> Result<axum::Json<AuditPage>, AppError> {
    let cursor = PageQuery { cursor: q.cursor.clone(), limit: q.limit }.cursor()?;
    let page = audit::query(&state.db, &caller, &q.filter(), &cursor).await?;
    Ok(axum::Json(AuditPage { items: page.items, next_cursor: page.next_cursor }))
}

/// The entries the filters select as JSON lines, oldest first, one stored row a line (the
/// format of `audit export`: without filters it verifies offline with `audit verify --file`).
/// At most 50000 rows; more matching is a 400 asking for a narrower window.
#[utoipa::path(get, path = "/audit/export", tag = "audit", operation_id = "audit_export",
    params(AuditQuery),
    extensions(("x-permission" = json!("audit.read"))),
    responses(
        (status = 200, description = "One JSON object a line", content_type = "application/x-ndjson", body = String),
        (status = "4XX", body = ErrorBody)))]
async fn export(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Query(q): Query<AuditQuery>,
) -> Result<Response, AppError> {
    if q.cursor.is_some() || q.limit.is_some() {
        return Err(AppError::bad_request("an export takes no cursor or limit: narrow it with since and until"));
    }
    let rows = audit::export(&state.db, &caller, &q.filter()).await?;
    let text = audit::json_lines(&rows).map_err(|e| AppError::Internal(e.into()))?;
    let mut res = text.into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    Ok(res)
}

/// Check the tenant's keyed hash chain: every row's MAC and its link to the row before.
/// The head anchor (`SLUG:SEQ:HASH`) is worth keeping outside the database.
#[utoipa::path(get, path = "/audit/verify", tag = "audit", operation_id = "audit_verify",
    extensions(("x-permission" = json!("audit.read"))),
    responses((status = 200, body = AuditVerification), (status = "4XX", body = ErrorBody)))]
async fn verify(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<axum::Json<AuditVerification>, AppError> {
    Ok(axum::Json(audit::verify(&state.db, &caller).await?))
}
