//! The audit commands: `audit verify` (the database's chains, or an export file offline),
//! optionally against an anchor kept from an earlier export, and `audit export`.
//!
//! Both kinds of verify need the audit key, derived from the master key: a chain is keyed
//! (ARCHITECTURE.md, "Audit log"), so checking it without the key proves nothing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use serde::Serialize;

use super::output::print;
use crate::admin::audit::{self as admin_audit, ChainBreakView};
use crate::db::Database;
use crate::db::audit::{Anchor, AnchorCheck, AuditRow, check_anchor, first_break};
use crate::master_key::AuditKey;
use crate::tenancy;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check every tenant's keyed hash chain (or one tenant's, or an export file without any
    /// database); exits 1 at the first broken row, or when the anchor given with --against is
    /// no longer in the chain.
    Verify {
        #[arg(long)]
        tenant: Option<String>,
        /// A file written by `audit export`; checked offline (the master key is still needed).
        #[arg(long, conflicts_with = "tenant")]
        file: Option<PathBuf>,
        /// An earlier export's head: its file, or the anchor TENANT:SEQ:HASH `audit export`
        /// printed. Proves that row is still in the chain at its SEQ with the same hash, so no
        /// row at or before it was changed or cut off.
        #[arg(long, value_name = "FILE|HEAD", value_parser = parse_against)]
        against: Option<Against>,
        #[arg(long)]
        json: bool,
    },
    /// Write one tenant's chain as JSON lines (one row a line, in order), to keep outside the
    /// database. Its head (last row) is printed as an anchor TENANT:SEQ:HASH (on standard
    /// error when the rows go to standard output) for a later `audit verify --against`.
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

