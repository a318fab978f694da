//! Several instances on one database (issue #14, item 2; ARCHITECTURE.md, "Several instances"): two
//! `serve` processes of the real binary share one PostgreSQL database and one issuer, as they
//! would behind a load balancer. Nothing that matters lives in one process: a browser's every
//! hop may land on the other instance, a code made on one is redeemed on the other, a refresh
//! token is rotated on either and its reuse caught on the other; a key rotation is published by
//! both within `LCA_KEY_RELOAD_SECS`; one janitor runs at a time; sign-in throttles and device
//! rate limits count across both.

use std::process::Command;
use std::time::{Duration, Instant};

use laventecare_auth::identity::{self, PasswordHasher};
use laventecare_auth::{clients, tenancy, vocabulary::Role};
use reqwest::redirect::Policy;
use serde_json::Value;
use url::Url;

use crate::fault::Proc;
use crate::flow::{PASSWORD, REDIRECT, claims, hidden, pkce};
use crate::support::{TestDb, binary, cli, free_port, json_out};

/// Two instances of one provider, and the web client of `acme` that ann signs in to.
struct Pair {
    t: TestDb,
    /// The instances; the issuer is the first one's address (the name they share).
    nodes: [Proc; 2],
    issuer: String,
    client_id: String,
    client_secret: String,
    _logs: tempfile::TempDir,
}

