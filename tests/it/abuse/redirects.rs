//! Redirect URIs: tricky ones refused at registration (admin API and CLI), near misses of the
//! registered one refused at authorization with the error page; open-redirect tricks at login,
//! the second-factor pages, consent and logout.

use laventecare_auth::clients::ClientRequest;
use laventecare_auth::vocabulary::Role;
use serde_json::json;
use url::Url;

use super::{assert_clean, send, stored};
use crate::api::service_token;
use crate::flow::{Browser, PASSWORD, POST_LOGOUT, Provider, REDIRECT, Step, authorize_url, hidden, pkce};
use crate::support::cli;

/// Redirect URIs a registration must refuse: each would be read by a browser differently from
/// the string registered (so exact matching would compare the wrong thing), or carries what a
/// redirect URI must not.
const TRICKY: [&str; 19] = [
    "https://rp.example.com/cb#frag",
    "https://rp.example.com/cb#",
    "https://evil@rp.example.com/cb",
    "https://rp.example.com:pw@evil.example/cb",
    "https://rp.example.com\\@evil.example/cb",
    "https://rp.example.com\\cb",
    "https://RP.example.com/cb",
    "HTTPS://rp.example.com/cb",
    "https://rp.example.com/a/%2e%2e/cb",
    "https://rp.example.com/a/../cb",
    "https://rp.example.com:443/cb",
    "https:rp.example.com/cb",
    "https:/rp.example.com/cb",
    "//rp.example.com/cb",
    "javascript:alert(1)",
    "JavaScript://rp.example.com/%0aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "https://rp.example.com/c b",
    "https://rp.example.com/cb\r\nSet-Cookie: a=b",
];

/// The admin API refuses each tricky URI as a redirect URI and as a post-logout one, at
/// registration and when changing a client; the CLI refuses them too. Nothing is registered or
/// changed.
#[tokio::test]
async fn registration_refuses_tricky_redirect_uris() {
    let p = Provider::start().await;
    let admin = service_token(&p, "acme", Role::Admin).await;
    let before = stored(&p).await;
    let http = p.http();
    for uri in TRICKY {
        for body in [
            json!({ "name": "web", "grant_types": ["authorization_code"], "redirect_uris": [uri] }),
            json!({ "name": "web", "grant_types": ["authorization_code"], "redirect_uris": ["https://ok.example/cb"],
                    "post_logout_redirect_uris": [uri] }),
        ] {
            let (status, _, text) = send(http.post(p.url("/api/v1/clients")).bearer_auth(&admin).json(&body)).await;
            assert_eq!(status, 400, "{uri}: {text}");
            assert_clean(uri, status, &text);
        }
        let path = format!("/api/v1/clients/{}", p.client_id);
        for body in [json!({ "redirect_uris": [uri] }), json!({ "post_logout_redirect_uris": [uri] })] {
            let (status, _, text) = send(http.patch(p.url(&path)).bearer_auth(&admin).json(&body)).await;
            assert_eq!(status, 400, "{uri}: {text}");
        }
    }
    assert_eq!(stored(&p).await, before, "nothing registered, nothing changed");
    let (_, _, client) = send(http.get(p.url(&format!("/api/v1/clients/{}", p.client_id))).bearer_auth(&admin)).await;
    let client: serde_json::Value = serde_json::from_str(&client).unwrap();
    assert_eq!(client["redirect_uris"], json!([REDIRECT]));

    for uri in
        ["https://rp.example.com\\@evil.example/cb", "https://RP.example.com/cb", "https://rp.example.com/a/%2e%2e/cb"]
    {
        let args = [
            "client",
            "create",
            "--tenant",
            "acme",
            "--name",
            "x",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            uri,
        ];
        let out = cli(&p.t, &args, "");
        assert!(!out.status.success(), "{uri}");
    }
    assert_eq!(stored(&p).await, before);
}

