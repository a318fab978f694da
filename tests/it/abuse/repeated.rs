//! RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once." A
//! repeated parameter is refused, never read as its first or its last value.

use laventecare_auth::clients::ClientRequest;

use super::{assert_clean, sessions, stored};
use crate::flow::{Browser, PASSWORD, POST_LOGOUT, Provider, REDIRECT, Step, authorize_url, pkce};

/// At the authorization endpoint, GET and form POST, each parameter given twice (with the same
/// value, or another) gets the error page: no redirect to either value, no request waiting.
#[tokio::test]
async fn repeated_authorization_parameters_are_refused() {
    let p = Provider::start().await;
    let (_, challenge) = pkce();
    let url = authorize_url(&p, &challenge, &[]);
    let query = url.split_once('?').unwrap().1.to_owned();
    let other = p
        .client(ClientRequest {
            name: "Other".into(),
            grants: vec!["authorization_code".into()],
            redirect_uris: vec!["https://evil.example/cb".into()],
            ..Default::default()
        })
        .await;
    let cases = [
        ("client_id", p.client_id.as_str()),
        ("client_id", other.client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("redirect_uri", "https://evil.example/cb"),
        ("response_type", "code"),
        ("scope", "openid admin"),
        ("state", "st-123"),
        ("state", "other"),
        ("nonce", "n-2"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "plain"),
    ];
    let b = Browser::new(&p);
    for (name, value) in cases {
        let extra: String = url::form_urlencoded::Serializer::new(String::new()).append_pair(name, value).finish();
        // The repeat before and after the first: neither may win.
        for q in [format!("{query}&{extra}"), format!("{extra}&{query}")] {
            let step = b.open(&p.url(&format!("/authorize?{q}"))).await;
            let Step::Page { status, html, .. } = &step else { panic!("{name} twice redirected: {step:?}") };
            assert_eq!(*status, 400, "{name}");
            assert!(html.contains("malformed or repeated"), "{name}: {html}");
            assert_clean(name, *status, html);
            // Form POST: sent on as GET, and refused there.
            let res = p
                .http()
                .post(p.url("/authorize"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(q.clone())
                .send()
                .await
                .unwrap();
            let location = res.headers()["location"].to_str().unwrap().to_owned();
            assert!(location.starts_with("/authorize?"), "{location}");
            let step = b.open(&p.url(&location)).await;
            assert_eq!(step.status(), 400, "{name} by POST");
        }
    }
    assert_eq!(sessions(&p).await, 0, "no request waits");
}

/// At the token endpoint, `grant_type`, `code`, `redirect_uri`, `client_id`, `code_verifier`,
/// `scope` and `refresh_token` given twice are `invalid_request`; none of those attempts
/// spends the code or rotates the refresh token, which then work once as usual.
#[tokio::test]
async fn repeated_token_parameters_are_refused() {
    let p = Provider::start().await;
    let b = Browser::new(&p);
    let (verifier, challenge) = pkce();
    let step = b.sign_in_through(&authorize_url(&p, &challenge, &[]), &p.email, PASSWORD).await;
    let code = step.code().unwrap();
    let base = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    let before = stored(&p).await;
    for (name, value) in [
        ("grant_type", "authorization_code"),
        ("grant_type", "client_credentials"),
        ("code", code.as_str()),
        ("code", "another"),
        ("redirect_uri", REDIRECT),
        ("client_id", p.client_id.as_str()),
        ("code_verifier", verifier.as_str()),
        ("scope", "openid"),
    ] {
        let mut form = base.to_vec();
        if name == "client_id" || name == "scope" {
            form.push((name, value));
        }
        form.push((name, value));
        let (status, body) = p.token(&form).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{name} twice: {body}");
        assert_clean(name, status, &body.to_string());
    }
    assert_eq!(stored(&p).await, before, "no token issued, no code spent");
    let (status, tokens) = p.token(&base).await;
    assert_eq!(status, 200, "the code was still good: {tokens}");

    let refresh = tokens["refresh_token"].as_str().unwrap();
    let before = stored(&p).await;
    for form in [
        vec![("grant_type", "refresh_token"), ("refresh_token", refresh), ("refresh_token", refresh)],
        vec![("grant_type", "refresh_token"), ("refresh_token", refresh), ("refresh_token", "x")],
        vec![("grant_type", "refresh_token"), ("refresh_token", refresh), ("scope", "openid"), ("scope", "openid")],
    ] {
        let (status, body) = p.token(&form).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{form:?}: {body}");
    }
    assert_eq!(stored(&p).await, before, "not rotated, family not ended");
    assert_eq!(p.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await.0, 200);
}

/// At logout, a repeated `post_logout_redirect_uri`, `client_id` or `state` is refused before
/// anything else: no redirect, and the user is still signed in.
#[tokio::test]
async fn repeated_logout_parameters_are_refused() {
    let p = Provider::start().await;
    let b = Browser::new(&p);
    let (_, challenge) = pkce();
    b.sign_in_through(&authorize_url(&p, &challenge, &[]), &p.email, PASSWORD).await;
    let id = p.client_id.as_str();
    for q in [
        vec![("client_id", id), ("post_logout_redirect_uri", POST_LOGOUT), ("post_logout_redirect_uri", POST_LOGOUT)],
        vec![("client_id", id), ("client_id", id), ("post_logout_redirect_uri", POST_LOGOUT)],
        vec![("client_id", id), ("post_logout_redirect_uri", POST_LOGOUT), ("state", "a"), ("state", "b")],
    ] {
        let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&q).finish();
        let step = b.open(&p.url(&format!("/logout?{query}"))).await;
        let Step::Page { status, html, .. } = &step else { panic!("{q:?} redirected: {step:?}") };
        assert_eq!(*status, 400, "{q:?}");
        assert_clean("logout", *status, html);
    }
    assert_eq!(b.open(&p.url("/account")).await.status(), 200, "still signed in");
}
