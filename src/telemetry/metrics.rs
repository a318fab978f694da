//! Prometheus metrics (ARCHITECTURE.md, "Metrics"). Code everywhere records through the
//! `metrics` facade with the names and helpers below; [`install`] puts the Prometheus recorder
//! behind it only when `LCA_METRICS_LISTEN` is set, and `crate::scrape` serves the text on that
//! listener alone, never on the public one. Without it no recorder is installed, every record
//! is a no-op, and the HTTP layer is not even added.
//!
//! Labels take values from short fixed lists (a route pattern, a grant name, an outcome), never
//! from what a caller sent, so a flood of odd paths cannot grow the series without bound.

use std::time::Instant;

use ::metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests answered, by route pattern, method and status.
pub const HTTP_REQUESTS: &str = "lca_http_requests_total";
/// Time to answer, by route pattern, method and status.
pub const HTTP_DURATION: &str = "lca_http_request_duration_seconds";
/// Tokens issued by the token endpoint, by grant.
pub const TOKENS_ISSUED: &str = "lca_tokens_issued_total";
/// Sign-in steps, by step (`password`, `mfa`) and outcome.
pub const SIGN_INS: &str = "lca_sign_ins_total";
/// Locks that failures set, by kind (`account`, `ip`).
pub const LOCKOUTS: &str = "lca_sign_in_lockouts_total";
/// Sign-ins the password hasher turned away, by reason (`queue_full`: 503; `ip_share`: 429).
pub const HASHER_REFUSALS: &str = "lca_password_hasher_refusals_total";
/// Hashes running or waiting in the password hasher, read at each scrape.
pub const HASHER_QUEUE: &str = "lca_password_hasher_queue";
/// The most the hasher holds before it answers 503.
pub const HASHER_CAPACITY: &str = "lca_password_hasher_capacity";
/// Request connections to PostgreSQL: open, idle, and the pool's bound.
pub const DB_POOL_OPEN: &str = "lca_db_pool_connections";
pub const DB_POOL_IDLE: &str = "lca_db_pool_idle_connections";
pub const DB_POOL_MAX: &str = "lca_db_pool_max_connections";
/// Rows the janitor removed, by sweep.
pub const JANITOR_REMOVED: &str = "lca_janitor_rows_removed_total";
/// Janitor runs, by outcome (`done`, `skipped`: another janitor held the lock, `failed`).
pub const JANITOR_RUNS: &str = "lca_janitor_runs_total";
/// Age of the signing key this instance signs with, by algorithm.
pub const SIGNING_KEY_AGE: &str = "lca_signing_key_age_seconds";

/// Latency buckets (seconds): from a JWKS read to a bcrypt sign-in waiting in the queue.
const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Installs the Prometheus recorder as the process's recorder and describes every metric.
/// Once per process (`serve` calls it when `LCA_METRICS_LISTEN` is set).
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_owned()), LATENCY_BUCKETS)?
        .install_recorder()?;
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by route pattern, method and status");
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "Time to answer an HTTP request");
    describe_counter!(TOKENS_ISSUED, "Tokens issued by the token endpoint, by grant");
    describe_counter!(SIGN_INS, "Sign-in steps, by step and outcome");
    describe_counter!(LOCKOUTS, "Locks set by failed sign-ins, by kind");
    describe_counter!(HASHER_REFUSALS, "Sign-ins turned away by the password hasher, by reason");
    describe_gauge!(HASHER_QUEUE, "Password hashes running or waiting");
    describe_gauge!(HASHER_CAPACITY, "Password hashes running or waiting before a 503");
    describe_gauge!(DB_POOL_OPEN, "Open request connections to PostgreSQL");
    describe_gauge!(DB_POOL_IDLE, "Idle request connections to PostgreSQL");
    describe_gauge!(DB_POOL_MAX, "Most request connections to PostgreSQL");
    describe_counter!(JANITOR_REMOVED, "Expired rows the janitor removed, by sweep");
    describe_counter!(JANITOR_RUNS, "Janitor runs, by outcome");
    describe_gauge!(SIGNING_KEY_AGE, Unit::Seconds, "Age of the signing key in use, by algorithm");
    Ok(handle)
}

/// Middleware: counts and times every request by its route pattern (`/token`, not the path a
/// caller typed; `unmatched` for the fallback), method and final status. Added per route by
/// `Router::layer`, where the matched route is known, and outside the timeout and the error
/// finisher, so a 408 or a rewritten error is counted as answered.
pub async fn record_http(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str()).to_owned();
    let method = method_label(req.method());
    let started = Instant::now();
    let response = next.run(req).await;
    let labels = [("route", route), ("method", method.to_owned()), ("status", response.status().as_u16().to_string())];
    counter!(HTTP_REQUESTS, &labels).increment(1);
    histogram!(HTTP_DURATION, &labels).record(started.elapsed().as_secs_f64());
    response
}

/// The methods the provider answers, and `other` for the rest.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "other",
    }
}

/// A token issued by the token endpoint (`grant`: `authorization_code`, `refresh_token`,
/// `client_credentials`, `device_code`).
pub fn token_issued(grant: &'static str) {
    counter!(TOKENS_ISSUED, "grant" => grant).increment(1);
}

/// One sign-in step's outcome: `step` is `password` or `mfa`; `outcome` is `success`,
/// `second_factor` (password right, a second step follows), `failure` or `throttled` (refused
/// by a lock without checking).
pub fn sign_in(step: &'static str, outcome: &'static str) {
    counter!(SIGN_INS, "step" => step, "outcome" => outcome).increment(1);
}

/// A lock set by failures: `account` or `ip`.
pub fn lockout(kind: &'static str) {
    counter!(LOCKOUTS, "kind" => kind).increment(1);
}

/// A sign-in the hasher turned away: `queue_full` or `ip_share`.
pub fn hasher_refused(reason: &'static str) {
    counter!(HASHER_REFUSALS, "reason" => reason).increment(1);
}

/// Rows one janitor batch removed.
pub fn janitor_removed(sweep: &'static str, rows: u64) {
    counter!(JANITOR_REMOVED, "sweep" => sweep).increment(rows);
}

/// A janitor run ended: `done`, `skipped` or `failed`.
pub fn janitor_run(outcome: &'static str) {
    counter!(JANITOR_RUNS, "outcome" => outcome).increment(1);
}

/// What a scrape reads off the running process.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub hasher_queue: usize,
    pub hasher_capacity: usize,
    pub db_open: u32,
    pub db_idle: usize,
    pub db_max: u32,
    /// (algorithm, seconds since the key in use was made).
    pub key_ages: Vec<(&'static str, f64)>,
}

/// Sets the gauges of `snapshot` (called just before each render).
#[allow(clippy::cast_precision_loss)] // counts far below 2^52
pub fn set_gauges(snapshot: &Snapshot) {
    gauge!(HASHER_QUEUE).set(snapshot.hasher_queue as f64);
    gauge!(HASHER_CAPACITY).set(snapshot.hasher_capacity as f64);
    gauge!(DB_POOL_OPEN).set(f64::from(snapshot.db_open));
    gauge!(DB_POOL_IDLE).set(snapshot.db_idle as f64);
    gauge!(DB_POOL_MAX).set(f64::from(snapshot.db_max));
    for (alg, age) in &snapshot.key_ages {
        gauge!(SIGNING_KEY_AGE, "alg" => *alg).set(*age);
    }
}