/// Near misses of the registered `https://rp.example.com/callback` (a fragment, userinfo, a
/// backslash, another case, an extra path or query, a port, encoded dots, another scheme) get
/// the error page at authorization, by GET and by POST: never a redirect to them.
#[tokio::test]
async fn authorization_refuses_near_misses_of_the_registered_uri() {
    let p = Provider::start().await;
    let (_, challenge) = pkce();
    let b = Browser::new(&p);
    for uri in [
        "https://rp.example.com/callback#x",
        "https://evil@rp.example.com/callback",
        "https://rp.example.com\\callback",
        "https://rp.example.com\\@evil.example/callback",
        "https://RP.EXAMPLE.COM/callback",
        "HTTPS://rp.example.com/callback",
        "https://rp.example.com/Callback",
        "https://rp.example.com/callback/",
        "https://rp.example.com/callback/extra",
        "https://rp.example.com/callback?x=1",
        "https://rp.example.com:443/callback",
        "https://rp.example.com:8443/callback",
        "https://rp.example.com/x/%2e%2e/callback",
        "https://rp.example.com/x/../callback",
        "https://rp.example.com.evil.example/callback",
        "http://rp.example.com/callback",
        "https:rp.example.com/callback",
        "//rp.example.com/callback",
        "javascript:alert(1)//https://rp.example.com/callback",
        "data:text/html,https://rp.example.com/callback",
        "",
    ] {
        let step = b.open(&authorize_url(&p, &challenge, &[("redirect_uri", uri)])).await;
        let Step::Page { status, html, .. } = &step else { panic!("{uri}: redirected: {step:?}") };
        assert_eq!(*status, 400, "{uri}");
        assert_clean(uri, *status, html);
        let form = Url::parse(&authorize_url(&p, &challenge, &[("redirect_uri", uri)])).unwrap();
        let res = p
            .http()
            .post(p.url("/authorize"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.query().unwrap().to_owned())
            .send()
            .await
            .unwrap();
        let location = res.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with("/authorize?"), "{uri}: POST went to {location}");
        assert_eq!(b.open(&p.url(&location)).await.status(), 400, "{uri} by POST");
    }
}

/// The tricks a return-to parameter invites.
const ELSEWHERE: [&str; 7] = [
    "//evil.example",
    "https:evil.example",
    "/\\evil.example",
    "%2F%2Fevil.example",
    "https://evil.example/",
    "\\\\evil.example",
    "/%09/evil.example",
];

/// Whether `location`, resolved against the issuer, stays on the issuer.
fn stays_home(p: &Provider, location: &str) -> bool {
    let issuer = Url::parse(&p.issuer).unwrap();
    issuer.join(location).is_ok_and(|to| to.origin() == issuer.origin()) && !location.contains("evil.example/")
}

/// Login and the second-factor pages take only `req`, the id of a waiting request in this
/// session: an id that names none is never a place to go. After signing in with each trick as
/// `req`, the browser goes home; the second-factor pages send a signed-out browser to the login
/// page with `req` as one encoded value; `/authorize/continue` shows the expired page.
#[tokio::test]
async fn login_and_second_factor_pages_redirect_only_home() {
    let p = Provider::start().await;
    for trick in ELSEWHERE {
        let http =
            reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let page = http.get(p.url("/login")).query(&[("req", trick)]).send().await.unwrap();
        assert_eq!(page.status(), 200, "{trick}");
        let html = page.text().await.unwrap();
        assert!(!html.contains("evil.example"), "{trick} is not echoed");
        let form = [
            ("csrf", hidden(&html, "csrf")),
            ("req", trick.to_owned()),
            ("email", p.email.clone()),
            ("password", PASSWORD.to_owned()),
        ];
        let res = http.post(p.url("/login")).form(&form).send().await.unwrap();
        assert_eq!(res.status(), 303, "{trick}");
        assert_eq!(res.headers()["location"], "/", "{trick}");

        let encoded: String = url::form_urlencoded::byte_serialize(trick.as_bytes()).collect();
        for path in ["/login/mfa", "/mfa/enrol"] {
            let res = p.http().get(p.url(path)).query(&[("req", trick)]).send().await.unwrap();
            assert_eq!(res.status(), 303, "{path} {trick}");
            let location = res.headers()["location"].to_str().unwrap();
            assert_eq!(location, format!("/login?req={encoded}"), "{path} {trick}");
            assert!(stays_home(&p, location), "{path} {trick}: {location}");
        }
        let (status, location, html) = send(p.http().get(p.url("/authorize/continue")).query(&[("req", trick)])).await;
        assert_eq!((status, location), (400, None), "{trick}");
        assert_clean(trick, status, &html);
    }
}

