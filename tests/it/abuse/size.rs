//! Oversized bodies, headers, URIs and authorization parameters.

use laventecare_auth::vocabulary::Role;
use serde_json::json;

use super::{assert_clean, assert_clean_raw, get_request, post_request, raw, send, sessions, stored};
use crate::api::service_token;
use crate::flow::{Browser, PASSWORD, Provider, Step, authorize_url, pkce};

/// Bodies past the 64 KiB limit are 413 in our shape at the token, login, introspection and
/// revocation endpoints and the admin API, with or without a `Content-Length` (a chunked body
/// is cut off where it passes the limit); nothing is stored.
#[tokio::test]
async fn oversized_bodies_are_413() {
    let p = Provider::start().await;
    let admin = service_token(&p, "acme", Role::Admin).await;
    let before = stored(&p).await;
    let pad = "x".repeat(70 * 1024);
    let http = p.http();
    for path in ["/token", "/login", "/introspect", "/revoke", "/device_authorization", "/consent"] {
        let body = format!("grant_type=client_credentials&client_id={}&pad={pad}", p.client_id);
        let req = http.post(p.url(path)).header("content-type", "application/x-www-form-urlencoded").body(body);
        let (status, _, body) = send(req).await;
        assert_eq!(status, 413, "{path}: {body}");
        assert_clean(path, status, &body);
        // Chunked: no length to refuse up front.
        let answer = raw(&p, &chunked(&p, path, &pad)).await;
        assert_eq!(answer.status, 413, "{path} (chunked): {answer:?}");
        assert_clean_raw(path, &answer);
    }
    let name = "x".repeat(70 * 1024);
    for (method, path) in [
        (reqwest::Method::POST, "/api/v1/clients".to_owned()),
        (reqwest::Method::PATCH, format!("/api/v1/clients/{}", p.client_id)),
    ] {
        let body = json!({ "name": name, "grant_types": ["client_credentials"], "role": "viewer" });
        let (status, _, text) = send(http.request(method, p.url(&path)).bearer_auth(&admin).json(&body)).await;
        assert_eq!(status, 413, "{path}: {text}");
        assert_clean(&path, status, &text);
    }
    assert_eq!(stored(&p).await, before);
}

/// A form `POST` whose body is sent in 8 KiB chunks, without a `Content-Length`.
fn chunked(p: &Provider, path: &str, text: &str) -> Vec<u8> {
    let host = p.issuer.trim_start_matches("http://");
    let mut out = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    for chunk in text.as_bytes().chunks(8 * 1024) {
        out.push_str(&format!("{:x}\r\n{}\r\n", chunk.len(), String::from_utf8_lossy(chunk)));
    }
    out.push_str("0\r\n\r\n");
    out.into_bytes()
}

/// One huge header, very many headers, a huge cookie and a huge URI are refused with 431 or
/// 414 in our shape before any handler runs; headers past what the HTTP parser buffers at all
/// get its own bare 431. Real requests (a session cookie, a few KiB of cookies of the
/// deployer's other apps, a request id) still pass.
#[tokio::test]
async fn oversized_headers_and_uris_are_refused() {
    let p = Provider::start().await;
    let before = stored(&p).await;
    let huge = "a".repeat(20 * 1024);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("one huge header", get_request(&p, "/healthz", &format!("X-Pad: {huge}\r\n")), 431),
        ("a huge cookie", get_request(&p, "/login", &format!("Cookie: lca_session={huge}\r\n")), 431),
        (
            "many cookies",
            get_request(
                &p,
                "/login",
                &(0..40).map(|i| format!("Cookie: c{i}={}\r\n", "b".repeat(1000))).collect::<String>(),
            ),
            431,
        ),
        (
            "very many headers",
            get_request(&p, "/healthz", &(0..90).map(|i| format!("X-H{i}: v\r\n")).collect::<String>()),
            431,
        ),
        (
            "past the parser's buffer",
            get_request(&p, "/healthz", &format!("X-Pad: {}\r\n", "a".repeat(600 * 1024))),
            431,
        ),
        (
            "past the parser's header count",
            get_request(&p, "/healthz", &(0..150).map(|i| format!("X-H{i}: v\r\n")).collect::<String>()),
            431,
        ),
        (
            "a huge URI",
            get_request(&p, &format!("/authorize?client_id={}&pad={}", p.client_id, "u".repeat(40 * 1024)), ""),
            414,
        ),
        (
            "a huge token request",
            post_request(&p, &format!("/token?pad={}", "u".repeat(40 * 1024)), "", b"grant_type=x"),
            414,
        ),
    ];
    for (what, request, status) in cases {
        let answer = raw(&p, &request).await;
        assert_eq!(answer.status, status, "{what}: {answer:?}");
        assert_clean_raw(what, &answer);
    }
    // What real browsers and relying parties send still passes.
    let fine = format!(
        "Cookie: lca_session=abc; {}\r\nX-Request-Id: {}\r\nUser-Agent: {}\r\n",
        (0..8).map(|i| format!("app{i}={}", "c".repeat(500))).collect::<Vec<_>>().join("; "),
        "r".repeat(100),
        "Mozilla/5.0 ".repeat(20)
    );
    assert_eq!(raw(&p, &get_request(&p, "/healthz", &fine)).await.status, 200);
    assert_eq!(stored(&p).await, before);
}

