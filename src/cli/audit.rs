//! The audit commands: `audit verify` (the database's chains, or an export file offline) and
//! `audit export`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use serde::Serialize;

use super::print;
use crate::db::Database;
use crate::db::audit::AuditRow;
use crate::tenancy;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check every tenant's hash chain (or one tenant's, or an export file without any
    /// database); exits 1 at the first broken row.
    Verify {
        #[arg(long)]
        tenant: Option<String>,
        /// A file written by `audit export`; checked offline.
        #[arg(long, conflicts_with = "tenant")]
        file: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Write one tenant's chain as JSON lines (one row a line, in order), to keep outside the
    /// database. Its last hash is the chain's head: an anchor against cutting rows off the end.
    Export {
        #[arg(long)]
        tenant: String,
        /// Write to this file instead of standard output (then a summary is printed).
        #[arg(long)]
        output: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

/// One tenant's verdict.
#[derive(Serialize)]
struct ChainReport {
    tenant: String,
    rows: usize,
    ok: bool,
    /// Hex hash of the last row: compare with an export's to see rows cut off the end.
    head: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    broken_at: Option<crate::db::audit::ChainBreak>,
}

/// `audit verify`: walks each tenant's chain in a transaction for that tenant.
pub(super) async fn audit_verify(db: &Database, only: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let mut tx = db.unscoped().await?;
    let mut tenants = crate::db::tenants::list(&mut tx).await?;
    tx.commit().await?;
    if let Some(slug) = only {
        tenants.retain(|(_, s)| s == slug);
        if tenants.is_empty() {
            anyhow::bail!("no tenant with slug {slug:?}");
        }
    }
    let mut reports = Vec::new();
    for (id, slug) in tenants {
        let mut tx = db.tenant(id).await?;
        let rows = crate::db::audit::rows(&mut tx).await?;
        tx.commit().await?;
        let verdict = crate::db::audit::verify_chain(&rows);
        let head = rows.last().map(|r| hex::encode(&r.hash));
        reports.push(ChainReport {
            tenant: slug,
            rows: rows.len(),
            ok: verdict.is_ok(),
            head,
            broken_at: verdict.err(),
        });
    }
    let all_ok = reports.iter().all(|r| r.ok);
    let summary = serde_json::json!({ "ok": all_ok, "tenants": reports });
    print(json, &summary, || {
        reports
            .iter()
            .map(|r| match &r.broken_at {
                None => format!("{}: {} rows, chain intact", r.tenant, r.rows),
                Some(b) => format!("{}: BROKEN at row {}: {}", r.tenant, b.seq, b.problem),
            })
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `audit export`: one tenant's chain as JSON lines, in `seq` order.
pub(super) async fn audit_export(db: &Database, slug: &str, output: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let tenant = tenancy::find_tenant(db, slug).await?;
    let mut tx = db.tenant(tenant.id).await?;
    let rows = crate::db::audit::rows(&mut tx).await?;
    tx.commit().await?;
    let mut text = String::new();
    for row in &rows {
        text.push_str(&serde_json::to_string(row)?);
        text.push('\n');
    }
    let Some(path) = output else {
        std::io::stdout().lock().write_all(text.as_bytes())?;
        return Ok(());
    };
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    let head = rows.last().map(|r| hex::encode(&r.hash));
    let summary = serde_json::json!({
        "tenant": slug, "tenant_id": tenant.id, "rows": rows.len(), "head": head, "file": path.display().to_string(),
    });
    print(json, &summary, || {
        format!("wrote {} rows of {slug} to {}; head {}", rows.len(), path.display(), head.as_deref().unwrap_or("-"))
    })
}

/// `audit verify --file`: checks an export offline. A line that is not a row, a row of another
/// tenant, and every break `verify_chain` finds are reported with their line number.
pub(super) fn audit_verify_file(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut rows: Vec<AuditRow> = Vec::new();
    let mut lines: Vec<usize> = Vec::new();
    let mut problem: Option<(usize, Option<i64>, String)> = None;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<AuditRow>(line) {
            Ok(row) if rows.first().is_some_and(|first| first.tenant_id != row.tenant_id) => {
                problem = Some((i + 1, Some(row.seq), "belongs to another tenant's chain".into()));
                break;
            }
            Ok(row) => {
                rows.push(row);
                lines.push(i + 1);
            }
            Err(_) => {
                problem = Some((i + 1, None, "is not an audit row".into()));
                break;
            }
        }
    }
    if problem.is_none()
        && let Some((index, broken)) = crate::db::audit::first_break(&rows)
    {
        problem = Some((lines[index], Some(broken.seq), broken.problem.to_owned()));
    }
    let head = rows.last().map(|r| hex::encode(&r.hash));
    let broken_at =
        problem.as_ref().map(|(line, seq, why)| serde_json::json!({ "line": line, "seq": seq, "problem": why }));
    let report = serde_json::json!({
        "file": path.display().to_string(),
        "tenant_id": rows.first().map(|r| r.tenant_id),
        "rows": rows.len(),
        "ok": problem.is_none(),
        "head": if problem.is_none() { head.clone() } else { None },
        "broken_at": broken_at,
    });
    print(json, &report, || match &problem {
        None => {
            format!("{}: {} rows, chain intact; head {}", path.display(), rows.len(), head.as_deref().unwrap_or("-"))
        }
        Some((line, Some(seq), why)) => format!("{}: BROKEN at line {line} (row {seq}): {why}", path.display()),
        Some((line, None, why)) => format!("{}: BROKEN at line {line}: {why}", path.display()),
    })?;
    Ok(if problem.is_none() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