/// `audit verify` and `audit export` on the database (`run` in `cli/mod.rs` answers
/// `verify --file` before any database is opened).
pub(super) async fn run(command: AuditCommand, db: &Database, key: &AuditKey) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { tenant, file: None, against, json } => {
            audit_verify(db, key, tenant.as_deref(), against.as_ref(), json).await
        }
        AuditCommand::Verify { file: Some(file), against, json, .. } => {
            audit_verify_file(&file, key, against.as_ref(), json)
        }
        AuditCommand::Export { tenant, output, json } => {
            audit_export(db, &tenant, output.as_deref(), json).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Refuses a master key other than the one the audit log was written with, before a command
/// writes: its rows would break the chain for good. The newest row of the first tenant (by
/// slug, of the first 16) whose newest row is keyed decides; with none, there is nothing to
/// compare with. `audit verify` and `audit export` skip this: they write nothing, and verify
/// is how an operator finds out which it is, another key or a tampered row.
pub(super) async fn check_master_key(db: &Database, key: &AuditKey) -> anyhow::Result<()> {
    let mut tx = db.unscoped().await?;
    let tenants = crate::db::tenants::list(&mut tx).await?;
    tx.commit().await?;
    for (id, slug) in tenants.into_iter().take(16) {
        let mut tx = db.tenant(id).await?;
        let head = crate::db::audit::head(&mut tx).await?;
        tx.commit().await?;
        match head.as_ref().and_then(|h| h.written_under(key)) {
            Some(true) => return Ok(()),
            Some(false) => anyhow::bail!(
                "the newest audit row of tenant {slug} (row {}) was not written under this master key: \
                 LCA_MASTER_KEY (or the data directory's master.key) is not the server's, or that row \
                 was tampered with (`audit verify` shows which); refusing to write",
                head.map_or(0, |h| h.seq)
            ),
            None => {}
        }
    }
    Ok(())
}

/// What `--against` names: an anchor string, or an export file whose last row is one.
#[derive(Debug, Clone)]
pub enum Against {
    Head(Anchor),
    File(PathBuf),
}

/// An anchor if the text is one, else a file that exists; anything else is a usage error.
fn parse_against(s: &str) -> Result<Against, String> {
    match s.parse::<Anchor>() {
        Ok(anchor) => Ok(Against::Head(anchor)),
        Err(_) if Path::new(s).is_file() => Ok(Against::File(PathBuf::from(s))),
        Err(e) => Err(format!("neither an export file that exists nor an anchor: {e}")),
    }
}

/// The anchor `--against` names. A file's last row is the anchor only if the file itself is
/// an intact export under this key: a damaged or foreign file proves nothing.
fn resolve_anchor(against: &Against, key: &AuditKey) -> anyhow::Result<Anchor> {
    let path = match against {
        Against::Head(anchor) => return Ok(anchor.clone()),
        Against::File(path) => path,
    };
    let export = read_export(path, key)?;
    if let Some((line, _, why)) = &export.problem {
        anyhow::bail!("--against {}: not an intact export (line {line} {why})", path.display());
    }
    let last = export.rows.last().with_context(|| format!("--against {}: the export has no rows", path.display()))?;
    Anchor::of(last, &last.tenant_id.to_string()).with_context(|| format!("--against {}: bad hash", path.display()))
}

/// One tenant's verdict.
#[derive(Serialize)]
struct ChainReport {
    tenant: String,
    tenant_id: uuid::Uuid,
    rows: usize,
    /// Rows from before the chain was keyed (migration 0011): checked with plain SHA-256 only.
    legacy_rows: usize,
    ok: bool,
    /// Hex hash of the last row.
    head: Option<String>,
    /// The last row as an anchor (TENANT:SEQ:HASH): keep it to check against later.
    anchor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    broken_at: Option<ChainBreakView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    against: Option<AnchorReport>,
}

/// How the `--against` anchor compared with a chain.
#[derive(Serialize)]
struct AnchorReport {
    anchor: String,
    holds: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
}

impl AnchorReport {
    fn new(anchor: &Anchor, rows: &[AuditRow]) -> Self {
        let problem = match check_anchor(rows, anchor) {
            AnchorCheck::Holds => None,
            AnchorCheck::CutOff { end } => {
                Some(format!("row {} is gone: the chain ends at row {end} (rows were cut off its end)", anchor.seq))
            }
            AnchorCheck::Differs => Some(format!("row {} differs: it or a row before it was rewritten", anchor.seq)),
        };
        Self { anchor: anchor.to_string(), holds: problem.is_none(), problem }
    }

    fn line(&self) -> String {
        match &self.problem {
            None => format!("anchor {} holds", self.anchor),
            Some(why) => format!("anchor {} FAILS: {why}", self.anchor),
        }
    }
}

/// `audit verify`: walks each tenant's chain in a transaction for that tenant; with an anchor,
/// only the anchor's tenant.
async fn audit_verify(
    db: &Database,
    key: &AuditKey,
    only: Option<&str>,
    against: Option<&Against>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let anchor = against.map(|a| resolve_anchor(a, key)).transpose()?;
    let mut tx = db.unscoped().await?;
    let mut tenants = crate::db::tenants::list(&mut tx).await?;
    tx.commit().await?;
    if let Some(slug) = only {
        tenants.retain(|(_, s)| s == slug);
        if tenants.is_empty() {
            anyhow::bail!("no tenant with slug {slug:?}");
        }
    }
    if let Some(anchor) = &anchor {
        tenants.retain(|(id, slug)| anchor.names(*id, slug));
        if tenants.is_empty() {
            anyhow::bail!("the anchor names tenant {:?}, which is not {}", anchor.tenant, only.unwrap_or("a tenant"));
        }
    }
    let mut reports = Vec::new();
    for (id, slug) in tenants {
        // The same walk and verdict as the admin API's and pages' verify.
        let rows = admin_audit::chain(db, id).await?;
        let verdict = admin_audit::verification(&rows, key, &slug);
        let against = anchor.as_ref().map(|a| AnchorReport::new(a, &rows));
        reports.push(ChainReport {
            head: rows.last().map(|r| hex::encode(&r.hash)),
            anchor: verdict.head_anchor,
            tenant: slug,
            tenant_id: id,
            rows: verdict.rows,
            legacy_rows: verdict.legacy_rows,
            ok: verdict.ok && against.as_ref().is_none_or(|a| a.holds),
            broken_at: verdict.first_break,
            against,
        });
    }
    let all_ok = reports.iter().all(|r| r.ok);
    let summary = serde_json::json!({ "ok": all_ok, "tenants": reports });
    print(json, &summary, || reports.iter().map(human_line).collect::<Vec<_>>().join("\n"))?;
    Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn human_line(r: &ChainReport) -> String {
    let chain = match &r.broken_at {
        None if r.legacy_rows > 0 => format!(
            "{}: {} rows, chain intact ({} legacy rows before the keyed ones, checked with plain SHA-256 only); head {}",
            r.tenant,
            r.rows,
            r.legacy_rows,
            r.anchor.as_deref().unwrap_or("-")
        ),
        None => format!("{}: {} rows, chain intact; head {}", r.tenant, r.rows, r.anchor.as_deref().unwrap_or("-")),
        Some(b) => format!("{}: BROKEN at row {}: {}", r.tenant, b.seq, b.problem),
    };
    match &r.against {
        None => chain,
        Some(a) => format!("{chain}\n{}: {}", r.tenant, a.line()),
    }
}

/// `audit export`: one tenant's chain as JSON lines, in `seq` order, and its head as an anchor.
async fn audit_export(db: &Database, slug: &str, output: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let tenant = tenancy::find_tenant(db, slug).await?;
    let rows = admin_audit::chain(db, tenant.id).await?;
    let text = admin_audit::json_lines(&rows)?;
    let anchor = rows.last().and_then(|r| Anchor::of(r, slug)).map(|a| a.to_string());
    let Some(path) = output else {
        std::io::stdout().lock().write_all(text.as_bytes())?;
        // Standard output is the export itself; the anchor goes beside it.
        eprintln!("head {}", anchor.as_deref().unwrap_or("-"));
        return Ok(());
    };
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    let head = rows.last().map(|r| hex::encode(&r.hash));
    let summary = serde_json::json!({
        "tenant": slug, "tenant_id": tenant.id, "rows": rows.len(), "head": head, "anchor": anchor,
        "file": path.display().to_string(),
    });
    print(json, &summary, || {
        format!("wrote {} rows of {slug} to {}; head {}", rows.len(), path.display(), anchor.as_deref().unwrap_or("-"))
    })
}

/// An export file read and checked: its rows and the first problem (line, seq if known, what).
struct Export {
    rows: Vec<AuditRow>,
    problem: Option<(usize, Option<i64>, String)>,
}

/// Reads an export and checks its chain under `key`. A line that is not a row, a row of
/// another tenant, and every break `first_break` finds are reported with their line number.
fn read_export(path: &Path, key: &AuditKey) -> anyhow::Result<Export> {
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
        && let Some((index, broken)) = first_break(&rows, key)
    {
        problem = Some((lines[index], Some(broken.seq), broken.problem.to_owned()));
    }
    Ok(Export { rows, problem })
}

/// `audit verify --file`: checks an export offline, and with `--against`, that the anchor is
/// in it. An anchor naming a tenant by id must name the file's; one naming it by slug cannot
/// be told apart offline, but its hash covers the tenant id, so another tenant's never holds.
pub(super) fn audit_verify_file(
    path: &Path,
    key: &AuditKey,
    against: Option<&Against>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let anchor = against.map(|a| resolve_anchor(a, key)).transpose()?;
    let Export { rows, problem } = read_export(path, key)?;
    let tenant_id = rows.first().map(|r| r.tenant_id);
    if let (Some(anchor), Some(id)) = (&anchor, tenant_id)
        && uuid::Uuid::try_parse(&anchor.tenant).is_ok_and(|a| a != id)
    {
        anyhow::bail!("the anchor names tenant {}, but {} is tenant {id}'s", anchor.tenant, path.display());
    }
    let against = anchor.as_ref().map(|a| AnchorReport::new(a, &rows));
    let ok = problem.is_none() && against.as_ref().is_none_or(|a| a.holds);
    let head = rows.last().map(|r| hex::encode(&r.hash));
    let anchor = rows.last().and_then(|r| Anchor::of(r, &r.tenant_id.to_string())).map(|a| a.to_string());
    let broken_at =
        problem.as_ref().map(|(line, seq, why)| serde_json::json!({ "line": line, "seq": seq, "problem": why }));
    let report = serde_json::json!({
        "file": path.display().to_string(),
        "tenant_id": tenant_id,
        "rows": rows.len(),
        "legacy_rows": rows.iter().take_while(|r| r.mac_version == crate::db::audit::LEGACY_SHA256).count(),
        "ok": ok,
        "head": if problem.is_none() { head } else { None },
        "anchor": if problem.is_none() { anchor.clone() } else { None },
        "broken_at": broken_at,
        "against": against,
    });
    print(json, &report, || {
        let chain = match &problem {
            None => format!(
                "{}: {} rows, chain intact; head {}",
                path.display(),
                rows.len(),
                anchor.as_deref().unwrap_or("-")
            ),
            Some((line, Some(seq), why)) => format!("{}: BROKEN at line {line} (row {seq}): {why}", path.display()),
            Some((line, None, why)) => format!("{}: BROKEN at line {line}: {why}", path.display()),
        };
        match &against {
            None => chain,
            Some(a) => format!("{chain}\n{}: {}", path.display(), a.line()),
        }
    })?;
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