/// `state` may be several KiB (4096 bytes: relying parties keep a return URL and a signature in
/// it) and comes back intact; past that the request is refused with the error page (it could
/// not be echoed). Past their bounds, `nonce` (512), `login_hint` (254), `ui_locales`,
/// `claims_locales`, `acr_values`, `display`, `prompt`, `max_age` and `tenant` are
/// `invalid_request` at the redirect URI, and no request is kept waiting. (`claims` past 4096
/// bytes: `acr::malformed_claims_are_refused_and_unknown_acr_values_ignored`.)
#[tokio::test]
async fn authorization_parameters_are_bounded() {
    let p = Provider::start().await;
    let (_, challenge) = pkce();

    // The largest state goes round intact.
    let state = "s".repeat(4096);
    let b = Browser::new(&p);
    let step = b.sign_in_through(&authorize_url(&p, &challenge, &[("state", &state)]), &p.email, PASSWORD).await;
    assert_eq!(step.param("state").as_deref(), Some(state.as_str()));
    assert!(step.code().is_some());

    let before = (stored(&p).await, sessions(&p).await);
    let b = Browser::new(&p);
    let step = b.open(&authorize_url(&p, &challenge, &[("state", &"s".repeat(4097))])).await;
    let Step::Page { status, html, .. } = &step else { panic!("a too-long state must not redirect: {step:?}") };
    assert_eq!(*status, 400);
    assert!(html.contains("state parameter is too long"), "{html}");
    assert_clean("state", *status, html);

    let long = |n: usize| "a".repeat(n);
    let cases: Vec<(&str, String)> = vec![
        ("nonce", long(513)),
        ("login_hint", format!("{}@example.com", long(250))),
        ("ui_locales", long(300)),
        ("claims_locales", long(300)),
        ("acr_values", long(2049)),
        ("display", long(100)),
        ("prompt", long(100)),
        ("max_age", "9".repeat(100)),
        ("tenant", long(64)),
    ];
    for (name, value) in cases {
        let step = b.open(&authorize_url(&p, &challenge, &[(name, &value)])).await;
        let Step::Left(url) = &step else { panic!("{name}: {step:?}") };
        assert!(url.as_str().starts_with(crate::flow::REDIRECT), "{name}: {url}");
        assert_eq!(step.param("error").as_deref(), Some("invalid_request"), "{name}: {url}");
        assert_eq!(step.param("state").as_deref(), Some("st-123"), "{name}");
        assert!(step.code().is_none());
    }
    assert_eq!((stored(&p).await, sessions(&p).await), before, "nothing stored, no request waiting");
}

/// At RP-initiated logout the same `state` bound holds: 4096 bytes are carried to the
/// confirmation page, more are refused with the error page (before, they were dropped
/// silently, and the relying party got no `state` back).
#[tokio::test]
async fn logout_state_is_bounded() {
    let p = Provider::start().await;
    let b = Browser::new(&p);
    let (_, challenge) = pkce();
    b.sign_in_through(&authorize_url(&p, &challenge, &[]), &p.email, PASSWORD).await;
    let logout = |state: String| {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("client_id", p.client_id.as_str()), ("post_logout_redirect_uri", crate::flow::POST_LOGOUT)])
            .append_pair("state", &state)
            .finish();
        p.url(&format!("/logout?{q}"))
    };
    let step = b.open(&logout("s".repeat(4096))).await;
    assert_eq!(step.status(), 200);
    assert!(step.html().contains(&"s".repeat(4096)), "the confirmation carries the state");
    let step = b.open(&logout("s".repeat(4097))).await;
    let Step::Page { status, html, .. } = &step else { panic!("{step:?}") };
    assert_eq!(*status, 400);
    assert!(html.contains("state parameter is too long"), "{html}");
    assert_clean("logout state", *status, html);
    assert_eq!(b.open(&p.url("/account")).await.status(), 200, "still signed in");
}
