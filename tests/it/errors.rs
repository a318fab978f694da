//! Silence is golden: an internal failure reaches the caller as a generic error with the
//! request id, is logged as JSON with that id, and is reported to Sentry.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use nix::sys::signal::Signal;

use crate::support::{Server, TestDb, binary};

/// Words that would mean a library's or the database's text leaked.
const LEAKS: &[&str] =
    &["sqlx", "postgres", "database", "SQL", "does not exist", "connection", "pool", "error returned", "Error"];

/// A stand-in for Sentry's ingestion endpoint that keeps every envelope it receives.
async fn sentry_stand_in() -> (String, Arc<Mutex<Vec<String>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route(
            "/api/{project}/envelope/",
            post(|State(store): State<Arc<Mutex<Vec<String>>>>, body: Bytes| async move {
                store.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
                "{}"
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://public@{addr}/1"), received)
}

/// The database goes away under a running server: `/readyz` answers 503 with our generic
/// body and the request id, the log line carries the id and the cause, and Sentry gets an
/// event tagged with the id.
#[tokio::test]
async fn database_going_away_is_opaque_logged_and_reported() {
    let t = TestDb::new().await;
    let (dsn, envelopes) = sentry_stand_in().await;
    let mut cmd = binary();
    t.database_env(&mut cmd).env("SENTRY_DSN", &dsn);
    let server = Server::start(cmd).await;
    let http = reqwest::Client::new();
    let ready = http.get(format!("{}/readyz", server.base)).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    t.drop_database().await;

    // A query string (recovery tokens, id_token_hint) must not travel to Sentry.
    let res = http.get(format!("{}/readyz?token=leak-me-0123", server.base)).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body = res.text().await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "error": "temporarily_unavailable",
            "error_description": "the service is temporarily unavailable",
            "request_id": request_id,
        })
    );
    for word in LEAKS {
        assert!(!body.contains(word), "{word:?} leaked into {body}");
    }

    // Sentry: an event carrying the request id arrives.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let found =
            envelopes.lock().unwrap().iter().any(|e| e.contains(&request_id) && e.contains("\"level\":\"error\""));
        if found {
            let all = envelopes.lock().unwrap().join("\n");
            assert!(!all.contains("leak-me-0123"), "the query string reached Sentry: {all}");
            assert!(all.contains("/readyz"), "the path is kept for triage");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no Sentry event with the request id: {:?}",
            envelopes.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The log: one JSON line at ERROR with the request id and the real cause.
    let out = server.stop(Signal::SIGTERM);
    let log = String::from_utf8_lossy(&out.stderr);
    let line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["level"] == "ERROR" && l["request_id"] == request_id.as_str())
        .unwrap_or_else(|| panic!("no error log line with the request id in:\n{log}"));
    assert!(line["detail"].as_str().unwrap().contains("does not exist"), "the cause is logged: {line}");
}