impl Pair {
    async fn start(vars: &[(&str, &str)]) -> Self {
        let t = TestDb::new().await;
        t.tenant("acme").await;
        identity::create_user(&t.db, &PasswordHasher::new(), "ann@example.com", PASSWORD).await.unwrap();
        tenancy::add_member(&t.db, "acme", "ann@example.com", Role::Editor).await.unwrap();
        let web = clients::create_client(
            &t.db,
            clients::ClientRequest {
                tenant: "acme".into(),
                name: "Acme Web".into(),
                grants: vec!["authorization_code".into(), "refresh_token".into()],
                redirect_uris: vec![REDIRECT.into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let port = free_port();
        let issuer = format!("http://127.0.0.1:{port}");
        let logs = tempfile::tempdir().unwrap();
        let command = || {
            let mut cmd: Command = binary();
            t.database_env(&mut cmd)
                .env("LCA_ISSUER", &issuer)
                .env("LCA_ADMIN_PASSWORD", "an admin password of some length")
                .envs(vars.iter().copied());
            cmd
        };
        // The first bootstraps the empty database; the second starts on what it made.
        let a = Proc::start_on(command(), &logs.path().join("a.log"), port).await;
        let b = Proc::start(command(), &logs.path().join("b.log")).await;
        Self {
            t,
            nodes: [a, b],
            issuer,
            client_id: web.client_id,
            client_secret: web.client_secret.unwrap().expose().to_owned(),
            _logs: logs,
        }
    }

    fn base(&self, node: usize) -> &str {
        &self.nodes[node].base
    }

    /// A token request of the web client at `node`.
    async fn token(&self, node: usize, form: &[(&str, &str)]) -> (u16, Value) {
        let res = reqwest::Client::new()
            .post(format!("{}/token", self.base(node)))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(form)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }

    async fn introspect(&self, node: usize, token: &str) -> Value {
        let res = reqwest::Client::new()
            .post(format!("{}/introspect", self.base(node)))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        res.json().await.unwrap()
    }

    async fn jwks_kids(&self, node: usize) -> Vec<String> {
        let jwks: Value = reqwest::get(format!("{}/jwks", self.base(node))).await.unwrap().json().await.unwrap();
        jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
    }
}

/// A browser behind a load balancer that sends each request to the other instance than the
/// one before: a cookie set by one is sent to both (cookies do not carry the port), and every
/// redirect to the issuer is followed on the next instance.
struct Roaming<'a> {
    pair: &'a Pair,
    http: reqwest::Client,
    next: usize,
    /// The instance that answered each request, in order.
    served_by: Vec<usize>,
}

impl<'a> Roaming<'a> {
    fn new(pair: &'a Pair) -> Self {
        let http = reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap();
        Self { pair, http, next: 0, served_by: Vec::new() }
    }

    /// `url` (on the issuer) sent to the next instance.
    fn route(&mut self, url: &Url) -> String {
        let node = self.next;
        self.next = 1 - self.next;
        self.served_by.push(node);
        let mut path = url.path().to_owned();
        if let Some(q) = url.query() {
            path = format!("{path}?{q}");
        }
        format!("{}{path}", self.pair.base(node))
    }

    /// Follows redirects across instances until a page, or a redirect that leaves the issuer.
    async fn follow(&mut self, mut res: reqwest::Response) -> Result<(String, String), Url> {
        loop {
            if !res.status().is_redirection() {
                let url = res.url().to_string();
                return Ok((url, res.text().await.unwrap()));
            }
            let location = res.headers()["location"].to_str().unwrap().to_owned();
            let next = Url::parse(&self.pair.issuer).unwrap().join(&location).unwrap();
            if !next.as_str().starts_with(&self.pair.issuer) {
                return Err(next);
            }
            let target = self.route(&next);
            res = self.http.get(target).send().await.unwrap();
        }
    }

    async fn open(&mut self, url: &str) -> Result<(String, String), Url> {
        let target = self.route(&Url::parse(url).unwrap());
        let res = self.http.get(target).send().await.unwrap();
        self.follow(res).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Result<(String, String), Url> {
        let target = self.route(&Url::parse(&format!("{}{path}", self.pair.issuer)).unwrap());
        let res = self.http.post(target).form(form).send().await.unwrap();
        self.follow(res).await
    }
}

/// Signs ann in through pages served by both instances and returns the code and the verifier.
async fn code_through_both(pair: &Pair) -> (String, String, Vec<usize>) {
    let (verifier, challenge) = pkce();
    let mut url = Url::parse(&format!("{}/authorize", pair.issuer)).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", pair.client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email offline_access"),
        ("state", "st-1"),
        ("nonce", "n-1"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let mut browser = Roaming::new(pair);
    let (_, login) = browser.open(url.as_str()).await.unwrap();
    assert!(login.contains("action=\"/login\""), "{login}");
    let form = [
        ("csrf", hidden(&login, "csrf")),
        ("req", hidden(&login, "req")),
        ("email", "ann@example.com".to_owned()),
        ("password", PASSWORD.to_owned()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut step = browser.post("/login", &form).await;
    if let Ok((_, consent)) = &step {
        assert!(consent.contains("action=\"/consent\""), "{consent}");
        let (csrf, req) = (hidden(consent, "csrf"), hidden(consent, "req"));
        step = browser.post("/consent", &[("csrf", &csrf), ("req", &req), ("decision", "allow")]).await;
    }
    let callback = step.expect_err("back at the relying party");
    assert!(callback.as_str().starts_with(REDIRECT), "{callback}");
    let code = callback.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    (code, verifier, browser.served_by)
}

#[tokio::test]
async fn a_sign_in_on_one_is_redeemed_on_the_other_and_refreshed_on_either() {
    let pair = Pair::start(&[]).await;
    let (code, verifier, served_by) = code_through_both(&pair).await;
    assert!(served_by.contains(&0) && served_by.contains(&1), "{served_by:?}");

    // Redeemed on the second (the same code on the first is a replay: at the end, since a
    // replay revokes what the code issued).
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, tokens) = pair.token(1, &redeem).await;
    assert_eq!(status, 200, "{tokens}");
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!((id["iss"].as_str(), id["aud"].as_str()), (Some(pair.issuer.as_str()), Some(pair.client_id.as_str())));
    assert_eq!(id["nonce"], "n-1");

    // A token one instance issued is good at the other.
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(pair.introspect(0, access).await["active"], true);

    // Rotated on the first, again on the second; the first token presented again is reuse,
    // caught by the instance that did not rotate it, and ends the family everywhere.
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (status, second) = pair.token(0, &[("grant_type", "refresh_token"), ("refresh_token", first.as_str())]).await;
    assert_eq!(status, 200, "{second}");
    let second_refresh = second["refresh_token"].as_str().unwrap().to_owned();
    let (status, third) =
        pair.token(1, &[("grant_type", "refresh_token"), ("refresh_token", second_refresh.as_str())]).await;
    assert_eq!(status, 200, "{third}");
    let userinfo = reqwest::Client::new()
        .get(format!("{}/userinfo", pair.base(0)))
        .bearer_auth(third["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 200);
    let (status, reuse) = pair.token(1, &[("grant_type", "refresh_token"), ("refresh_token", first.as_str())]).await;
    assert_eq!((status, reuse["error"].as_str()), (400, Some("invalid_grant")));
    let latest = third["refresh_token"].as_str().unwrap();
    let (status, ended) = pair.token(0, &[("grant_type", "refresh_token"), ("refresh_token", latest)]).await;
    assert_eq!((status, ended["error"].as_str()), (400, Some("invalid_grant")), "the family ended on both");
    assert_eq!(pair.introspect(0, third["access_token"].as_str().unwrap()).await["active"], false);
    let (status, replay) = pair.token(0, &redeem).await;
    assert_eq!((status, replay["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn a_rotated_key_is_published_and_used_by_both_within_the_reload_interval() {
    let pair = Pair::start(&[("LCA_KEY_RELOAD_SECS", "1")]).await;
    let before = pair.jwks_kids(0).await;
    assert_eq!(before, pair.jwks_kids(1).await);
    let rotated = json_out(&cli(&pair.t, &["keys", "rotate", "--json"], ""));
    let new_kids: Vec<String> =
        rotated["created"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect();
    assert!(!new_kids.is_empty());
    let started = Instant::now();
    for node in 0..2 {
        loop {
            let kids = pair.jwks_kids(node).await;
            if new_kids.iter().all(|k| kids.contains(k)) {
                assert!(before.iter().all(|k| kids.contains(k)), "retired keys stay published: {kids:?}");
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "instance {node} did not publish {new_kids:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Both sign with the new key now.
    for node in 0..2 {
        let (code, verifier, _) = code_through_both(&pair).await;
        let redeem = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier.as_str()),
        ];
        let (status, tokens) = pair.token(node, &redeem).await;
        assert_eq!(status, 200, "{tokens}");
        let header = crate::flow::header(tokens["access_token"].as_str().unwrap());
        assert!(new_kids.iter().any(|k| header["kid"] == k.as_str()), "instance {node} signs with {header}");
    }
}

#[tokio::test]
async fn one_janitor_runs_at_a_time_across_instances() {
    // Small batches, so one run over the seeded rows takes a while and the other instance's
    // ticks find it running.
    let vars = [("LCA_JANITOR_INTERVAL", "1"), ("LCA_JANITOR_BATCH_SIZE", "100")];
    let pair = Pair::start(&vars).await;
    let mut db = pair.t.owner().await;
    let seeded = 100_000;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO browser_sessions (id_hash, data, expires_at) \
         SELECT sha256(('expired' || g)::bytea), '{{}}', now() - interval '1 hour' FROM generate_series(1, {seeded}) g; \
         ANALYZE browser_sessions"
    )))
    .execute(&mut db)
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let left = || async {
        let mut db = pair.t.owner().await;
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM browser_sessions WHERE expires_at < now()")
            .fetch_one(&mut db)
            .await
            .unwrap()
    };
    while left().await > 0 {
        assert!(Instant::now() < deadline, "the janitors did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let a run that ended meanwhile write its line.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let runs: Vec<Vec<Value>> = pair.nodes.iter().map(|n| janitor_lines(&n.log())).collect();
    let deleted: i64 = runs.iter().flatten().filter_map(|l| l["deleted"].as_i64()).sum();
    assert_eq!(deleted, seeded, "every row removed once");
    let skipped = runs
        .iter()
        .flatten()
        .filter(|l| l["message"].as_str().is_some_and(|m| m.starts_with("another janitor")))
        .count();
    assert!(skipped > 0, "an instance found the other one's run going on and stood aside");
    // Each instance's working runs, as (start, end) from its log: none overlaps another's.
    let mut spans: Vec<(f64, f64)> = runs.iter().flatten().filter_map(span).collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    for w in spans.windows(2) {
        // A run's end is logged just after its lock is released, and its start taken just
        // before its lock: a busy machine may log late by a fraction of a second.
        assert!(w[0].1 <= w[1].0 + 0.25, "two janitor runs overlapped: {w:?}");
    }
}

/// The janitor's lines of a JSON log: run ends (`deleted`) and runs that stood aside.
fn janitor_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| {
            l["message"] == "janitor run done"
                || l["message"].as_str().is_some_and(|m| m.starts_with("another janitor"))
        })
        .collect()
}

/// (start, end) in seconds of a run that did work, from its end line's time and `elapsed_ms`.
fn span(line: &Value) -> Option<(f64, f64)> {
    if line["deleted"].as_i64()? == 0 {
        return None;
    }
    let end = chrono::DateTime::parse_from_rfc3339(line["timestamp"].as_str()?).ok()?;
    let end = end.timestamp_micros() as f64 / 1e6;
    Some((end - line["elapsed_ms"].as_f64()? / 1000.0, end))
}

#[tokio::test]
async fn throttles_and_rate_limits_count_across_instances() {
    let vars = [
        ("LCA_LOGIN_FREE_FAILURES", "1"),
        ("LCA_LOGIN_LOCK_AFTER", "2"),
        ("LCA_LOGIN_LOCK_SECS", "60"),
        ("LCA_DEVICE_AUTHORIZATIONS_PER_CLIENT", "4"),
    ];
    let pair = Pair::start(&vars).await;
    let wrong = "not the password at all";
    let login = |node: usize, password: &'static str| {
        let base = pair.base(node).to_owned();
        async move {
            crate::floods::login(&crate::floods::client_from("127.0.0.1"), &base, "ann@example.com", password).await.0
        }
    };
    // One failure on each instance (a second apart: the first sets a one-second wait) locks
    // the account on both.
    assert_eq!(login(0, wrong).await, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(login(1, wrong).await, 200);
    assert_eq!(login(0, PASSWORD).await, 200, "locked on the first");
    assert_eq!(login(1, PASSWORD).await, 200, "locked on the second");

    let device = clients::create_client(
        &pair.t.db,
        clients::ClientRequest {
            tenant: "acme".into(),
            name: "Thermostat".into(),
            grants: vec!["device_code".into()],
            public: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for node in [0, 1, 0, 1, 0, 1] {
        let res = http
            .post(format!("{}/device_authorization", pair.base(node)))
            .form(&[("client_id", device.client_id.as_str()), ("scope", "openid")])
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429], "four a minute for the client, counted on both");
}
