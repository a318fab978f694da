//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::error::AppError;
use crate::state::AppState;

/// `GET /healthz`: the process is alive. Touches nothing else, so it answers even when the
/// database is down.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the database answers. When it does not, 503 with a generic body; the cause
/// is logged (and reported to Sentry) with the request id.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    state.db.ping().await.map_err(|e| AppError::Unavailable(e.into()))?;
    Ok(Json(json!({ "status": "ready" })))
}
