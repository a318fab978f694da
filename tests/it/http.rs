//! The router's common behaviour, driven in process: probes, request ids, security headers,
//! error shapes, body limits and strict decoding.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use laventecare_auth::extract::{Form, Json};
use serde::Deserialize;
use tower::ServiceExt;

use crate::support::TestDb;

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
    let body = if bytes.is_empty() { serde_json::Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
    (status, headers, body)
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

/// `/healthz` and `/readyz` answer 200 with a request id and the security headers.
#[tokio::test]
async fn probes_answer_with_request_id_and_headers() {
    let t = TestDb::new().await;
    let app = laventecare_auth::app(t.state().await);
    for (path, status) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let (code, headers, body) = send(&app, get(path)).await;
        assert_eq!(code, 200, "{path}");
        assert_eq!(body["status"], status);
        let id = headers["x-request-id"].to_str().unwrap();
        assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert!(headers.get("strict-transport-security").is_none(), "no HSTS over a loopback http issuer");
        assert!(headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    }
    // A caller's own request id is kept (for tracing across services).
    let req = Request::get("/healthz").header("x-request-id", "abc-123").body(Body::empty()).unwrap();
    let (_, headers, _) = send(&app, req).await;
    assert_eq!(headers["x-request-id"], "abc-123");
}

/// Unknown paths, wrong methods and oversized bodies all get our JSON error with the request
/// id, never a framework's plain text.
#[tokio::test]
async fn every_error_has_our_shape() {
    let t = TestDb::new().await;
    let app = laventecare_auth::app(t.state().await);
    let big = "x".repeat(65 * 1024);
    let cases = [
        (get("/no/such/page"), StatusCode::NOT_FOUND, "not_found"),
        (Request::post("/healthz").body(Body::empty()).unwrap(), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        (
            Request::post("/healthz").header("content-length", big.len()).body(Body::from(big)).unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
        ),
    ];
    for (req, status, error) in cases {
        let (code, headers, body) = send(&app, req).await;
        assert_eq!(code, status);
        assert_eq!(body["error"], error);
        assert_eq!(body["request_id"], headers["x-request-id"].to_str().unwrap());
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(body.as_object().unwrap().len(), 3, "error, error_description, request_id: {body}");
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Strict {
    name: String,
    count: u8,
}

/// Our `Json` and `Form` extractors reject unknown fields, wrong types, bad syntax and the wrong
/// content type with our own words; no serde message reaches the caller.
#[tokio::test]
async fn strict_decoding_rejects_with_our_words() {
    let t = TestDb::new().await;
    // The application's layers around two probe routes that use the extractors.
    let state = t.state().await;
    let probe = Router::new()
        .route("/json", post(|Json(s): Json<Strict>| async move { s.name }))
        .route("/form", post(|Form(s): Form<Strict>| async move { s.name }));
    let app = laventecare_auth::with_common_layers(probe, &state.config);

    let ok = Request::post("/json")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"name":"a","count":1}"#))
        .unwrap();
    assert_eq!(app.clone().oneshot(ok).await.unwrap().status(), 200);

    let json = |body: &'static str| {
        Request::post("/json").header("content-type", "application/json").body(Body::from(body)).unwrap()
    };
    let form = |body: &'static str| {
        Request::post("/form")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    let cases = [
        (json(r#"{"name":"a","count":1,"admin":true}"#), StatusCode::BAD_REQUEST),
        (json(r#"{"name":"a","count":300}"#), StatusCode::BAD_REQUEST),
        (json(r#"{"name":"a""#), StatusCode::BAD_REQUEST),
        (json(r#"{"name":"a"}"#), StatusCode::BAD_REQUEST),
        (
            Request::post("/json").body(Body::from(r#"{"name":"a","count":1}"#)).unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (form("name=a&count=1&admin=1"), StatusCode::BAD_REQUEST),
        (form("name=a&count=x"), StatusCode::BAD_REQUEST),
    ];
    for (req, status) in cases {
        let (code, headers, body) = send(&app, req).await;
        assert_eq!(code, status, "{body}");
        assert_eq!(body["error"], "invalid_request");
        assert_eq!(body["request_id"], headers["x-request-id"].to_str().unwrap());
        let text = body.to_string();
        for leak in ["unknown field", "expected", "line", "column", "serde", "admin", "invalid value"] {
            assert!(!text.contains(leak), "{leak:?} leaked: {text}");
        }
    }
}

/// Control characters are refused at the edge with a 400, never a 500: a CR/LF in `req` that
/// would reach a `Location` header, and NUL bytes that PostgreSQL cannot store, in forms,
/// queries, JSON, the authorization request and the token endpoint.
#[tokio::test]
async fn control_characters_are_refused_at_the_edge() {
    let t = TestDb::new().await;
    let state = t.state().await;
    let app = laventecare_auth::app(state.clone());
    let form = |path: &str, body: &str| {
        Request::post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body.to_owned()))
            .unwrap()
    };
    let cases = [
        get("/login/mfa?req=x%0D%0ASet-Cookie:%20a=b"),
        get("/login?req=%00"),
        get("/mfa/enrol?req=a%0Ab"),
        get("/authorize/continue?req=%0D%0Aa"),
        get("/device?user_code=BCDF%00GHJK"),
        form("/login", "csrf=x&req=&email=ann%00%40example.com&password=long+enough+password"),
        form("/token", "grant_type=authorization_code&code=%00&redirect_uri=x&client_id=c"),
        form("/token", "grant_type=refresh_token&refresh_token=a%0Db&client_id=c"),
        form("/revoke", "token=%00&client_id=c"),
    ];
    for req in cases {
        let path = req.uri().to_string();
        let (code, _, body) = send(&app, req).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"], "invalid_request", "{path}");
        assert_eq!(body["error_description"], "the request contains a control character", "{path}");
    }
    // The authorization endpoint answers with its error page, as for any untrusted request.
    for query in ["client_id=c%00", "client_id=c&nonce=a%00b", "client_id=c&state=%0D%0A"] {
        let res = app.clone().oneshot(get(&format!("/authorize?{query}"))).await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{query}");
        assert!(res.headers().get("location").is_none());
        let html = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
        assert!(String::from_utf8_lossy(&html).contains("control characters"), "{query}");
    }
    // JSON may carry a newline, never NUL.
    let probe = Router::new().route("/json", post(|Json(s): Json<Strict>| async move { s.name }));
    let probe = laventecare_auth::with_common_layers(probe, &state.config);
    let json = |body: &'static str| {
        Request::post("/json").header("content-type", "application/json").body(Body::from(body)).unwrap()
    };
    assert_eq!(probe.clone().oneshot(json(r#"{"name":"a\nb","count":1}"#)).await.unwrap().status(), 200);
    let (code, _, body) = send(&probe, json(r#"{"name":"a\u0000b","count":1}"#)).await;
    assert_eq!((code, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")));
}
