//! Malformed forms and JSON, the wrong content type, and invalid UTF-8 in queries, forms, JSON
//! and the request line.

use laventecare_auth::vocabulary::Role;

use super::{assert_clean, assert_clean_raw, get_request, post_request, raw, send, sessions, signed_in, stored};
use crate::api::service_token;
use crate::flow::{Provider, authorize_url, pkce};

/// The admin API refuses truncated JSON, a JSON array or string where an object belongs,
/// absurd nesting, wrong types, unknown fields and the wrong content type, with our words; no
/// member, client or setting changes. (Unknown fields and wrong types at `POST /clients`:
/// `api_resources::refused_clients_leave_nothing_behind`.)
#[tokio::test]
async fn malformed_json_is_refused() {
    let p = Provider::start().await;
    let admin = service_token(&p, "acme", Role::Admin).await;
    let before = stored(&p).await;
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let cases: Vec<(&str, &str, String)> = vec![
        ("truncated", "application/json", r#"{"email":"new@example.com","role":"vie"#.into()),
        ("an array", "application/json", r#"["new@example.com","viewer"]"#.into()),
        ("a string", "application/json", r#""new@example.com""#.into()),
        ("deeply nested", "application/json", deep),
        ("a number for the email", "application/json", r#"{"email":5,"role":"viewer"}"#.into()),
        ("a role that is none", "application/json", r#"{"email":"new@example.com","role":"root"}"#.into()),
        ("an unknown field", "application/json", r#"{"email":"new@example.com","role":"viewer","admin":true}"#.into()),
        (
            "a duplicated key",
            "application/json",
            r#"{"email":"new@example.com","role":"viewer","role":"admin"}"#.into(),
        ),
        ("text/plain", "text/plain", r#"{"email":"new@example.com","role":"viewer"}"#.into()),
        ("a form", "application/x-www-form-urlencoded", "email=new%40example.com&role=viewer".into()),
        ("empty", "application/json", String::new()),
    ];
    let http = p.http();
    for (what, content_type, body) in &cases {
        for path in ["/api/v1/members", "/api/v1/clients"] {
            let req =
                http.post(p.url(path)).bearer_auth(&admin).header("content-type", *content_type).body(body.clone());
            let (status, _, text) = send(req).await;
            assert!(status == 400 || status == 415, "{what} at {path}: {status} {text}");
            assert_clean(what, status, &text);
        }
    }
    let req = http.patch(p.url("/api/v1/settings")).bearer_auth(&admin).header("content-type", "application/json");
    let (status, _, text) = send(req.body(r#"{"require_mfa":"yes"}"#)).await;
    assert_eq!(status, 400, "{text}");
    assert_clean("settings", status, &text);
    assert_eq!(stored(&p).await, before);
}

/// Forms with broken percent-encoding, no `=`, stray `&`, a JSON body or no content type at
/// the token, introspection and revocation endpoints: a clean 4xx, nothing issued.
#[tokio::test]
async fn malformed_forms_are_refused() {
    let p = Provider::start().await;
    let before = stored(&p).await;
    let http = p.http();
    for path in ["/token", "/introspect", "/revoke", "/device_authorization"] {
        for (content_type, body) in [
            (Some("application/x-www-form-urlencoded"), "grant_type=client_credentials&scope=%ZZ%"),
            (Some("application/x-www-form-urlencoded"), "grant_type&&&token=%"),
            (Some("application/x-www-form-urlencoded"), "=&=&==="),
            (Some("application/json"), r#"{"grant_type":"client_credentials"}"#),
            (Some("multipart/form-data; boundary=x"), "--x\r\n\r\n--x--"),
            (None, "grant_type=client_credentials"),
        ] {
            let mut req = http.post(p.url(path)).basic_auth(&p.client_id, Some(&p.client_secret)).body(body);
            if let Some(ct) = content_type {
                req = req.header("content-type", ct);
            }
            let (status, _, text) = send(req).await;
            assert_clean(&format!("{path} {content_type:?} {body}"), status, &text);
        }
    }
    assert_eq!(stored(&p).await, before);
}

/// Invalid UTF-8 is refused, not decoded lossily into U+FFFD and kept: percent-encoded in a
/// query (the authorization request: its error page, no request waiting) and in a form (the
/// account's profile: nothing saved), raw in a form body and a JSON body, raw in the request
/// line (the HTTP parser's 400).
#[tokio::test]
async fn invalid_utf8_is_refused() {
    let p = Provider::start().await;
    let (_, challenge) = pkce();

    // In the authorization request (state is echoed back to the relying party).
    let url = authorize_url(&p, &challenge, &[("state", "st")]).replace("state=st", "state=%C3%28");
    let (status, location, html) = send(p.http().get(&url)).await;
    assert_eq!((status, location), (400, None), "{html}");
    assert_clean("authorize", status, &html);
    assert_eq!(sessions(&p).await, 0, "no request waits");

    // In a form that is stored: the profile's name.
    let (http, csrf) = signed_in(&p).await;
    let signed_in_at = stored(&p).await;
    for body in [
        format!("csrf={csrf}&name=Ann%FF").into_bytes(),
        [format!("csrf={csrf}&name=Ann").as_bytes(), b"\xC3\x28"].concat(),
    ] {
        let req = http.post(p.url("/account/profile")).header("content-type", "application/x-www-form-urlencoded");
        let (status, _, text) = send(req.body(body)).await;
        assert_eq!(status, 400, "{text}");
        assert_clean("profile", status, &text);
    }
    assert_eq!(stored(&p).await, signed_in_at, "no profile change was saved or audited");

    // Raw in a token request and in the admin API's JSON.
    let form =
        [b"grant_type=client_credentials&scope=openid\xFF&client_id=".as_slice(), p.client_id.as_bytes()].concat();
    let answer = raw(&p, &post_request(&p, "/token", "", &form)).await;
    assert_clean_raw("token", &answer);
    let admin = service_token(&p, "acme", Role::Admin).await;
    let after_token = stored(&p).await;
    let req = p.http().post(p.url("/api/v1/members")).bearer_auth(&admin).header("content-type", "application/json");
    let (status, _, text) = send(req.body(b"{\"email\":\"n\xFFw@example.com\",\"role\":\"viewer\"}".to_vec())).await;
    assert_eq!(status, 400, "{text}");
    assert_clean("members", status, &text);
    assert_eq!(stored(&p).await, after_token);

    // Raw in the request line: no URI at all.
    let mut line = get_request(&p, "/authorize?state=", "");
    let at = line.iter().position(|b| *b == b'=').unwrap() + 1;
    line.splice(at..at, [0xFF, 0xFE]);
    let answer = raw(&p, &line).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.header("location").is_empty());
}
