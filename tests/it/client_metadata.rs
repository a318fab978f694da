//! OAuth Client ID Metadata Documents: a loopback receiver serves documents (with
//! `LCA_CLIENT_METADATA_ALLOW_PRIVATE`, the development flag); a code flow with the document's
//! URL as client_id completes as a public client with PKCE and is audited; without the flag no
//! private address is ever contacted; documents that cannot be trusted are refused and nothing
//! is stored; a tenant that has not opted in is never offered, also at the token endpoint; a
//! document is kept until it expires, then fetched again; `/par` fetches it as `/authorize`
//! does.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use laventecare_auth::clients::metadata_document::{
    FETCH_TIMEOUT, FETCHES_PER_IP_PER_MINUTE, MAX_DOCUMENT_BYTES, MAX_URL_BYTES,
};
use laventecare_auth::tenancy;
use laventecare_auth::vocabulary::Role;
use serde_json::{Value, json};
use url::Url;
use uuid::Uuid;

use crate::flow::{Browser, PASSWORD, Provider, REDIRECT, Step, claims, hidden, pkce};
use crate::mfa::{audit_rows, tenant_id};
use crate::support::{cli, json_out};

const DEV: &[(&str, &str)] = &[("LCA_CLIENT_METADATA_ALLOW_PRIVATE", "true")];

/// One answer of the receiver.
#[derive(Clone)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// Wait this long before answering.
    delay: Duration,
    /// Send the body in chunks without a `Content-Length`.
    chunked: bool,
}

impl Answer {
    fn json(body: &Value) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string().into_bytes(),
            delay: Duration::ZERO,
            chunked: false,
        }
    }
}

/// An answer made for the URL it is served at.
type MakeAnswer = Box<dyn Fn(&str) -> Answer>;

/// A loopback web server of documents that counts what it is asked.
#[derive(Clone, Default)]
struct Receiver {
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    hits: Arc<Mutex<Vec<String>>>,
    base: Arc<Mutex<String>>,
}

async fn answer(State(r): State<Receiver>, uri: Uri) -> Response {
    let path = uri.path().to_owned();
    r.hits.lock().unwrap().push(path.clone());
    let found = r.answers.lock().unwrap().get(&path).cloned();
    let Some(a) = found else { return Response::builder().status(404).body(Body::empty()).unwrap() };
    tokio::time::sleep(a.delay).await;
    let body = if a.chunked {
        let chunks: Vec<Result<Bytes, Infallible>> =
            a.body.chunks(1000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        Body::from_stream(futures::stream::iter(chunks))
    } else {
        Body::from(a.body)
    };
    let mut res = Response::builder().status(a.status);
    for (name, value) in a.headers {
        res = res.header(name, value);
    }
    res.body(body).unwrap()
}

impl Receiver {
    /// Serves on a loopback port; returns the receiver.
    async fn start() -> Self {
        let r = Self::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        *r.base.lock().unwrap() = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(answer).with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.lock().unwrap())
    }

    fn port(&self) -> u16 {
        Url::parse(&self.url("/")).unwrap().port().unwrap()
    }

    fn serve(&self, path: &str, answer: Answer) {
        self.answers.lock().unwrap().insert(path.to_owned(), answer);
    }

    /// Serves a good document for its own URL at `path`; returns the URL.
    fn serve_document(&self, path: &str, name: &str) -> String {
        let url = self.url(path);
        self.serve(path, Answer::json(&document(&url, name)));
        url
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().iter().filter(|p| *p == path).count()
    }

    fn all_hits(&self) -> usize {
        self.hits.lock().unwrap().len()
    }
}