/// Consent answers only the waiting request it names: with another `req` it is the expired
/// page, and a `redirect_uri` slipped into the form does not change where the answer goes.
#[tokio::test]
async fn consent_cannot_be_sent_elsewhere() {
    let p = Provider::start().await;
    let b = Browser::new(&p);
    let (_, challenge) = pkce();
    let step = b.open(&authorize_url(&p, &challenge, &[])).await;
    let consent = b.login(&step, &p.email, PASSWORD).await;
    let html = consent.html().to_owned();
    assert!(html.contains("action=\"/consent\""), "{html}");
    let csrf = hidden(&html, "csrf");
    for trick in ELSEWHERE {
        let step = b.post("/consent", &[("csrf", &csrf), ("req", trick), ("decision", "allow")]).await;
        let Step::Page { status, html, .. } = &step else { panic!("{trick}: {step:?}") };
        assert_eq!(*status, 400, "{trick}");
        assert_clean(trick, *status, html);
    }
    let req = hidden(&html, "req");
    let step = b
        .post(
            "/consent",
            &[("csrf", &csrf), ("req", &req), ("decision", "allow"), ("redirect_uri", "https://evil.example/cb")],
        )
        .await;
    match &step {
        Step::Left(url) => assert!(url.as_str().starts_with(REDIRECT), "{url}"),
        Step::Page { status, html, .. } => assert_clean("consent with redirect_uri", *status, html),
    }
}

/// RP-initiated logout redirects only to a URI registered for the client the request names:
/// not to an unregistered one, another client's, one with a query or fragment added or its case
/// changed, nor to any without an `id_token_hint` or `client_id` naming the client. Each gets
/// the error page and the user stays signed in; the registered one still works.
#[tokio::test]
async fn logout_redirects_only_to_the_clients_own_uris() {
    let p = Provider::start().await;
    let other = p
        .client(ClientRequest {
            name: "Other".into(),
            grants: vec!["authorization_code".into()],
            redirect_uris: vec!["https://other.example/cb".into()],
            post_logout_redirect_uris: vec!["https://other.example/out".into()],
            ..Default::default()
        })
        .await;
    let b = Browser::new(&p);
    let (_, challenge) = pkce();
    b.sign_in_through(&authorize_url(&p, &challenge, &[]), &p.email, PASSWORD).await;
    let id = p.client_id.as_str();
    let with_query = format!("{POST_LOGOUT}?next=https://evil.example");
    let with_fragment = format!("{POST_LOGOUT}#x");
    let upper = POST_LOGOUT.replace("rp.example.com", "RP.EXAMPLE.COM");
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("client_id", id), ("post_logout_redirect_uri", "https://evil.example/out")],
        vec![("client_id", id), ("post_logout_redirect_uri", "https://other.example/out")],
        vec![("client_id", &other.client_id), ("post_logout_redirect_uri", POST_LOGOUT)],
        vec![("client_id", id), ("post_logout_redirect_uri", &with_query)],
        vec![("client_id", id), ("post_logout_redirect_uri", &with_fragment)],
        vec![("client_id", id), ("post_logout_redirect_uri", &upper)],
        vec![("client_id", id), ("post_logout_redirect_uri", "//evil.example")],
        vec![("post_logout_redirect_uri", POST_LOGOUT)],
        vec![("client_id", ""), ("post_logout_redirect_uri", POST_LOGOUT)],
        vec![("client_id", "no-such-client"), ("post_logout_redirect_uri", POST_LOGOUT)],
        vec![("id_token_hint", "e30.e30.x"), ("post_logout_redirect_uri", POST_LOGOUT)],
    ];
    for q in cases {
        let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&q).finish();
        let step = b.open(&p.url(&format!("/logout?{query}"))).await;
        let Step::Page { status, html, .. } = &step else { panic!("{q:?}: redirected: {step:?}") };
        assert_eq!(*status, 400, "{q:?}");
        assert_clean("logout", *status, html);
    }
    assert_eq!(b.open(&p.url("/account")).await.status(), 200, "still signed in");
    // The registered one, named by its client: the confirmation page.
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("client_id", id), ("post_logout_redirect_uri", POST_LOGOUT)])
        .finish();
    let step = b.open(&p.url(&format!("/logout?{query}"))).await;
    assert!(step.html().contains(POST_LOGOUT), "{}", step.html());
}
