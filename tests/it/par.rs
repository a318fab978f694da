//! Pushed authorization requests (RFC 9126): `/par` checks a request as `/authorize` would and
//! answers a one-time `request_uri`; the browser brings it with the client_id and signs in; a
//! client registered with `require_par` must push; what is refused is refused as JSON and
//! stores nothing.

use laventecare_auth::clients::ClientRequest;
use serde_json::Value;
use url::Url;

use crate::flow::{Browser, PASSWORD, Provider, REDIRECT, claims, pkce};

const PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// Pushes `form` as the seeded client (Basic authentication): (status, body, Cache-Control).
async fn push(p: &Provider, form: &[(&str, &str)]) -> (u16, Value, Option<String>) {
    let res =
        p.http().post(p.url("/par")).basic_auth(&p.client_id, Some(&p.client_secret)).form(form).send().await.unwrap();
    let status = res.status().as_u16();
    let cache = res.headers().get("cache-control").map(|v| v.to_str().unwrap().to_owned());
    (status, res.json().await.unwrap(), cache)
}

/// The usual request of the seeded client, with PKCE.
fn request(challenge: &str) -> Vec<(&str, &str)> {
    vec![
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email offline_access"),
        ("state", "st-par"),
        ("nonce", "n-par"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
}

fn authorize(p: &Provider, client_id: &str, request_uri: &str, extra: &[(&str, &str)]) -> String {
    let mut url = Url::parse(&p.url("/authorize")).unwrap();
    url.query_pairs_mut().append_pair("client_id", client_id).append_pair("request_uri", request_uri);
    url.query_pairs_mut().extend_pairs(extra);
    url.to_string()
}

async fn pushed_rows(p: &Provider) -> i64 {
    let mut conn = p.t.owner().await;
    sqlx::query_scalar("SELECT count(*) FROM pushed_authorization_requests").fetch_one(&mut conn).await.unwrap()
}

/// Push, sign in through the request_uri, redeem the code; the request_uri works once, and
/// parameters in the browser's query do not change the pushed request.
#[tokio::test]
async fn a_pushed_request_signs_in_once() {
    let p = Provider::start().await;
    let (verifier, challenge) = pkce();
    let (status, body, cache) = push(&p, &request(&challenge)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    assert_eq!(body["expires_in"], 60);
    let request_uri = body["request_uri"].as_str().unwrap().to_owned();
    assert!(request_uri.starts_with(PREFIX) && request_uri.len() > PREFIX.len() + 40, "{request_uri}");

    let browser = Browser::new(&p);
    // The query may not widen or redirect what was pushed (RFC 9126 §4).
    let url = authorize(&p, &p.client_id, &request_uri, &[("scope", "openid admin"), ("state", "other")]);
    let step = browser.sign_in_through(&url, &p.email, PASSWORD).await;
    let left = step.left();
    assert!(left.as_str().starts_with(REDIRECT), "{left}");
    assert_eq!(step.param("state").as_deref(), Some("st-par"), "the pushed state");
    let (status, tokens) = p.redeem(&step.param("code").unwrap(), &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "email offline_access openid", "the pushed scope");
    assert_eq!(claims(tokens["id_token"].as_str().unwrap())["nonce"], "n-par");

    // Used: a second visit (another browser even) gets the error page, not a redirect.
    let again = Browser::new(&p).open(&url).await;
    assert_eq!(again.status(), 400, "{again:?}");
    assert!(again.html().contains("expired or was used"), "{}", again.html());
}

/// What /authorize would refuse, /par refuses as JSON, and keeps nothing.
#[tokio::test]
async fn the_push_is_checked_as_authorize_would_check_it() {
    let p = Provider::start().await;
    let (_, challenge) = pkce();
    let with = |changes: &[(&'static str, &'static str)]| {
        let mut form: Vec<(&str, &str)> = request(&challenge);
        for (k, v) in changes {
            form.retain(|(name, _)| name != k);
            if !v.is_empty() {
                form.push((k, v));
            }
        }
        form
    };
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let cases: [Case; 8] = [
        ("unregistered redirect_uri", with(&[("redirect_uri", "https://evil.example/cb")]), "invalid_request"),
        ("no redirect_uri", with(&[("redirect_uri", "")]), "invalid_request"),
        ("no PKCE", with(&[("code_challenge", ""), ("code_challenge_method", "")]), "invalid_request"),
        ("plain PKCE", with(&[("code_challenge_method", "plain")]), "invalid_request"),
        ("a scope not allowed", with(&[("scope", "openid admin")]), "invalid_scope"),
        ("another response_type", with(&[("response_type", "token")]), "unsupported_response_type"),
        ("a request_uri inside", with(&[("request_uri", "urn:ietf:params:oauth:request_uri:x")]), "invalid_request"),
        ("an unregistered resource", with(&[("resource", "https://nothing.example/")]), "invalid_target"),
    ];
    for (case, form, error) in cases {
        let (status, body, _) = push(&p, &form).await;
        assert_eq!((status, body["error"].as_str()), (400, Some(error)), "{case}: {body}");
    }
    // A wrong secret, and no authentication at all, for a confidential client.
    let res = p
        .http()
        .post(p.url("/par"))
        .basic_auth(&p.client_id, Some("wrong"))
        .form(&request(&challenge))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let mut form = request(&challenge);
    form.push(("client_id", &p.client_id));
    let res = p.http().post(p.url("/par")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 401, "a confidential client authenticates");
    // Repeated parameters, and not a form.
    let res = p
        .http()
        .post(p.url("/par"))
        .basic_auth(&p.client_id, Some(&p.client_secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("response_type=code&response_type=code")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = p
        .http()
        .post(p.url("/par"))
        .basic_auth(&p.client_id, Some(&p.client_secret))
        .json(&serde_json::json!({ "response_type": "code" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    assert_eq!(pushed_rows(&p).await, 0, "nothing refused was kept");
}

/// A request_uri works only with the client that pushed it, and only within its minute; a
/// request_uri of another shape is a request object by reference, refused at the redirect.
#[tokio::test]
async fn a_request_uri_is_the_pushing_clients_and_expires() {
    let p = Provider::start().await;
    let other = p
        .client(ClientRequest {
            name: "Other".into(),
            grants: vec!["authorization_code".into()],
            redirect_uris: vec![REDIRECT.into()],
            ..Default::default()
        })
        .await;
    let (_, challenge) = pkce();
    let (_, body, _) = push(&p, &request(&challenge)).await;
    let request_uri = body["request_uri"].as_str().unwrap().to_owned();
    let browser = Browser::new(&p);
    let step = browser.open(&authorize(&p, &other.client_id, &request_uri, &[])).await;
    assert_eq!(step.status(), 400, "another client's request_uri: {step:?}");
    let step = browser.open(&authorize(&p, &p.client_id, &request_uri, &[])).await;
    assert!(step.html().contains("action=\"/login\""), "still there for its own client: {step:?}");

    let (_, body, _) = push(&p, &request(&challenge)).await;
    let expired = body["request_uri"].as_str().unwrap().to_owned();
    let mut conn = p.t.owner().await;
    sqlx::query(
        "UPDATE pushed_authorization_requests SET expires_at = now() - interval '1 second' WHERE used_at IS NULL",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let step = Browser::new(&p).open(&authorize(&p, &p.client_id, &expired, &[])).await;
    assert_eq!(step.status(), 400, "expired: {step:?}");
    let step = Browser::new(&p).open(&authorize(&p, &p.client_id, &format!("{PREFIX}made-up"), &[])).await;
    assert_eq!(step.status(), 400, "never pushed: {step:?}");
    // Swept by the janitor with the used one.
    laventecare_auth::janitor::run_once(&p.t.db, 1000).await.unwrap();
    assert_eq!(pushed_rows(&p).await, 0);

    let url = crate::flow::authorize_url(&p, &challenge, &[("request_uri", "https://rp.example.com/request.jwt")]);
    let step = Browser::new(&p).open(&url).await;
    assert_eq!(step.param("error").as_deref(), Some("request_uri_not_supported"), "{step:?}");
}

/// A client registered with `require_par` is refused at /authorize unless it pushed; a public
/// client pushes with its client_id alone.
#[tokio::test]
async fn a_client_that_requires_par_must_push() {
    let p = Provider::start().await;
    let spa = p
        .client(ClientRequest {
            name: "SPA".into(),
            grants: vec!["authorization_code".into()],
            public: true,
            redirect_uris: vec![REDIRECT.into()],
            require_par: true,
            ..Default::default()
        })
        .await;
    assert!(spa.require_pushed_authorization_requests);
    let (verifier, challenge) = pkce();
    let mut direct = Url::parse(&crate::flow::authorize_url(&p, &challenge, &[])).unwrap();
    let pairs: Vec<(String, String)> = direct
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "client_id" { spa.client_id.clone() } else { v.into_owned() };
            (k.into_owned(), v)
        })
        .collect();
    direct.query_pairs_mut().clear().extend_pairs(pairs);
    let step = Browser::new(&p).open(direct.as_str()).await;
    assert_eq!(step.param("error").as_deref(), Some("invalid_request"), "{step:?}");

    let mut form = request(&challenge);
    form.retain(|(k, _)| *k != "scope");
    form.push(("scope", "openid"));
    form.push(("client_id", &spa.client_id));
    let res = p.http().post(p.url("/par")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    let step = Browser::new(&p)
        .sign_in_through(&authorize(&p, &spa.client_id, body["request_uri"].as_str().unwrap(), &[]), &p.email, PASSWORD)
        .await;
    let code = step.param("code").unwrap_or_else(|| panic!("{step:?}"));
    let res = p
        .http()
        .post(p.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("client_id", &spa.client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let doc: Value =
        p.http().get(p.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["pushed_authorization_request_endpoint"], p.url("/par"));
    assert_eq!(doc["require_pushed_authorization_requests"], false);
}
