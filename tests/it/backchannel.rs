//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): a test receiver registered as
//! a client's `backchannel_logout_uri` gets a logout token with the right claims after each
//! trigger (RP-initiated logout, a password change, a recovery, an admin's "sign out
//! everywhere"); a relying party that is down is tried again without holding up the user; a
//! private address is refused unless allowed; registration checks the URI.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use laventecare_auth::clients::{self, ClientRequest};
use laventecare_auth::db::audit::Actor;
use laventecare_auth::tokens::TokenType;
use serde_json::Value;

use crate::flow::{Browser, PASSWORD, POST_LOGOUT, Provider, claims, hidden};
use crate::mfa::{tenant_id, user_id};

/// What the receiver got: the `logout_token` of each POST, and how it answers.
#[derive(Clone, Default)]
struct Receiver {
    tokens: Arc<Mutex<Vec<String>>>,
    /// Answers to give, in order (then 200): a status and a delay.
    script: Arc<Mutex<Vec<(u16, Duration)>>>,
}

async fn receive(State(r): State<Receiver>, body: axum::body::Bytes) -> StatusCode {
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    if let Some((_, token)) = form.into_iter().find(|(k, _)| k == "logout_token") {
        r.tokens.lock().unwrap().push(token);
    }
    let next = {
        let mut script = r.script.lock().unwrap();
        (!script.is_empty()).then(|| script.remove(0))
    };
    let (status, delay) = next.unwrap_or((200, Duration::ZERO));
    tokio::time::sleep(delay).await;
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    /// Serves on a loopback port; returns its URL.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/backchannel-logout", listener.local_addr().unwrap());
        let app =
            axum::Router::new().route("/backchannel-logout", axum::routing::post(receive)).with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    /// Waits (at most `within`) until `n` tokens have arrived; returns them.
    async fn wait_for(&self, n: usize, within: Duration) -> Vec<String> {
        let until = Instant::now() + within;
        loop {
            let got = self.tokens.lock().unwrap().clone();
            if got.len() >= n || Instant::now() > until {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Points the seeded client's back-channel logout URI at `url`.
async fn set_logout_uri(p: &Provider, url: &str) {
    let mut conn = p.t.owner().await;
    sqlx::query("UPDATE clients SET backchannel_logout_uri = $1 WHERE client_id = $2")
        .bind(url)
        .bind(&p.client_id)
        .execute(&mut conn)
        .await
        .unwrap();
}

/// A provider whose seeded client has the receiver as its back-channel logout URI, with the
/// delivery worker running (loopback allowed, as the receiver is on this machine).
async fn setup() -> (Provider, Receiver) {
    let p = Provider::start_with(&[("LCA_BACKCHANNEL_ALLOW_PRIVATE", "true")]).await;
    let receiver = Receiver::default();
    let url = receiver.start().await;
    set_logout_uri(&p, &url).await;
    laventecare_auth::backchannel::spawn(p.state.clone(), std::future::pending());
    (p, receiver)
}

/// A logout token as §2.4 has it, for the seeded client and ann: verified with the provider's
/// keys as `logout+jwt`; `iss`, `aud`, `iat`, a short `exp`, `jti`, `sub`, the event, and no
/// `nonce`. Returns its claims.
async fn check_token(p: &Provider, token: &str) -> Value {
    let verified = p.state.keys.verify_fresh(token, TokenType::LogoutToken).await.expect("signed by the provider");
    assert!(p.state.keys.verify_fresh(token, TokenType::IdToken).await.is_err(), "not an ID token");
    let c = claims(token);
    assert_eq!(Value::Object(verified), c);
    assert_eq!(crate::flow::header(token)["typ"], "logout+jwt");
    assert_eq!(c["iss"], p.issuer.as_str());
    assert_eq!(c["aud"], p.client_id.as_str());
    assert_eq!(c["sub"], user_id(p, &p.email).await.to_string());
    assert!(c["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object(), "{c}");
    assert!(c.get("nonce").is_none());
    let (iat, exp) = (c["iat"].as_i64().unwrap(), c["exp"].as_i64().unwrap());
    assert!(exp > iat && exp - iat <= 300, "{c}");
    assert!(c["jti"].as_str().is_some_and(|j| !j.is_empty()));
    c
}

/// Each trigger sends the seeded client a logout token for ann.
#[tokio::test]
async fn each_trigger_sends_a_logout_token() {
    let (p, receiver) = setup().await;
    let wait = Duration::from_secs(10);

    // 1. RP-initiated logout: the token names the session.
    let (browser, body) = crate::flow::tokens(&p).await;
    let sid = claims(body["id_token"].as_str().unwrap())["sid"].as_str().unwrap().to_owned();
    let mut url = url::Url::parse(&p.url("/logout")).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", body["id_token"].as_str().unwrap())
        .append_pair("post_logout_redirect_uri", POST_LOGOUT);
    let left = browser.open(url.as_str()).await;
    assert!(left.left().as_str().starts_with(POST_LOGOUT), "{left:?}");
    let got = receiver.wait_for(1, wait).await;
    assert_eq!(got.len(), 1, "the logout token arrived");
    assert_eq!(check_token(&p, &got[0]).await["sid"], sid.as_str());

    // 2. A password change on the account page.
    let (browser, _) = crate::flow::tokens(&p).await;
    let account = browser.open(&p.url("/account")).await;
    let csrf = hidden(account.html(), "csrf");
    let new_password = "plum orbit lantern 77";
    let changed =
        browser.post("/account/password", &[("csrf", &csrf), ("current", PASSWORD), ("new", new_password)]).await;
    assert!(changed.html().contains("Your password is changed"), "{}", changed.html());
    // Ann has two live families (the first outlived the browser sign-out): one token for each
    // session.
    let got = receiver.wait_for(3, wait).await;
    assert!(got.len() >= 3, "tokens after the password change");
    let sids: std::collections::BTreeSet<String> =
        [&got[1], &got[2]].iter().map(|t| claims(t)["sid"].as_str().unwrap().to_owned()).collect();
    assert_eq!(sids.len(), 2, "one per session");
    check_token(&p, &got[1]).await;
    check_token(&p, &got[2]).await;

    let sign_in = |password: &'static str| {
        let p = &p;
        async move {
            let b = Browser::new(p);
            let (verifier, challenge) = crate::flow::pkce();
            let step = b.sign_in_through(&crate::flow::authorize_url(p, &challenge, &[]), &p.email, password).await;
            let (status, _) = p.redeem(&step.param("code").unwrap(), &verifier).await;
            assert_eq!(status, 200);
        }
    };

    // 3. An admin's "sign out everywhere", through the admin API.
    sign_in(new_password).await;
    let ann = user_id(&p, &p.email).await;
    let admin = crate::api::service_token(&p, "acme", laventecare_auth::vocabulary::Role::Admin).await;
    let res =
        p.http().post(p.url(&format!("/api/v1/members/{ann}/sign-out"))).bearer_auth(&admin).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let got = receiver.wait_for(4, wait).await;
    assert!(got.len() >= 4, "a token after signing out everywhere");
    check_token(&p, &got[3]).await;

    // 4. A recovery link used (last: it makes ann enrol a second factor at her next sign-in).
    sign_in(new_password).await;
    let acme = tenant_id(&p, "acme").await;
    let link =
        laventecare_auth::identity::recovery::issue_link(&p.t.db, &p.state.config, &Actor::operator("test"), acme, ann)
            .await
            .unwrap()
            .unwrap();
    let own = Browser::new(&p);
    let form = own.open(&link.link).await;
    let fields = [
        ("csrf", hidden(form.html(), "csrf")),
        ("token", hidden(form.html(), "token")),
        ("password", PASSWORD.to_owned()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let done = own.post("/recover", &fields).await;
    assert!(done.html().contains("Your password is set"), "{}", done.html());
    let got = receiver.wait_for(5, wait).await;
    assert!(got.len() >= 5, "a token after the recovery");
    check_token(&p, &got[4]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = receiver.tokens.lock().unwrap().clone();
    assert_eq!(got.len(), 5, "one token per live session of each trigger, nothing twice");
}

/// A relying party that hangs and then fails is tried again later; the user's sign-out does
/// not wait for it.
#[tokio::test]
async fn a_failed_delivery_is_retried_without_holding_up_the_user() {
    let (p, receiver) = setup().await;
    receiver.script.lock().unwrap().push((503, Duration::from_secs(3)));
    let (browser, body) = crate::flow::tokens(&p).await;
    let mut url = url::Url::parse(&p.url("/logout")).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", body["id_token"].as_str().unwrap())
        .append_pair("post_logout_redirect_uri", POST_LOGOUT);
    let started = Instant::now();
    let left = browser.open(url.as_str()).await;
    assert!(left.left().as_str().starts_with(POST_LOGOUT));
    assert!(started.elapsed() < Duration::from_secs(2), "the sign-out took {:?}", started.elapsed());

    // The first attempt hangs 3 s and answers 503; the retry comes 5 s later and succeeds.
    let got = receiver.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 2, "tried again");
    assert_eq!(claims(&got[0])["sid"], claims(&got[1])["sid"], "the same notice, signed again");
    let mut conn = p.t.owner().await;
    let row: (i32, bool, Option<String>) = sqlx::query_as(
        "SELECT attempts, delivered_at IS NOT NULL, last_error FROM logout_notices ORDER BY created_at DESC LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((row.0, row.1, row.2), (2, true, None), "delivered on the second attempt");
}

/// Without `LCA_BACKCHANNEL_ALLOW_PRIVATE`, a URI on a loopback address is not posted to;
/// registration accepts https and loopback http only.
#[tokio::test]
async fn private_addresses_are_refused_and_registration_checks_the_uri() {
    let p = Provider::start().await;
    let receiver = Receiver::default();
    let url = receiver.start().await;
    let web = p
        .client(ClientRequest {
            name: "With logout".into(),
            grants: vec!["authorization_code".into()],
            redirect_uris: vec![crate::flow::REDIRECT.into()],
            backchannel_logout_uri: Some(url.clone()),
            ..Default::default()
        })
        .await;
    assert_eq!(web.backchannel_logout_uri.as_deref(), Some(url.as_str()));
    set_logout_uri(&p, &url).await;
    let (browser, body) = crate::flow::tokens(&p).await;
    let mut logout = url::Url::parse(&p.url("/logout")).unwrap();
    logout
        .query_pairs_mut()
        .append_pair("id_token_hint", body["id_token"].as_str().unwrap())
        .append_pair("post_logout_redirect_uri", POST_LOGOUT);
    browser.open(logout.as_str()).await;
    let http = laventecare_auth::backchannel::client(p.state.config.backchannel_allow_private);
    let delivered = laventecare_auth::backchannel::deliver_due(&p.state, &http).await.unwrap();
    assert_eq!(delivered, 0);
    assert!(receiver.tokens.lock().unwrap().is_empty(), "nothing was posted to a loopback address");
    let mut conn = p.t.owner().await;
    let error: Option<String> =
        sqlx::query_scalar("SELECT last_error FROM logout_notices").fetch_one(&mut conn).await.unwrap();
    assert!(error.as_deref().is_some_and(|e| e.contains("not public")), "{error:?}");

    for bad in ["http://rp.example.com/logout", "https://rp.example.com/logout#x", "ftp://rp.example.com/", "/logout"] {
        let refused = clients::create_client(
            &p.t.db,
            ClientRequest {
                tenant: "acme".into(),
                name: "Bad".into(),
                grants: vec!["authorization_code".into()],
                redirect_uris: vec![crate::flow::REDIRECT.into()],
                backchannel_logout_uri: Some(bad.into()),
                ..Default::default()
            },
        )
        .await;
        assert!(refused.is_err(), "{bad}");
    }
    let doc: Value =
        p.http().get(p.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (doc["backchannel_logout_supported"].clone(), doc["backchannel_logout_session_supported"].clone()),
        (Value::Bool(true), Value::Bool(true))
    );
}
