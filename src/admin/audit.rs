//! The caller's tenant's audit log: filtered pages (newest first), an export (oldest first, in
//! the format of `audit export`), and a check of the keyed hash chain. The chain's walk and
//! the export's lines are shared with the command line (`cli/audit.rs`), so the API, the pages
//! and `audit verify` give one verdict (ARCHITECTURE.md, "Audit log").

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Action, Caller, Cursor, Page};
use crate::db::audit::{Anchor, AuditRow, RowFilter, Walk, verify_chain};
use crate::db::{self, Database};
use crate::master_key::AuditKey;
use crate::service_error::ServiceError;

/// The most rows one export holds. An export is built in memory; a log with more rows matching
/// is exported in parts (`since`/`until`), or whole with `audit export` on the server.
pub const MAX_EXPORT_ROWS: usize = 50_000;

/// The longest filter value accepted.
const MAX_FILTER_LEN: usize = 200;

/// Which entries to show; every part given must match.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// An action (`client.created`), or a prefix ending in `*` (`client.*`).
    pub action: Option<String>,
    /// `kind:id` (`user:0190…`, `client:abc`), `kind:` (every actor of a kind) or an id alone.
    pub actor: Option<String>,
    /// Like `actor`, for the target (`user:…`, `client:…`, `token_family:…`, `tenant:…`).
    pub target: Option<String>,
    /// At or after.
    pub since: Option<DateTime<Utc>>,
    /// Before.
    pub until: Option<DateTime<Utc>>,
}

/// One entry of the log as the admin surface shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Its place in the tenant's chain (1, 2, …).
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// Who acted: `kind:id` (`user:…`, `client:…`, `operator:root`) or a kind alone (`system`).
    pub actor: String,
    /// What it acted on, as `kind:id`.
    pub target: Option<String>,
    pub action: String,
    pub outcome: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub details: serde_json::Value,
    /// The row's keyed hash (hex).
    pub hash: String,
}

fn joined(kind: Option<&str>, id: Option<&str>) -> Option<String> {
    match (kind, id) {
        (Some(k), Some(i)) => Some(format!("{k}:{i}")),
        (Some(k), None) => Some(k.to_owned()),
        (None, Some(i)) => Some(i.to_owned()),
        (None, None) => None,
    }
}

impl From<&AuditRow> for AuditEntry {
    fn from(r: &AuditRow) -> Self {
        Self {
            seq: r.seq,
            at: r.occurred_at,
            actor: joined(Some(&r.actor_kind), r.actor_id.as_deref()).unwrap_or_default(),
            target: joined(r.target_kind.as_deref(), r.target_id.as_deref()),
            action: r.action.clone(),
            outcome: r.outcome.clone(),
            ip: r.ip.clone(),
            user_agent: r.user_agent.clone(),
            request_id: r.request_id.clone(),
            details: r.details.clone(),
            hash: hex::encode(&r.hash),
        }
    }
}

/// A filter value checked: bounded, printable.
fn bounded<'a>(value: Option<&'a str>, what: &str) -> Result<Option<&'a str>, ServiceError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) if v.chars().count() > MAX_FILTER_LEN || v.chars().any(char::is_control) => {
            Err(ServiceError::Invalid(format!("{what} must be at most {MAX_FILTER_LEN} printable characters")))
        }
        Some(v) => Ok(Some(v)),
    }
}

/// `kind:id`, `kind:` or `id` as (kind, id). A kind is lower-case letters and `_`; anything
/// else before a `:` is part of an id.
fn kind_and_id(value: &str) -> (Option<&str>, Option<&str>) {
    match value.split_once(':') {
        Some((kind, id)) if !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') => {
            (Some(kind), (!id.is_empty()).then_some(id))
        }
        _ => (None, Some(value)),
    }
}

impl AuditFilter {
    /// The filter as the query takes it; `Invalid` for an oversized value or an empty window.
    fn rows(&self) -> Result<RowFilter<'_>, ServiceError> {
        let action = bounded(self.action.as_deref(), "action")?;
        let (action, action_prefix) = match action {
            Some(a) if a.ends_with('*') => (None, Some(a.trim_end_matches('*'))),
            other => (other, None),
        };
        let (actor_kind, actor_id) = bounded(self.actor.as_deref(), "actor")?.map_or((None, None), kind_and_id);
        let (target_kind, target_id) = bounded(self.target.as_deref(), "target")?.map_or((None, None), kind_and_id);
        if let (Some(since), Some(until)) = (self.since, self.until)
            && since >= until
        {
            return Err(ServiceError::Invalid("since must be before until".into()));
        }
        Ok(RowFilter {
            action,
            action_prefix: action_prefix.filter(|p| !p.is_empty()),
            actor_kind,
            actor_id,
            target_kind,
            target_id,
            since: self.since,
            until: self.until,
        })
    }
}

