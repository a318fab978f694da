//! A satellite API's telemetry endpoint that accepts LaventeCare access tokens, verified
//! offline (`verify.rs`); the ESP32 example posts its readings here.
//!
//! ```sh
//! SATELLITE_ISSUER=http://127.0.0.1:8080 SATELLITE_AUDIENCE=<device client id> \
//! SATELLITE_TENANT_ID=<tenant uuid> cargo run --example satellite
//! ```
//!
//! `POST /telemetry` with `Authorization: Bearer <access token>` (or, for a DPoP-bound token,
//! `Authorization: DPoP <access token>` and its `DPoP` proof) and a JSON body answers 202
//! with who sent it, or 401 with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750
//! §3.1), whatever the reason: the reason goes to the log only.

#![allow(clippy::unwrap_used, reason = "an example that cannot start should stop")]

mod verify;

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

pub use verify::{Policy, Rejection, Verifier};

/// The API: `POST /telemetry`.
pub fn router(verifier: Arc<Verifier>) -> axum::Router {
    axum::Router::new().route("/telemetry", post(telemetry)).with_state(verifier)
}

/// Serves [`router`] on a free loopback port and returns its base URL (for tests and the
/// ESP32 example's host run).
pub async fn telemetry_base(verifier: Verifier) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(Arc::new(verifier));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

async fn telemetry(State(verifier): State<Arc<Verifier>>, headers: HeaderMap, Json(reading): Json<Value>) -> Response {
    let value = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let authorization = value(header::AUTHORIZATION).unwrap_or_default();
    let dpop = value(header::HeaderName::from_static("dpop"));
    // The URL the client sent the request to, as a DPoP proof names it. Behind a proxy, use
    // the API's public URL instead of the Host header.
    let htu = format!("http://{}/telemetry", value(header::HOST).unwrap_or_default());
    match verifier.verify_request(authorization, dpop, "POST", &htu).await {
        Ok(who) => {
            (StatusCode::ACCEPTED, Json(json!({ "sub": who.sub, "tid": who.tid, "received": reading }))).into_response()
        }
        Err(why) => {
            eprintln!("telemetry refused: {why:?}");
            (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#)]).into_response()
        }
    }
}

#[tokio::main]
async fn main() {
    let var = |name: &str| std::env::var(name).ok();
    let issuer = var("SATELLITE_ISSUER").expect("SATELLITE_ISSUER: the provider's issuer");
    let policy = Policy {
        issuer: issuer.clone(),
        audiences: var("SATELLITE_AUDIENCE")
            .expect("SATELLITE_AUDIENCE: the client id(s), comma-separated")
            .split(',')
            .map(str::to_owned)
            .collect(),
        tenant_id: var("SATELLITE_TENANT_ID"),
        role: var("SATELLITE_ROLE").unwrap_or_else(|| "viewer".into()),
    };
    let verifier = Arc::new(Verifier::new(policy, format!("{}/jwks", issuer.trim_end_matches('/'))));
    let listen = var("SATELLITE_LISTEN").unwrap_or_else(|| "127.0.0.1:8090".into());
    let listener = tokio::net::TcpListener::bind(&listen).await.unwrap();
    eprintln!("telemetry API on http://{listen}/telemetry");
    axum::serve(listener, router(verifier)).await.unwrap();
}
