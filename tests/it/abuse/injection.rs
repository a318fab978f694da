//! Header injection: CR/LF raw and percent-encoded in `state`, `redirect_uri`, `error`, the
//! path, `Host` and `X-Forwarded-*`. No answer ever has a header the request wrote, and a
//! `Location` is one encoded value.

use url::Url;

use super::{Raw, assert_clean_raw, get_request, raw, sessions};
use crate::flow::{Provider, REDIRECT, authorize_url, pkce};

/// No header line of the answer was written by the request.
fn unsplit(what: &str, answer: &Raw) {
    for line in &answer.head {
        let lower = line.to_lowercase();
        assert!(!lower.starts_with("x-injected") && !lower.contains("a=b"), "{what}: {line}");
        assert!(line.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80), "{what}: {line:?}");
    }
    for location in answer.header("location") {
        assert!(!location.contains(' '), "{what}: Location is one encoded value: {location}");
    }
}

/// Percent-encoded CR/LF in `state`, `redirect_uri`, `nonce`, an `error` or any parameter of
/// the authorization request, and in a path, is refused with a page (no `Location` at all);
/// raw CR, LF or bare CR in the request line or a header is the HTTP parser's 400.
#[tokio::test]
async fn crlf_never_splits_a_header() {
    let p = Provider::start().await;
    let (_, challenge) = pkce();
    let crlf = "a\r\nSet-Cookie: a=b\r\nX-Injected: 1";
    for name in ["state", "redirect_uri", "nonce", "error", "login_hint", "ui_locales", "scope"] {
        let url = authorize_url(&p, &challenge, &[(name, crlf)]);
        let target = url.strip_prefix(&p.issuer).unwrap();
        let answer = raw(&p, &get_request(&p, target, "")).await;
        assert_eq!(answer.status, 400, "{name}: {answer:?}");
        assert!(answer.header("location").is_empty(), "{name}");
        assert_clean_raw(name, &answer);
        unsplit(name, &answer);
    }
    for target in [
        "/%0D%0ASet-Cookie:%20a=b",
        "/admin/t/acme%0D%0ASet-Cookie:%20a=b/members",
        "/login%0D%0AX-Injected:%201",
        "/login?req=%0D%0AX-Injected:%201",
        "/login/mfa?req=%0D%0AX-Injected:%201",
        "/logout?client_id=x&state=%0D%0AX-Injected:%201",
    ] {
        let answer = raw(&p, &get_request(&p, target, "")).await;
        assert!((400..500).contains(&answer.status), "{target}: {answer:?}");
        assert_clean_raw(target, &answer);
        unsplit(target, &answer);
    }
    let host = p.issuer.trim_start_matches("http://");
    for request in [
        format!("GET /authorize?state=a\rb HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        format!("GET /authorize?state=a\nX-Injected: 1 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        format!(
            "GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: 1.2.3.4\rX-Injected: 1\r\nConnection: close\r\n\r\n"
        ),
        format!(
            "GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: 1.2.3.4\r\n X-Injected: 1\r\nConnection: close\r\n\r\n"
        ),
        format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Request-Id: a\rX-Injected: 1\r\nConnection: close\r\n\r\n"),
    ] {
        let answer = raw(&p, request.as_bytes()).await;
        assert_eq!(answer.status, 400, "{request:?}: {answer:?}");
        unsplit(&request, &answer);
    }
    assert_eq!(sessions(&p).await, 0, "no request waits");
}

/// Characters that are legal but dangerous in a header (quotes, angle brackets, spaces, `%`,
/// `#`, non-ASCII) in `state` reach the relying party as one percent-encoded `Location` value
/// that decodes to the exact `state`, on an error redirect.
#[tokio::test]
async fn state_is_echoed_encoded() {
    let p = Provider::start().await;
    let (_, challenge) = pkce();
    let state = "a b\"<script>'%0D%0A#frag&iss=https://evil/?x=1é";
    let url = authorize_url(&p, &challenge, &[("state", state), ("response_type", "token")]);
    let answer = raw(&p, &get_request(&p, url.strip_prefix(&p.issuer).unwrap(), "")).await;
    assert!(answer.status == 302 || answer.status == 303, "{answer:?}");
    let locations = answer.header("location");
    assert_eq!(locations.len(), 1, "{answer:?}");
    let to = Url::parse(locations[0]).unwrap();
    assert!(to.as_str().starts_with(REDIRECT));
    assert!(to.fragment().is_none());
    let pairs: Vec<(String, String)> = to.query_pairs().into_owned().collect();
    assert_eq!(pairs.iter().filter(|(k, _)| k == "state").map(|(_, v)| v.as_str()).collect::<Vec<_>>(), [state]);
    assert_eq!(
        pairs.iter().filter(|(k, _)| k == "iss").map(|(_, v)| v.as_str()).collect::<Vec<_>>(),
        [p.issuer.as_str()]
    );
    assert_eq!(pairs.iter().find(|(k, _)| k == "error").unwrap().1, "unsupported_response_type");
    unsplit("state", &answer);
}

/// `Host` and `X-Forwarded-Host`/`-Proto`/`-For` say nothing about where the provider is: the
/// issuer is configured. Redirects stay relative or on the issuer, discovery names the issuer,
/// and a garbled `X-Forwarded-For` is not a fault.
#[tokio::test]
async fn host_and_forwarded_headers_move_nothing() {
    let p = Provider::start().await;
    let (_, challenge) = pkce();
    let url = authorize_url(&p, &challenge, &[]);
    let target = url.strip_prefix(&p.issuer).unwrap();
    let spoof = "X-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: javascript\r\n\
                 X-Forwarded-For: <script>, 999.1.1.1, , evil\r\nForwarded: host=evil.example;proto=https\r\n";
    for (host, headers) in
        [("evil.example", ""), ("evil.example:443", spoof), (p.issuer.trim_start_matches("http://"), spoof)]
    {
        let request = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n");
        let answer = raw(&p, request.as_bytes()).await;
        assert!(answer.status < 500, "{host}: {answer:?}");
        for location in answer.header("location") {
            let resolved = Url::parse(&p.issuer).unwrap().join(location).unwrap();
            assert!(resolved.as_str().starts_with(&p.issuer), "{host}: {location}");
        }
        assert!(!answer.body.contains("evil"), "{host}: {}", answer.body);
        let request = format!(
            "GET /.well-known/openid-configuration HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n"
        );
        let answer = raw(&p, request.as_bytes()).await;
        assert_eq!(answer.status, 200);
        let doc: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(doc["issuer"], p.issuer.as_str());
        assert!(!answer.body.contains("evil"));
    }
}