/// A page of the entries `filter` selects, newest first; the cursor is a row's `seq`.
pub async fn query(
    db: &Database,
    caller: &Caller,
    filter: &AuditFilter,
    cursor: &Cursor,
) -> Result<Page<AuditEntry>, ServiceError> {
    caller.require(Action::ReadAudit)?;
    let rows_filter = filter.rows()?;
    let before = match cursor.after.as_deref() {
        Some(key) => Some(key.parse::<i64>().map_err(|_| ServiceError::Invalid("unreadable cursor".into()))?),
        None => None,
    };
    let mut tx = db.tenant(caller.tenant_id).await?;
    let rows = db::audit::filtered(&mut tx, &rows_filter, Walk::NewestBefore(before), cursor.fetch()).await?;
    tx.commit().await?;
    Ok(cursor.page(rows.iter().map(AuditEntry::from).collect(), |e| e.seq.to_string()))
}

/// The rows `filter` selects, oldest first, whole (as `audit export` writes them: an export
/// with no filter verifies offline with `audit verify --file`). At most [`MAX_EXPORT_ROWS`];
/// more is `Invalid`, asking for a narrower window, rather than a silently cut export.
pub async fn export(db: &Database, caller: &Caller, filter: &AuditFilter) -> Result<Vec<AuditRow>, ServiceError> {
    caller.require(Action::ReadAudit)?;
    let rows_filter = filter.rows()?;
    let mut tx = db.tenant(caller.tenant_id).await?;
    let limit = i64::try_from(MAX_EXPORT_ROWS).unwrap_or(i64::MAX) + 1;
    let rows = db::audit::filtered(&mut tx, &rows_filter, Walk::OldestAfter(None), limit).await?;
    tx.commit().await?;
    if rows.len() > MAX_EXPORT_ROWS {
        return Err(ServiceError::Invalid(format!(
            "more than {MAX_EXPORT_ROWS} entries match: export a narrower window (since, until)"
        )));
    }
    Ok(rows)
}

/// Rows as JSON lines, one object a line, each ending in a newline: the format of
/// `audit export` and of the API's export.
pub fn json_lines(rows: &[AuditRow]) -> Result<String, serde_json::Error> {
    let mut text = String::new();
    for row in rows {
        text.push_str(&serde_json::to_string(row)?);
        text.push('\n');
    }
    Ok(text)
}

/// Where a chain first breaks.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ChainBreakView {
    /// The first row that does not fit.
    pub seq: i64,
    pub problem: String,
}

/// The verdict on one tenant's chain.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AuditVerification {
    /// True when every row's keyed hash and link to the row before hold.
    pub ok: bool,
    pub rows: usize,
    /// Rows from before the chain was keyed, checked with plain SHA-256 only.
    pub legacy_rows: usize,
    /// The last row as an anchor `SLUG:SEQ:HASH`, to keep outside the database and check
    /// later with `audit verify --against`.
    pub head_anchor: Option<String>,
    pub first_break: Option<ChainBreakView>,
}

/// Every row of a tenant's chain, in order (the command line's verify and export, and
/// [`verify`]).
pub async fn chain(db: &Database, tenant_id: Uuid) -> Result<Vec<AuditRow>, sqlx::Error> {
    let mut tx = db.tenant(tenant_id).await?;
    let rows = db::audit::rows(&mut tx).await?;
    tx.commit().await?;
    Ok(rows)
}

/// The verdict on a tenant's rows (in order) under `key`; the anchor names the tenant by
/// `slug`.
pub fn verification(rows: &[AuditRow], key: &AuditKey, slug: &str) -> AuditVerification {
    let verdict = verify_chain(rows, key);
    AuditVerification {
        ok: verdict.is_ok(),
        rows: rows.len(),
        legacy_rows: verdict.as_ref().map_or(0, |s| s.legacy_rows),
        head_anchor: rows.last().and_then(|r| Anchor::of(r, slug)).map(|a| a.to_string()),
        first_break: verdict.err().map(|b| ChainBreakView { seq: b.seq, problem: b.problem.to_owned() }),
    }
}

/// Checks the caller's tenant's chain under the server's audit key.
pub async fn verify(db: &Database, caller: &Caller) -> Result<AuditVerification, ServiceError> {
    caller.require(Action::ReadAudit)?;
    let mut tx = db.tenant(caller.tenant_id).await?;
    let rows = db::audit::rows(&mut tx).await?;
    let key = tx.audit_key().ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("the audit log has no key")))?;
    let verdict = verification(&rows, key, &caller.slug);
    tx.commit().await?;
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Actor and target filters read `kind:id`, `kind:` and a bare id; an id with a `:` in it
    /// after something that is no kind stays whole.
    #[test]
    fn kinds_and_ids() {
        assert_eq!(kind_and_id("user:abc"), (Some("user"), Some("abc")));
        assert_eq!(kind_and_id("token_family:"), (Some("token_family"), None));
        assert_eq!(kind_and_id("abc"), (None, Some("abc")));
        assert_eq!(kind_and_id("10.0.0.1:80"), (None, Some("10.0.0.1:80")));
        let f = AuditFilter { action: Some("client.*".into()), ..Default::default() };
        let r = f.rows().unwrap();
        assert_eq!((r.action, r.action_prefix), (None, Some("client.")));
        let long = AuditFilter { actor: Some("x".repeat(201)), ..Default::default() };
        assert!(long.rows().is_err());
    }
}
