//! The metrics listener (`LCA_METRICS_LISTEN`, ARCHITECTURE.md "Metrics"): `GET /metrics` in
//! the Prometheus text format, on an address of its own so that the public listener never
//! answers it (it is not authenticated: bind it to loopback or a private network). Gauges
//! that are a reading of the process (the hasher's queue, the pool, the keys' age) are read
//! at each scrape; counters and histograms are recorded where things happen
//! (`telemetry::metrics`).

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::state::AppState;
use crate::telemetry::metrics::{self, Snapshot};

/// The exposition format's media type (Prometheus text format 0.0.4).
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often histograms are drained when nobody scrapes, so they do not grow without bound.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct Scrape {
    state: AppState,
    handle: PrometheusHandle,
}

/// `/metrics` and nothing else.
pub fn router(state: AppState, handle: PrometheusHandle) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .fallback(|| async { axum::http::StatusCode::NOT_FOUND })
        .with_state(Scrape { state, handle })
}

async fn render(State(s): State<Scrape>) -> Response {
    metrics::set_gauges(&snapshot(&s.state));
    ([(header::CONTENT_TYPE, CONTENT_TYPE), (header::CACHE_CONTROL, "no-store")], s.handle.render()).into_response()
}

/// What the process holds right now.
#[allow(clippy::cast_precision_loss)] // seconds of a key's age, far below 2^52
fn snapshot(state: &AppState) -> Snapshot {
    let (hasher_queue, hasher_capacity) = state.passwords.queue();
    let (db_open, db_idle, db_max) = state.db.pool_use();
    let key_ages = state
        .keys
        .signing_key_ages()
        .into_iter()
        .map(|(alg, age)| (alg.as_str(), age.num_milliseconds() as f64 / 1000.0))
        .collect();
    Snapshot { hasher_queue, hasher_capacity, db_open, db_idle, db_max, key_ages }
}

/// Serves the metrics router on `listener` until `shutdown` resolves, and drains the
/// histograms every few seconds meanwhile.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    handle: PrometheusHandle,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let upkeep = {
        let handle = handle.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(UPKEEP_EVERY);
            loop {
                ticks.tick().await;
                handle.run_upkeep();
            }
        })
    };
    let served = axum::serve(listener, router(state, handle)).with_graceful_shutdown(shutdown).await;
    upkeep.abort();
    served
}