fn document(client_id: &str, name: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_name": name,
        "client_uri": "https://rp.example.com/",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

/// The platform tenant (documents' clients are kept there) and `acme` allowing documents.
async fn setup(p: &Provider) -> Uuid {
    let platform = tenancy::create_tenant(&p.t.db, "platform", "Platform", true).await.unwrap().tenant_id;
    allow(p, "acme", true).await;
    platform
}

async fn allow(p: &Provider, slug: &str, on: bool) {
    let operator = laventecare_auth::db::audit::Actor::system();
    tenancy::set_allow_client_metadata_documents(&p.t.db, &operator, slug, on).await.unwrap();
}

/// An authorization URL for `client_id` with PKCE.
fn authorize(p: &Provider, client_id: &str, challenge: &str, extra: &[(&str, &str)]) -> String {
    let mut url = Url::parse(&p.url("/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email"),
        ("state", "st-1"),
        ("nonce", "n-1"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]);
    url.query_pairs_mut().extend_pairs(extra);
    url.to_string()
}

/// Redeems a code as the public client `client_id` (no secret, PKCE).
async fn redeem(p: &Provider, client_id: &str, code: &str, verifier: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", client_id),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ];
    let res = p.http().post(p.url("/token")).form(&form).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// How many clients of metadata documents are stored.
async fn stored(p: &Provider) -> i64 {
    let mut conn = p.t.owner().await;
    sqlx::query_scalar("SELECT count(*) FROM clients WHERE metadata_document IS NOT NULL OR client_id LIKE 'http%'")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

/// The page of a document that could not be used.
const REFUSED: &str = "metadata document could not be used";
/// The page of an unknown client.
const UNKNOWN: &str = "not registered";

/// The error page of a refused request, saying `expected` and nothing of why.
fn assert_refused(step: &Step, expected: &str, what: &str) {
    assert_eq!(step.status(), 400, "{what}: {step:?}");
    let html = step.html();
    assert!(html.contains(expected), "{what}: {html}");
    for internal in ["answered", "bytes", "timed out", "client_secret", "JSON", "redirect_uris", "public"] {
        assert!(!html.contains(internal), "{what}: the page says {internal:?}");
    }
}

/// With the development flag, a document served on loopback is a client: the code flow
/// completes as a public client with PKCE, the ID token is for the document's URL and the
/// tenant, and the registration is audited in the platform tenant. The token endpoint uses
/// the stored client and never fetches.
#[tokio::test]
async fn a_document_client_signs_a_user_in() {
    let p = Provider::start_with(DEV).await;
    let platform = tenancy::create_tenant(&p.t.db, "platform", "Platform", true).await.unwrap().tenant_id;
    let on = json_out(&cli(&p.t, &["tenant", "client-metadata", "--slug", "acme", "--json"], ""));
    assert_eq!((on["allow_client_metadata_documents"].as_bool(), on["changed"].as_bool()), (Some(true), Some(true)));
    let r = Receiver::start().await;
    let client_id = r.serve_document("/mcp/client.json", "Docs Client");

    let discovery: Value =
        p.http().get(p.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(discovery["client_id_metadata_document_supported"], true);

    let (verifier, challenge) = pkce();
    let browser = Browser::new(&p);
    let login = browser.open(&authorize(&p, &client_id, &challenge, &[])).await;
    // The name is the document's word; the host beside it is what vouches for it.
    assert!(login.html().contains("Docs Client (127.0.0.1)"), "{}", login.html());
    let step = browser.sign_in_through(&authorize(&p, &client_id, &challenge, &[]), &p.email, PASSWORD).await;
    let code = step.param("code").unwrap_or_else(|| panic!("{step:?}"));
    assert_eq!(r.hits("/mcp/client.json"), 1);
    // The token endpoint uses what is stored: expired and gone, the document is not fetched.
    let mut conn = p.t.owner().await;
    sqlx::query("UPDATE clients SET metadata_expires_at = now() - interval '1 second' WHERE client_id = $1")
        .bind(&client_id)
        .execute(&mut conn)
        .await
        .unwrap();
    r.serve("/mcp/client.json", Answer { status: 404, ..Answer::json(&json!({})) });
    let (status, body) = redeem(&p, &client_id, &code, &verifier).await;
    assert_eq!(r.hits("/mcp/client.json"), 1, "the token endpoint fetched nothing");
    assert_eq!(status, 200, "{body}");
    let id = claims(body["id_token"].as_str().unwrap());
    let acme = tenant_id(&p, "acme").await;
    assert_eq!(id["iss"], p.issuer.as_str());
    assert_eq!(id["aud"], client_id.as_str());
    assert_eq!(id["nonce"], "n-1");
    assert_eq!(id["tid"], acme.to_string());
    assert_eq!(claims(body["access_token"].as_str().unwrap())["client_id"], client_id.as_str());
    // The wrong verifier is refused, as for any public client (the document is served again).
    r.serve_document("/mcp/client.json", "Docs Client");
    sqlx::query("DELETE FROM rate_limits").execute(&mut conn).await.unwrap();
    let step = browser.open(&authorize(&p, &client_id, &challenge, &[])).await;
    let code = step.param("code").unwrap_or_else(|| panic!("{step:?}"));
    assert_eq!(redeem(&p, &client_id, &code, &pkce().0).await.0, 400);

    let rows = audit_rows(&p, platform, "client.registered").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].target_id.as_deref(), Some(client_id.as_str()));
    assert_eq!(rows[0].details["via"], "client_id_metadata_document");
    assert_eq!(rows[0].details["multi_tenant"], true);
    assert_eq!(rows[0].details["client_type"], "public");
    let (tenant, name): (Uuid, String) = sqlx::query_as("SELECT tenant_id, name FROM clients WHERE client_id = $1")
        .bind(&client_id)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!((tenant, name.as_str()), (platform, "Docs Client"));
}

/// Without the flag, a client_id naming a private, loopback or link-local address (literally
/// or by a name that resolves to one) is refused: nothing is stored and the receiver, listening
/// on loopback, is never asked; loopback http is not a document URL at all.
#[tokio::test]
async fn private_addresses_are_never_fetched_without_the_flag() {
    let p = Provider::start().await;
    setup(&p).await;
    let r = Receiver::start().await;
    let port = r.port();
    r.serve_document("/client.json", "Loopback");
    let (_, challenge) = pkce();
    for (client_id, expected) in [
        ("https://localhost/client.json".to_owned(), REFUSED),
        (format!("https://localhost:{port}/client.json"), REFUSED),
        ("https://127.0.0.1/c".to_owned(), REFUSED),
        (format!("https://127.0.0.1:{port}/client.json"), REFUSED),
        ("https://[::1]/c".to_owned(), REFUSED),
        (format!("https://[::1]:{port}/client.json"), REFUSED),
        ("https://169.254.169.254/latest".to_owned(), REFUSED),
        ("https://10.0.0.1/c".to_owned(), REFUSED),
        ("https://100.64.0.1/c".to_owned(), REFUSED),
        ("https://[fd00::1]/c".to_owned(), REFUSED),
        // Not in normal form (the parser writes it `[::ffff:7f00:1]`), and plain http: not
        // document URLs at all without the flag.
        (format!("https://[::ffff:127.0.0.1]:{port}/client.json"), UNKNOWN),
        (format!("http://127.0.0.1:{port}/client.json"), UNKNOWN),
    ] {
        let step = Browser::new(&p).open(&authorize(&p, &client_id, &challenge, &[])).await;
        assert_refused(&step, expected, &client_id);
    }
    assert_eq!(r.all_hits(), 0, "no request reached the receiver");
    assert_eq!(stored(&p).await, 0, "nothing was stored");
}

/// Documents that cannot be trusted are refused with the error page (never a redirect) and
/// nothing is stored: another client_id, more than 5 KiB (declared or streamed), not JSON, a
/// redirect (not followed), an answer slower than the timeout, a secret-based or secret-holding
/// client; and a redirect_uri the document does not list.
#[tokio::test]
async fn documents_that_cannot_be_trusted_are_refused() {
    let p = Provider::start_with(DEV).await;
    setup(&p).await;
    let r = Receiver::start().await;
    let (_, challenge) = pkce();
    let big = |url: &str| {
        let mut d = document(url, "Big");
        d["padding"] = json!("x".repeat(MAX_DOCUMENT_BYTES));
        d
    };
    let with = |url: &str, member: &str, value: Value| {
        let mut d = document(url, "Odd");
        d[member] = value;
        d
    };
    let cases: Vec<(&str, MakeAnswer)> = vec![
        ("/other-id", Box::new(|url: &str| Answer::json(&document(&format!("{url}x"), "Other")))),
        ("/big", Box::new(move |url: &str| Answer::json(&big(url)))),
        ("/big-streamed", Box::new(move |url: &str| Answer { chunked: true, ..Answer::json(&big(url)) })),
        (
            "/html",
            Box::new(|_: &str| Answer {
                headers: vec![("content-type", "text/html".into())],
                body: b"<html>hello</html>".to_vec(),
                ..Answer::json(&json!({}))
            }),
        ),
        (
            "/not-json",
            Box::new(|_: &str| Answer { body: b"{\"client_id\": nope".to_vec(), ..Answer::json(&json!({})) }),
        ),
        ("/array", Box::new(|_: &str| Answer::json(&json!([1, 2])))),
        (
            "/secret-method",
            Box::new(move |url: &str| {
                Answer::json(&with(url, "token_endpoint_auth_method", json!("client_secret_basic")))
            }),
        ),
        ("/secret", Box::new(move |url: &str| Answer::json(&with(url, "client_secret", json!("s3cret"))))),
        ("/not-found", Box::new(|url: &str| Answer { status: 404, ..Answer::json(&document(url, "Gone")) })),
    ];
    for (path, make) in &cases {
        let url = r.url(path);
        r.serve(path, make(&url));
        let step = Browser::new(&p).open(&authorize(&p, &url, &challenge, &[])).await;
        assert_refused(&step, REFUSED, path);
        assert_eq!(r.hits(path), 1, "{path} was fetched once");
    }

    // A redirect is not followed, even to a good document.
    let target = r.serve_document("/target", "Target");
    let redirect = r.url("/redirect");
    r.serve(
        "/redirect",
        Answer { status: 302, headers: vec![("location", target.clone())], ..Answer::json(&json!({})) },
    );
    let step = Browser::new(&p).open(&authorize(&p, &redirect, &challenge, &[])).await;
    assert_refused(&step, REFUSED, "redirect");
    assert_eq!((r.hits("/redirect"), r.hits("/target")), (1, 0), "the redirect was not followed");

    // A receiver that takes longer than the timeout.
    let slow = r.url("/slow");
    r.serve(
        "/slow",
        Answer { delay: FETCH_TIMEOUT + Duration::from_secs(2), ..Answer::json(&document(&slow, "Slow")) },
    );
    let started = Instant::now();
    let step = Browser::new(&p).open(&authorize(&p, &slow, &challenge, &[])).await;
    let took = started.elapsed();
    assert_refused(&step, REFUSED, "slow");
    assert!(
        took >= FETCH_TIMEOUT - Duration::from_millis(100) && took < FETCH_TIMEOUT + Duration::from_secs(1),
        "{took:?}"
    );
    assert_eq!(stored(&p).await, 0, "nothing was stored");

    // A good document, and a redirect_uri it does not list: the page, no redirect.
    let good = r.serve_document("/good", "Good");
    let step = Browser::new(&p)
        .open(&authorize(&p, &good, &challenge, &[]).replace("rp.example.com%2Fcallback", "evil.example%2Fcallback"))
        .await;
    assert_eq!(step.status(), 400, "{step:?}");
    assert!(step.html().contains("redirect_uri is not registered"), "{}", step.html());
}

/// Only tenants that allow documents are offered to such a client, and the token endpoint
/// holds to it when a tenant turns them off; until some tenant allows them, nothing is fetched.
#[tokio::test]
async fn a_tenant_that_has_not_opted_in_is_never_offered() {
    let p = Provider::start_with(DEV).await;
    tenancy::create_tenant(&p.t.db, "platform", "Platform", true).await.unwrap();
    let r = Receiver::start().await;
    let client_id = r.serve_document("/client.json", "Docs Client");
    let (verifier, challenge) = pkce();

    // No tenant allows documents: the URL is an unknown client and is not fetched.
    let step = Browser::new(&p).open(&authorize(&p, &client_id, &challenge, &[])).await;
    assert_refused(&step, UNKNOWN, "no tenant allows");
    assert_eq!(r.all_hits(), 0);

    p.t.tenant("beta").await;
    tenancy::add_member(&p.t.db, "beta", &p.email, Role::Viewer).await.unwrap();
    allow(&p, "acme", true).await;
    let browser = Browser::new(&p);
    let mut step = browser.open(&authorize(&p, &client_id, &challenge, &[("prompt", "select_account")])).await;
    step = browser.login(&step, &p.email, PASSWORD).await;
    let html = step.html();
    assert!(html.contains("action=\"/select-tenant\""), "{html}");
    assert!(html.contains("value=\"acme\"") && !html.contains("value=\"beta\""), "only acme is offered: {html}");
    let (csrf, req) = (hidden(html, "csrf"), hidden(html, "req"));
    let refused = browser.post("/select-tenant", &[("csrf", &csrf), ("req", &req), ("tenant", "beta")]).await;
    assert_eq!(refused.status(), 400, "beta cannot be chosen by hand");
    let mut step = browser.post("/select-tenant", &[("csrf", &csrf), ("req", &req), ("tenant", "acme")]).await;
    if matches!(&step, Step::Page { html, .. } if html.contains("action=\"/consent\"")) {
        step = browser.consent(&step, true).await;
    }
    let code = step.param("code").unwrap_or_else(|| panic!("{step:?}"));

    // acme turns documents off before the code is redeemed: no token for acme.
    allow(&p, "acme", false).await;
    let (status, body) = redeem(&p, &client_id, &code, &verifier).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    let acme = tenant_id(&p, "acme").await;
    assert_eq!(audit_rows(&p, acme, "token.issued").await.len(), 0);
}

/// A document is used until its expiry without being fetched again (concurrent first uses
/// fetch it once); past the expiry the next authorization fetches it again and takes its new
/// name (`client.updated`); a stale document that cannot be fetched is refused, not served.
#[tokio::test]
async fn a_document_is_kept_until_it_expires() {
    let p = Provider::start_with(DEV).await;
    let platform = setup(&p).await;
    let r = Receiver::start().await;
    let client_id = r.url("/cached.json");
    r.serve(
        "/cached.json",
        Answer {
            headers: vec![("content-type", "application/json".into()), ("cache-control", "max-age=600".into())],
            ..Answer::json(&document(&client_id, "First Name"))
        },
    );
    let (_, challenge) = pkce();
    let url = authorize(&p, &client_id, &challenge, &[]);
    let firsts: Vec<_> = (0..5).map(|_| Browser::new(&p)).collect();
    futures::future::join_all(firsts.iter().map(|b| b.open(&url))).await;
    assert_eq!(r.hits("/cached.json"), 1, "concurrent first uses fetched once");

    let login = Browser::new(&p).open(&url).await;
    assert!(login.html().contains("action=\"/login\""), "{}", login.html());
    assert_eq!(r.hits("/cached.json"), 1, "not fetched again within max-age");
    let mut conn = p.t.owner().await;
    let expires: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT metadata_expires_at FROM clients WHERE client_id = $1")
            .bind(&client_id)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let left = expires - chrono::Utc::now();
    assert!(left > chrono::Duration::seconds(590) && left <= chrono::Duration::seconds(600), "{left:?}");

    // Expired, and the document changed.
    let expire = || async {
        let mut conn = p.t.owner().await;
        sqlx::query("UPDATE clients SET metadata_expires_at = now() - interval '1 second' WHERE client_id = $1")
            .bind(&client_id)
            .execute(&mut conn)
            .await
            .unwrap();
        // The fetch interval is not what this test is about.
        sqlx::query("DELETE FROM rate_limits").execute(&mut conn).await.unwrap();
    };
    expire().await;
    r.serve("/cached.json", Answer::json(&document(&client_id, "Second Name")));
    let login = Browser::new(&p).open(&url).await;
    assert!(login.html().contains("action=\"/login\""), "{}", login.html());
    assert_eq!(r.hits("/cached.json"), 2, "fetched again after expiry");
    let name: String = sqlx::query_scalar("SELECT name FROM clients WHERE client_id = $1")
        .bind(&client_id)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(name, "Second Name");
    let updated = audit_rows(&p, platform, "client.updated").await;
    assert_eq!(updated.len(), 1);
    assert_eq!(updated[0].details["document"]["client_name"], "Second Name");
    assert_eq!(audit_rows(&p, platform, "client.registered").await.len(), 1, "registered once");

    // Expired again, and the document is gone: refused, not served from the stale copy.
    expire().await;
    r.serve("/cached.json", Answer { status: 500, ..Answer::json(&json!({})) });
    let step = Browser::new(&p).open(&url).await;
    assert_refused(&step, REFUSED, "stale and unreachable");
    assert_eq!(r.hits("/cached.json"), 3);
}

/// At `/par` a document's client is fetched too and authenticates as a public client (no
/// secret, PKCE); the browser brings the `request_uri` and the code is redeemed. A refused
/// document is `invalid_client` there.
#[tokio::test]
async fn a_document_client_pushes_its_request() {
    let p = Provider::start_with(DEV).await;
    setup(&p).await;
    let r = Receiver::start().await;
    let client_id = r.serve_document("/par-client.json", "Pushing Client");
    let (verifier, challenge) = pkce();
    let form = [
        ("client_id", client_id.as_str()),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("nonce", "n-par"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let res = p.http().post(p.url("/par")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(r.hits("/par-client.json"), 1);
    let mut url = Url::parse(&p.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &client_id)
        .append_pair("request_uri", body["request_uri"].as_str().unwrap());
    let step = Browser::new(&p).sign_in_through(url.as_str(), &p.email, PASSWORD).await;
    let code = step.param("code").unwrap_or_else(|| panic!("{step:?}"));
    assert_eq!(r.hits("/par-client.json"), 1, "kept, not fetched again");
    let (status, tokens) = redeem(&p, &client_id, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(claims(tokens["id_token"].as_str().unwrap())["aud"], client_id.as_str());

    let other = r.url("/par-other.json");
    r.serve("/par-other.json", Answer::json(&document(&r.url("/elsewhere.json"), "Other")));
    let form = [("client_id", other.as_str()), ("response_type", "code"), ("redirect_uri", REDIRECT)];
    let res = p.http().post(p.url("/par")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client", "{body}");
    assert!(body.get("error_description").is_none_or(|d| !d.as_str().unwrap_or("").contains("client_id")), "{body}");
}

/// One client address makes at most `FETCHES_PER_IP_PER_MINUTE` fetches a minute, whatever
/// URLs it names: past that, nothing is fetched.
#[tokio::test]
async fn fetches_are_limited_per_client_address() {
    let p = Provider::start_with(DEV).await;
    setup(&p).await;
    let r = Receiver::start().await;
    let (_, challenge) = pkce();
    let limit = usize::try_from(FETCHES_PER_IP_PER_MINUTE).unwrap();
    for i in 0..=limit {
        let client_id = r.serve_document(&format!("/many/{i}.json"), "Many");
        let step = Browser::new(&p).open(&authorize(&p, &client_id, &challenge, &[])).await;
        if i < limit {
            assert!(step.html().contains("action=\"/login\""), "{i}: {}", step.html());
        } else {
            assert_refused(&step, REFUSED, "past the limit");
        }
    }
    assert_eq!(r.all_hits(), limit, "the last one was not fetched");
}

/// A client_id of exactly `MAX_URL_BYTES` is fetched, stored and signs in; one byte more is an
/// unknown client, never fetched.
#[tokio::test]
async fn client_ids_are_bounded() {
    let p = Provider::start_with(DEV).await;
    setup(&p).await;
    let r = Receiver::start().await;
    let (verifier, challenge) = pkce();
    let room = MAX_URL_BYTES - r.url("/").len();
    let longest = r.serve_document(&format!("/{}", "a".repeat(room)), "Long");
    assert_eq!(longest.len(), MAX_URL_BYTES);
    let step = Browser::new(&p).sign_in_through(&authorize(&p, &longest, &challenge, &[]), &p.email, PASSWORD).await;
    let code = step.param("code").unwrap_or_else(|| panic!("{step:?}"));
    assert_eq!(redeem(&p, &longest, &code, &verifier).await.0, 200);

    let too_long = r.serve_document(&format!("/{}", "a".repeat(room + 1)), "Too long");
    let step = Browser::new(&p).open(&authorize(&p, &too_long, &challenge, &[])).await;
    assert_refused(&step, UNKNOWN, "too long");
    assert_eq!(r.all_hits(), 1, "only the first was fetched");
}
