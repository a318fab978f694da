//! Floods from one address (issue #9, items 5 and 6): refused sign-ins skip bcrypt, the
//! hasher's queue and each IP's share of it are bounded (503 / 429 with `Retry-After`),
//! throttled attempts write one audit row per lock window, and `/device_authorization` is
//! rate-limited per client and per IP in PostgreSQL. Clients bind their sockets to distinct
//! loopback addresses (127.0.0.2, 127.0.0.3…) so the server sees distinct client IPs.

use std::net::{IpAddr, SocketAddr};

use laventecare_auth::identity::PasswordHasher;
use laventecare_auth::{AppState, clients, identity, janitor, tenancy};
use reqwest::redirect::Policy;
use serde_json::Value;
use uuid::Uuid;

use crate::flow::{PASSWORD, hidden};
use crate::support::TestDb;

const FLOODER: &str = "127.0.0.2";
const OTHER: &str = "127.0.0.3";

/// A provider served on a real TCP listener (peer addresses are real), with the platform
/// tenant (whose chain records sign-ins at the login page), tenant `acme` and member ann.
pub struct Served {
    pub t: TestDb,
    pub state: AppState,
    pub base: String,
    pub platform: Uuid,
}

impl Served {
    pub async fn start(vars: &[(&str, &str)], hasher: Option<PasswordHasher>) -> Self {
        let t = TestDb::new().await;
        let platform = tenancy::create_tenant(&t.db, "platform", "Platform", true).await.unwrap().tenant_id;
        t.tenant("acme").await;
        let seed = PasswordHasher::new();
        identity::create_user(&t.db, &seed, "ann@example.com", PASSWORD).await.unwrap();
        tenancy::add_member(&t.db, "acme", "ann@example.com", laventecare_auth::vocabulary::Role::Editor)
            .await
            .unwrap();
        let (state, base) = serve(&t, vars, hasher).await;
        Self { t, state, base, platform }
    }
}

/// Serves another instance on `t`'s database; returns its state and base URL.
pub async fn serve(t: &TestDb, vars: &[(&str, &str)], hasher: Option<PasswordHasher>) -> (AppState, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut vars = vars.to_vec();
    vars.push(("LCA_ISSUER", &base));
    let mut state = t.state_with(&vars).await;
    if let Some(h) = hasher {
        state.passwords = h;
    }
    let app = laventecare_auth::app(state.clone());
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    (state, base)
}

/// An HTTP client whose sockets are bound to `from` (a loopback address), with cookies.
pub fn client_from(from: &str) -> reqwest::Client {
    let from: IpAddr = from.parse().unwrap();
    reqwest::Client::builder().local_address(from).cookie_store(true).redirect(Policy::none()).build().unwrap()
}

/// One sign-in at the login page from `http`: (status, Retry-After, body).
pub async fn login(http: &reqwest::Client, base: &str, email: &str, password: &str) -> (u16, Option<u64>, String) {
    let page = http.get(format!("{base}/login")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&page, "csrf");
    let res = http
        .post(format!("{base}/login"))
        .form(&[("csrf", csrf.as_str()), ("req", ""), ("email", email), ("password", password)])
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let retry = res.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap());
    (status, retry, res.text().await.unwrap())
}

/// Whether a login answer is the signed-in redirect.
fn signed_in(answer: &(u16, Option<u64>, String)) -> bool {
    answer.0 == 303 || answer.0 == 302
}

