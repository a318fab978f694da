//! The janitor (ARCHITECTURE.md, "The janitor"): deletes expired sessions, codes, token families and
//! their tokens, and retired signing keys that have left the JWKS, in bounded batches.
//!
//! What it deletes is the list of sweeps in [`crate::db::janitor::SWEEPS`] (one entry per kind
//! of row; add yours there). What it must not touch: anything still usable or needed to detect
//! a replay, and the audit log, ever.
//!
//! - Every batch is its own short transaction of at most `batch_size` rows, so the janitor
//!   never holds locks that requests wait on for long, whatever it finds.
//! - One janitor works at a time across every server instance and CLI run on the database: it
//!   holds a session-level advisory lock on a connection of its own for the whole run. Another
//!   one finds the lock taken, says so, and does nothing.
//! - `serve` runs it every `LCA_JANITOR_INTERVAL` seconds; `laventecare-auth janitor run`
//!   runs it once.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::time::MissedTickBehavior;

use crate::db::janitor::{SWEEPS, Scope, Sweep, sweep_batch};
use crate::db::{Database, tenants};
use crate::telemetry::metrics;

/// The advisory lock only one janitor holds (`"lca_jani"` in ASCII, recognisable in
/// `pg_locks`).
pub const JANITOR_LOCK: i64 = 0x6c63_615f_6a61_6e69;

/// What one sweep removed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SweepReport {
    pub sweep: &'static str,
    pub deleted: u64,
    /// Batches that deleted something.
    pub batches: u64,
}

/// What a run did; `janitor run --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// False when another janitor held the lock and this one did nothing.
    pub ran: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'static str>,
    pub sweeps: Vec<SweepReport>,
    pub deleted: u64,
    pub elapsed_ms: u64,
}

impl Report {
    /// The rows `sweep` removed.
    pub fn deleted_by(&self, sweep: &str) -> u64 {
        self.sweeps.iter().find(|s| s.sweep == sweep).map_or(0, |s| s.deleted)
    }
}

/// Runs every sweep once, unless another janitor is running.
pub async fn run_once(db: &Database, batch_size: u32) -> Result<Report, sqlx::Error> {
    let started = Instant::now();
    let Some(lock) = db.try_session_lock(JANITOR_LOCK).await? else {
        tracing::info!("another janitor is running; this one does nothing");
        metrics::janitor_run("skipped");
        return Ok(Report {
            ran: false,
            message: Some("another janitor is running"),
            sweeps: Vec::new(),
            deleted: 0,
            elapsed_ms: 0,
        });
    };
    let outcome = sweep_all(db, batch_size.max(1)).await;
    lock.release().await;
    metrics::janitor_run(if outcome.is_ok() { "done" } else { "failed" });
    let sweeps = outcome?;
    let deleted = sweeps.iter().map(|s| s.deleted).sum();
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::info!(deleted, elapsed_ms, "janitor run done");
    Ok(Report { ran: true, message: None, sweeps, deleted, elapsed_ms })
}

async fn sweep_all(db: &Database, batch_size: u32) -> Result<Vec<SweepReport>, sqlx::Error> {
    let mut tx = db.unscoped().await?;
    let tenants = tenants::list(&mut tx).await?;
    tx.commit().await?;
    let mut reports = Vec::new();
    for sweep in SWEEPS {
        let mut report = SweepReport { sweep: sweep.name, deleted: 0, batches: 0 };
        match sweep.scope {
            Scope::Global => batches(db, None, sweep, batch_size, &mut report).await?,
            Scope::PerTenant => {
                for (tenant, _) in &tenants {
                    batches(db, Some(*tenant), sweep, batch_size, &mut report).await?;
                }
            }
        }
        if report.deleted > 0 {
            tracing::info!(sweep = sweep.name, deleted = report.deleted, batches = report.batches, "janitor removed");
        }
        reports.push(report);
    }
    Ok(reports)
}

/// Batches of one sweep (in one tenant) until one comes back short.
async fn batches(
    db: &Database,
    tenant: Option<uuid::Uuid>,
    sweep: &Sweep,
    batch_size: u32,
    report: &mut SweepReport,
) -> Result<(), sqlx::Error> {
    loop {
        let mut tx = match tenant {
            Some(id) => db.tenant(id).await?,
            None => db.unscoped().await?,
        };
        let deleted = sweep_batch(&mut tx, sweep, batch_size).await?;
        tx.commit().await?;
        if deleted > 0 {
            metrics::janitor_removed(sweep.name, deleted);
            report.deleted += deleted;
            report.batches += 1;
        }
        if deleted < u64::from(batch_size) {
            return Ok(());
        }
        // Let requests waiting on this runtime go first.
        tokio::task::yield_now().await;
    }
}

/// Runs the janitor every `interval` until `shutdown` resolves. The first run is one interval
/// after the start, so instances restarting together do not all sweep at once. A failed run is
/// logged and the next one tried on time.
pub fn spawn(
    db: Database,
    interval: Duration,
    batch_size: u32,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = ticks.tick() => {
                    // Stopping mid-run is safe: the open batch rolls back, and the lock's
                    // connection closes with it.
                    tokio::select! {
                        _ = &mut shutdown => return,
                        outcome = run_once(&db, batch_size) => {
                            if let Err(e) = outcome {
                                tracing::error!(error = %e, "janitor run failed");
                            }
                        }
                    }
                }
            }
        }
    })
}
