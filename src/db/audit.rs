//! Appending to the audit log: one keyed hash chain per tenant.
//!
//! Appends to one tenant's chain are serialised by a transaction-level advisory lock on the
//! tenant, so concurrent writers never fork the chain; the row is written in the caller's
//! transaction, so the event and the action it records commit (or fail) together. Each row's
//! `hash` is an HMAC under the audit key (`chain.rs`), which the transaction carries from the
//! [`Database`](super::Database) it was opened on; without a key nothing is written.

mod anchor;
mod chain;

use uuid::Uuid;

pub use self::anchor::{Anchor, AnchorCheck, AnchorError, check_anchor};
pub use self::chain::{ChainBreak, ChainSummary, HMAC_SHA256_V1, LEGACY_SHA256, first_break, verify_chain};
use super::Tx;

/// One event, as the caller describes it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Event<'a> {
    pub actor_kind: &'a str,
    pub actor_id: Option<String>,
    pub target_kind: Option<&'a str>,
    pub target_id: Option<String>,
    pub action: &'a str,
    pub outcome: &'a str,
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub details: serde_json::Value,
}

/// Who acts, and from where: the half of an [`Event`] that is the same for everything one
/// request or command does. A request's actor comes from its `RequestMeta`
/// (`crate::protocol::meta`); a CLI command's is the operator (the OS user, no IP).
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub kind: &'static str,
    pub id: Option<String>,
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl Actor {
    /// The provider itself (bootstrap, library callers without a person behind them).
    pub fn system() -> Self {
        Self { kind: "system", ..Self::default() }
    }

    /// A person at the command line, by OS user name.
    pub fn operator(name: impl Into<String>) -> Self {
        Self { kind: "operator", id: Some(name.into()), ..Self::default() }
    }

    /// An event by this actor on `target` (kind, id).
    pub fn event<'a>(
        &'a self,
        action: &'a str,
        target: (&'a str, Option<String>),
        details: serde_json::Value,
    ) -> Event<'a> {
        Event {
            actor_kind: self.kind,
            actor_id: self.id.clone(),
            target_kind: Some(target.0),
            target_id: target.1,
            action,
            outcome: "success",
            ip: self.ip,
            user_agent: self.user_agent.clone(),
            request_id: self.request_id.clone(),
            details,
        }
    }
}

/// Appends `event` to the chain of the transaction's tenant. Fails, writing nothing, when the
/// transaction has no audit key: an unkeyed row would break the chain for good.
pub async fn append(tx: &mut Tx, event: &Event<'_>) -> Result<(), sqlx::Error> {
    if tx.audit_key().is_none() {
        return Err(no_audit_key());
    }
    let tenant_id = tx.tenant_id().unwrap_or_default();
    // The chain's lock (a transaction-level advisory lock on a stable 64-bit key per tenant),
    // then its head, in one round trip (migrations/0019_audit_chain_head.sql).
    let head: (Option<i64>, Option<Vec<u8>>) =
        sqlx::query_as("SELECT seq, hash FROM lca_audit_chain_head($1)").bind(tenant_id).fetch_one(tx.conn()).await?;
    let (seq, prev_hash) = match head {
        (Some(seq), Some(hash)) => (seq + 1, hash),
        _ => (1, vec![0u8; 32]),
    };
    // Microseconds: the precision PostgreSQL stores, so the hash can be recomputed from the row.
    let now = chrono::Utc::now();
    let occurred_at = chrono::DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
    let details = if event.details.is_null() { serde_json::json!({}) } else { event.details.clone() };
    let mut row = AuditRow {
        tenant_id,
        seq,
        occurred_at,
        actor_kind: event.actor_kind.to_owned(),
        actor_id: event.actor_id.clone(),
        target_kind: event.target_kind.map(str::to_owned),
        target_id: event.target_id.clone(),
        action: event.action.to_owned(),
        outcome: event.outcome.to_owned(),
        ip: event.ip.map(|ip| ip.to_string()),
        user_agent: event.user_agent.clone(),
        request_id: event.request_id.clone(),
        details,
        mac_version: HMAC_SHA256_V1,
        prev_hash,
        hash: Vec::new(),
    };
    row.hash = row.keyed_hash(tx.audit_key().ok_or_else(no_audit_key)?).to_vec();
    sqlx::query(
        "INSERT INTO audit_events (tenant_id, seq, occurred_at, actor_kind, actor_id, target_kind, target_id, action, \
         outcome, ip, user_agent, request_id, details, mac_version, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::inet, $11, $12, $13, $14, $15, $16)",
    )
    .bind(row.tenant_id)
    .bind(row.seq)
    .bind(row.occurred_at)
    .bind(&row.actor_kind)
    .bind(&row.actor_id)
    .bind(&row.target_kind)
    .bind(&row.target_id)
    .bind(&row.action)
    .bind(&row.outcome)
    .bind(&row.ip)
    .bind(&row.user_agent)
    .bind(&row.request_id)
    .bind(&row.details)
    .bind(row.mac_version)
    .bind(&row.prev_hash)
    .bind(&row.hash)
    .execute(tx.conn())
    .await?;
    Ok(())
}