/// A client IP locked by failures gets the usual page without any bcrypt, its refusals write
/// one audit row however many there are, and another address still signs in. (On 310a6ac
/// every refused attempt ran bcrypt and wrote a row.)
#[tokio::test]
async fn locked_ip_skips_bcrypt_and_writes_one_row() {
    let s = Served::start(&[("LCA_LOGIN_IP_LOCK_AFTER", "3"), ("LCA_LOGIN_LOCK_SECS", "60")], None).await;
    let flooder = client_from(FLOODER);
    let wrong = "not the password at all";
    let before = s.state.passwords.runs();
    for i in 0..3 {
        assert_eq!(login(&flooder, &s.base, &format!("x{i}@example.com"), wrong).await.0, 200);
    }
    let runs = s.state.passwords.runs();
    assert_eq!(runs, before + 3, "each counted attempt ran bcrypt once");
    let (_, _, wrong_page) = login(&flooder, &s.base, "x9@example.com", wrong).await;
    for i in 0..30 {
        // The right password of a real account too: the lock decides, not the password.
        let email = if i % 2 == 0 { "ann@example.com".to_owned() } else { format!("y{i}@example.com") };
        let pw = if i % 2 == 0 { PASSWORD } else { wrong };
        let answer = login(&flooder, &s.base, &email, pw).await;
        assert_eq!(answer.0, 200, "refused with the page, not signed in");
        assert_eq!(answer.2.replace(&email, "E"), wrong_page.replace("x9@example.com", "E"), "the same page");
    }
    assert_eq!(s.state.passwords.runs(), runs, "no refused attempt reached bcrypt");

    let rows = audit_rows_of(&s, "login.failure").await;
    let reasons: Vec<&str> = rows.iter().map(|r| r.details["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["credentials", "credentials", "credentials", "throttled"], "31 refusals, one row");
    assert!(rows.iter().all(|r| r.ip.as_deref() == Some(FLOODER)));
    let locks = audit_rows_of(&s, "login.ip_lockout").await;
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0].target_id.as_deref(), Some(FLOODER));

    // Another address is not locked, and its sign-in is checked (one bcrypt).
    let other = client_from(OTHER);
    assert!(signed_in(&login(&other, &s.base, "ann@example.com", PASSWORD).await));
    assert_eq!(s.state.passwords.runs(), runs + 1);
}

/// A waiting or locked account key (kept for any email as typed, known or not) is refused
/// without bcrypt, for a real and an unknown address alike; one audit row per lock window.
#[tokio::test]
async fn locked_account_key_skips_bcrypt_known_or_not() {
    let vars = [("LCA_LOGIN_FREE_FAILURES", "1"), ("LCA_LOGIN_LOCK_AFTER", "2"), ("LCA_LOGIN_LOCK_SECS", "60")];
    let s = Served::start(&vars, None).await;
    let http = client_from(FLOODER);
    let wrong = "not the password at all";
    for email in ["ann@example.com", "nobody@example.com"] {
        // Two failures, a second apart (the first sets a one-second wait): locked.
        login(&http, &s.base, email, wrong).await;
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        login(&http, &s.base, email, wrong).await;
        let runs = s.state.passwords.runs();
        for _ in 0..10 {
            let answer = login(&http, &s.base, email, PASSWORD).await;
            assert_eq!(answer.0, 200, "{email}: refused");
        }
        assert_eq!(s.state.passwords.runs(), runs, "{email}: no bcrypt while locked");
    }
    let rows = audit_rows_of(&s, "login.failure").await;
    let throttled = rows.iter().filter(|r| r.details["reason"] == "throttled").count();
    assert_eq!(throttled, 2, "one row per locked key, not 20");
    assert_eq!(rows.len(), 6);
}