fn no_audit_key() -> sqlx::Error {
    sqlx::Error::Configuration("the audit log has no key (Database::with_audit_key was not called)".into())
}

/// One row of the log as stored (and as `audit export` writes it, one JSON object a line).
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct AuditRow {
    pub tenant_id: Uuid,
    pub seq: i64,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub action: String,
    pub outcome: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub details: serde_json::Value,
    /// How `hash` was computed: [`HMAC_SHA256_V1`], or [`LEGACY_SHA256`] for rows written
    /// before migration 0011 (and lines of exports from then, which lack the field).
    #[serde(default)]
    pub mac_version: i16,
    #[serde(with = "hex::serde")]
    pub prev_hash: Vec<u8>,
    #[serde(with = "hex::serde")]
    pub hash: Vec<u8>,
}

/// Every row of the transaction's tenant, in order.
pub async fn rows(tx: &mut Tx) -> Result<Vec<AuditRow>, sqlx::Error> {
    let tenant_id = tx.tenant_id().unwrap_or_default();
    sqlx::query_as(
        "SELECT tenant_id, seq, occurred_at, actor_kind, actor_id, target_kind, target_id, action, outcome, \
         host(ip) AS ip, user_agent, request_id, details, mac_version, prev_hash, hash \
         FROM audit_events WHERE tenant_id = $1 ORDER BY seq",
    )
    .bind(tenant_id)
    .fetch_all(tx.conn())
    .await
}

/// The last row of the transaction's tenant.
pub async fn head(tx: &mut Tx) -> Result<Option<AuditRow>, sqlx::Error> {
    let tenant_id = tx.tenant_id().unwrap_or_default();
    sqlx::query_as(
        "SELECT tenant_id, seq, occurred_at, actor_kind, actor_id, target_kind, target_id, action, outcome, \
         host(ip) AS ip, user_agent, request_id, details, mac_version, prev_hash, hash \
         FROM audit_events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(tenant_id)
    .fetch_optional(tx.conn())
    .await
}

/// Which rows an admin query of the log selects; `None` selects any.
#[derive(Debug, Clone, Default)]
pub struct RowFilter<'a> {
    /// An exact action (`client.created`).
    pub action: Option<&'a str>,
    /// Actions starting with this (`client.`).
    pub action_prefix: Option<&'a str>,
    pub actor_kind: Option<&'a str>,
    pub actor_id: Option<&'a str>,
    pub target_kind: Option<&'a str>,
    pub target_id: Option<&'a str>,
    /// At or after.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Before.
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

/// The query of [`filtered`] (a macro: sqlx takes only static SQL): `$10` bounds `seq` on the
/// side the order walks, `$11` is the limit.
macro_rules! filtered_select {
    ($bound:literal, $order:literal) => {
        concat!(
            "SELECT tenant_id, seq, occurred_at, actor_kind, actor_id, target_kind, target_id, action, outcome, \
             host(ip) AS ip, user_agent, request_id, details, mac_version, prev_hash, hash \
             FROM audit_events WHERE tenant_id = $1 \
             AND ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR starts_with(action, $3)) \
             AND ($4::text IS NULL OR actor_kind = $4) AND ($5::text IS NULL OR actor_id = $5) \
             AND ($6::text IS NULL OR target_kind = $6) AND ($7::text IS NULL OR target_id = $7) \
             AND ($8::timestamptz IS NULL OR occurred_at >= $8) AND ($9::timestamptz IS NULL OR occurred_at < $9) \
             AND ($10::bigint IS NULL OR seq ",
            $bound,
            " $10) ORDER BY seq ",
            $order,
            " LIMIT $11"
        )
    };
}

/// Which way [`filtered`] walks the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// Newest first, rows before `seq` (a page of the viewer).
    NewestBefore(Option<i64>),
    /// Oldest first, rows after `seq` (an export).
    OldestAfter(Option<i64>),
}

/// Up to `limit` rows of the transaction's tenant that `filter` selects, in the order `walk`
/// says.
pub async fn filtered(
    tx: &mut Tx,
    filter: &RowFilter<'_>,
    walk: Walk,
    limit: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    let tenant_id = tx.tenant_id().unwrap_or_default();
    let (sql, bound) = match walk {
        Walk::NewestBefore(seq) => (filtered_select!("<", "DESC"), seq),
        Walk::OldestAfter(seq) => (filtered_select!(">", "ASC"), seq),
    };
    sqlx::query_as(sql)
        .bind(tenant_id)
        .bind(filter.action)
        .bind(filter.action_prefix)
        .bind(filter.actor_kind)
        .bind(filter.actor_id)
        .bind(filter.target_kind)
        .bind(filter.target_id)
        .bind(filter.since)
        .bind(filter.until)
        .bind(bound)
        .bind(limit)
        .fetch_all(tx.conn())
        .await
}