/// A full hasher queue answers 503 with `Retry-After` at once (not after queueing to the
/// request timeout), and an IP that has its share of the hasher gets 429 with `Retry-After`
/// (after a short wait for it) while another IP signs in. Neither answer carries internal text, and neither counts as a
/// failed attempt.
#[tokio::test]
async fn full_queue_is_503_and_one_ips_share_is_429() {
    // One hash at a time, none waiting, one per IP.
    let hasher = PasswordHasher::with_limits(1, 0, 1);
    let s = Served::start(&[], Some(hasher.clone())).await;
    let http = client_from(OTHER);

    let held = hasher.ticket(None).await.unwrap();
    let started = std::time::Instant::now();
    let (status, retry, body) = login(&http, &s.base, "ann@example.com", PASSWORD).await;
    assert_eq!(status, 503, "{body}");
    assert!(retry.is_some_and(|r| (1..=30).contains(&r)), "{retry:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "answered at once");
    assert!(body.contains("<html") && body.contains("temporarily unavailable"), "{body}");
    assert!(!body.to_lowercase().contains("hasher") && !body.contains("queue"), "our words only: {body}");
    drop(held);

    let hasher = PasswordHasher::with_limits(2, 8, 1);
    let s = Served::start(&[], Some(hasher.clone())).await;
    let held = hasher.ticket(Some(FLOODER.parse().unwrap())).await.unwrap();
    let (status, retry, body) = login(&client_from(FLOODER), &s.base, "ann@example.com", PASSWORD).await;
    assert_eq!((status, retry), (429, Some(1)), "{body}");
    assert!(body.contains("<html"), "a page for the browser: {body}");
    assert!(signed_in(&login(&client_from(OTHER), &s.base, "ann@example.com", PASSWORD).await));
    drop(held);
    assert!(signed_in(&login(&client_from(FLOODER), &s.base, "ann@example.com", PASSWORD).await));
    assert!(audit_rows_of(&s, "login.failure").await.is_empty(), "a 429 is not a failed attempt");
}

/// The rows of one action in the platform tenant's chain.
async fn audit_rows_of(s: &Served, action: &str) -> Vec<crate::mfa::Row> {
    crate::mfa::audit_rows_in(&s.t, s.platform, action).await
}

/// A public device client of `acme`.
async fn device_client(t: &TestDb, name: &str) -> String {
    clients::create_client(
        &t.db,
        clients::ClientRequest {
            tenant: "acme".into(),
            name: name.into(),
            grants: vec!["device_code".into()],
            public: true,
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .client_id
}

/// `POST /device_authorization` from `http`: (status, Retry-After, body).
async fn device_authorization(http: &reqwest::Client, base: &str, client_id: &str) -> (u16, Option<u64>, Value) {
    let res = http
        .post(format!("{base}/device_authorization"))
        .form(&[("client_id", client_id), ("scope", "openid")])
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let retry = res.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap());
    (status, retry, res.json().await.unwrap())
}

async fn count(t: &TestDb, sql: &str) -> i64 {
    let mut conn = t.owner().await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&mut conn).await.unwrap()
}

/// The N+1-th device authorization of a client within the window gets 429 with
/// `Retry-After` and an RFC 6749-shaped body, and stores nothing; another client is not
/// affected; the count is shared by two server instances on one database.
#[tokio::test]
async fn device_authorization_is_limited_per_client() {
    let vars = [("LCA_DEVICE_AUTHORIZATIONS_PER_CLIENT", "4"), ("LCA_DEVICE_AUTHORIZATIONS_PER_IP", "100")];
    let s = Served::start(&vars, None).await;
    let (_, second) = serve(&s.t, &vars, None).await;
    let thermostat = device_client(&s.t, "Thermostat").await;
    let doorbell = device_client(&s.t, "Doorbell").await;
    let http = client_from(FLOODER);
    for i in 0..4 {
        // Alternating instances: one count.
        let base = if i % 2 == 0 { &s.base } else { &second };
        let (status, _, body) = device_authorization(&http, base, &thermostat).await;
        assert_eq!(status, 200, "{body}");
    }
    let grants = count(&s.t, "SELECT count(*) FROM device_grants").await;
    let audit = count(&s.t, "SELECT count(*) FROM audit_events").await;
    for base in [&s.base, &second] {
        let (status, retry, body) = device_authorization(&http, base, &thermostat).await;
        assert_eq!(status, 429, "{body}");
        assert!(retry.is_some_and(|r| (1..=60).contains(&r)), "{retry:?}");
        assert_eq!(body["error"], "slow_down");
        assert!(body["error_description"].is_string() && body["request_id"].is_string(), "{body}");
        assert!(body.get("device_code").is_none());
    }
    assert_eq!(count(&s.t, "SELECT count(*) FROM device_grants").await, grants, "nothing stored");
    assert_eq!(count(&s.t, "SELECT count(*) FROM audit_events").await, audit, "nothing audited");
    // Another client is not affected.
    assert_eq!(device_authorization(&http, &s.base, &doorbell).await.0, 200);
}

/// One IP's device authorizations are limited (for any clients, known or not), and another
/// IP is unaffected.
#[tokio::test]
async fn device_authorization_is_limited_per_ip() {
    let vars = [("LCA_DEVICE_AUTHORIZATIONS_PER_CLIENT", "100"), ("LCA_DEVICE_AUTHORIZATIONS_PER_IP", "3")];
    let s = Served::start(&vars, None).await;
    let thermostat = device_client(&s.t, "Thermostat").await;
    let flooder = client_from(FLOODER);
    assert_eq!(device_authorization(&flooder, &s.base, &thermostat).await.0, 200);
    // Unknown clients count against the IP too: that is the flood the limit is for.
    assert_eq!(device_authorization(&flooder, &s.base, "no-such-client").await.0, 401);
    assert_eq!(device_authorization(&flooder, &s.base, &thermostat).await.0, 200);
    let (status, retry, body) = device_authorization(&flooder, &s.base, &thermostat).await;
    assert_eq!((status, body["error"].as_str()), (429, Some("slow_down")), "{body}");
    assert!(retry.is_some());
    assert_eq!(device_authorization(&flooder, &s.base, "no-such-client").await.0, 429);
    // Another address, the same client: fine.
    assert_eq!(device_authorization(&client_from(OTHER), &s.base, &thermostat).await.0, 200);
}

/// The janitor deletes rate-limit windows that have ended and keeps current ones.
#[tokio::test]
async fn janitor_sweeps_ended_rate_limit_windows() {
    let t = TestDb::new().await;
    let mut conn = t.owner().await;
    sqlx::raw_sql(
        "INSERT INTO rate_limits (key_hash, hits, window_end) \
         SELECT sha256(('ended' || g)::bytea), 3, now() - interval '1 second' FROM generate_series(1, 2500) g; \
         INSERT INTO rate_limits (key_hash, hits, window_end) \
         SELECT sha256(('live' || g)::bytea), 3, now() + interval '1 minute' FROM generate_series(1, 7) g",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let report = janitor::run_once(&t.db, 1000).await.unwrap();
    assert_eq!(report.deleted_by("rate_limits"), 2500, "{report:?}");
    assert_eq!(count(&t, "SELECT count(*) FROM rate_limits").await, 7);
    assert_eq!(count(&t, "SELECT count(*) FROM rate_limits WHERE window_end > now()").await, 7);
}

/// Device page: a flood of wrong user codes from a locked user writes a bounded number of
/// rows (the counted guesses and one for the lock window), not one per attempt.
#[tokio::test]
async fn device_page_flood_writes_bounded_rows() {
    let vars = [("LCA_LOGIN_FREE_FAILURES", "1"), ("LCA_LOGIN_LOCK_AFTER", "2"), ("LCA_LOGIN_LOCK_SECS", "60")];
    let s = Served::start(&vars, None).await;
    let http = client_from(FLOODER);
    // Sign in (this returns to the device page afterwards).
    http.get(format!("{}/device", s.base)).send().await.unwrap();
    assert!(signed_in(&login(&http, &s.base, "ann@example.com", PASSWORD).await));
    let guess = |code: &'static str| {
        let (http, base) = (&http, &s.base);
        async move {
            let page = http.get(format!("{base}/device")).send().await.unwrap().text().await.unwrap();
            let csrf = hidden(&page, "csrf");
            let res = http.post(format!("{base}/device")).form(&[("csrf", csrf.as_str()), ("user_code", code)]);
            let res = res.send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    guess("BCDF-GHJK").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    guess("BCDF-GHJL").await;
    for _ in 0..25 {
        let (status, html) = guess("BCDF-GHJM").await;
        assert_eq!(status, 200);
        assert!(html.contains("That code did not work"));
    }
    let acme = tenancy::find_tenant(&s.t.db, "acme").await.unwrap().id;
    let rows = crate::mfa::audit_rows_in(&s.t, acme, "device.user_code_failure").await;
    let reasons: Vec<&str> = rows.iter().map(|r| r.details["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["unknown", "unknown", "throttled"], "25 refusals, one row");
}
