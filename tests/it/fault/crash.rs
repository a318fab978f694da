//! The server is SIGKILLed in the middle of token exchanges. Afterwards, for every code: the
//! client got tokens, or the database records exactly one redemption (one family, one access
//! token, one refresh token, one audit event), or it is still redeemable; a code whose tokens
//! were issued answers `invalid_grant`, never both (ARCHITECTURE.md, "Single-use things"). The
//! same for refresh-token rotation: a token rotated before the kill never works again, one that
//! was not still works, once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use laventecare_auth::secrets::sha256;
use nix::sys::signal::Signal;
use sqlx::PgConnection;
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

use super::{Proc, assert_no_panic};
use crate::flow::{Browser, PASSWORD, Provider, REDIRECT, authorize_url, claims, pkce};
use crate::support::binary;

/// Codes (and refresh tokens) per round, by what happens to their exchange: answered before
/// the kill; done by the server but its answer lost on the way (a lossy network); in flight,
/// held by a row lock, when the kill comes. 60 in all: the brief asks for at least 50.
const ANSWERED: usize = 25;
const LOST: usize = 25;
const IN_FLIGHT: usize = 10;
const N: usize = ANSWERED + LOST + IN_FLIGHT;

/// What a client saw: `None` when the connection died without an answer.
type Seen = Option<(u16, serde_json::Value)>;

async fn post_token(http: &reqwest::Client, base: &str, p: &Provider, form: &[(&str, &str)]) -> Seen {
    let res = http
        .post(format!("{base}/token"))
        .basic_auth(&p.client_id, Some(&p.client_secret))
        .form(form)
        .send()
        .await
        .ok()?;
    let status = res.status().as_u16();
    Some((status, res.json().await.ok()?))
}

fn code_form<'a>(code: &'a str, verifier: &'a str) -> [(&'static str, &'a str); 4] {
    [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT), ("code_verifier", verifier)]
}

/// A network in front of `upstream` that delivers every request and loses every answer: the
/// server does the work, the client never hears of it. Returns its base URL.
async fn lossy_network(upstream: &str) -> String {
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(&upstream).await else { return };
                let (mut from_client, _to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                let mut lost = tokio::io::sink();
                // Until the server goes away; then both connections close, unanswered.
                tokio::select! {
                    _ = tokio::io::copy(&mut from_client, &mut to_server) => {}
                    _ = tokio::io::copy(&mut from_server, &mut lost) => {}
                }
            });
        }
    });
    base
}

/// Fires one exchange per form at `server` at once — the first `ANSWERED` directly, the next
/// `LOST` through a lossy network, the last `IN_FLIGHT` directly but held by `lock` (an open
/// transaction holding their rows) — waits until the answered ones have their answers, the
/// lost ones are recorded too (`done` counts the rows used of `table`) and the held ones wait
/// on the lock, then SIGKILLs the server and releases the lock. Returns what each client saw,
/// in order.
async fn fire_and_kill(
    p: &Arc<Provider>,
    server: Proc,
    forms: Vec<Vec<(&'static str, String)>>,
    rows: Rows,
) -> Vec<Seen> {
    assert_eq!(forms.len(), N);
    let mut lock = p.t.owner().await;
    sqlx::query("BEGIN").execute(&mut lock).await.unwrap();
    let held = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT 1 FROM {} WHERE {} = ANY($1) FOR UPDATE",
        rows.table, rows.key
    )))
    .bind(&rows.hashes[ANSWERED + LOST..])
    .execute(&mut lock)
    .await
    .unwrap();
    assert_eq!(held.rows_affected(), IN_FLIGHT as u64);
    let done_sql =
        format!("SELECT count(*) FROM {} WHERE {} = ANY($1) AND {} IS NOT NULL", rows.table, rows.key, rows.used);
    let lossy = lossy_network(&server.base).await;
    let answered = Arc::new(AtomicUsize::new(0));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let tasks: Vec<_> = forms
        .into_iter()
        .enumerate()
        .map(|(i, form)| {
            let (p, http, answered) = (p.clone(), http.clone(), answered.clone());
            let base = if (ANSWERED..ANSWERED + LOST).contains(&i) { lossy.clone() } else { server.base.clone() };
            tokio::spawn(async move {
                let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let seen = post_token(&http, &base, &p, &form).await;
                if seen.is_some() {
                    answered.fetch_add(1, Ordering::SeqCst);
                }
                seen
            })
        })
        .collect();
    let mut watcher = p.t.owner().await;
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        let done: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(done_sql.clone()))
            .bind(&rows.hashes)
            .fetch_one(&mut watcher)
            .await
            .unwrap();
        let (a, d) = (answered.load(Ordering::SeqCst), done as usize);
        if a == ANSWERED && d == ANSWERED + LOST && waiting == IN_FLIGHT as i64 {
            break;
        }
        assert!(Instant::now() < deadline, "exchanges did not get there: {a} answered, {d} done, {waiting} waiting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = server.log();
    server.stop(Signal::SIGKILL);
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    assert_no_panic(&log);
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    for (i, s) in seen.iter().enumerate() {
        match s {
            Some((status, body)) => assert!(i < ANSWERED && *status == 200, "exchange {i} answered {status}: {body}"),
            None => assert!(i >= ANSWERED, "exchange {i} got no answer"),
        }
    }
    seen
}

/// The rows the exchanges of a round use up: codes or refresh tokens, by hash, in the order of
/// the forms.
struct Rows {
    table: &'static str,
    key: &'static str,
    used: &'static str,
    hashes: Vec<Vec<u8>>,
}

/// Rows one redemption writes for family `f`: (access tokens, refresh tokens, audit events).
async fn family_rows(owner: &mut PgConnection, f: Uuid) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM access_tokens WHERE family_id = $1), \
                (SELECT count(*) FROM refresh_tokens WHERE family_id = $1), \
                (SELECT count(*) FROM audit_events WHERE action = 'token.issued' AND details->>'family_id' = $1::text)",
    )
    .bind(f)
    .fetch_one(owner)
    .await
    .unwrap()
}

async fn use_refresh(http: &reqwest::Client, base: &str, p: &Provider, token: &str) -> (u16, serde_json::Value) {
    post_token(http, base, p, &[("grant_type", "refresh_token"), ("refresh_token", token)]).await.unwrap()
}

fn jti(tokens: &serde_json::Value) -> Uuid {
    claims(tokens["access_token"].as_str().unwrap())["jti"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_server_never_lets_a_code_or_refresh_token_work_twice() {
    let p = Arc::new(Provider::start_with(&[("LCA_CODE_TTL_SECS", "600")]).await);
    // 2N codes through the pages: one sign-in, then the session answers each request.
    let browser = Browser::new(&p);
    let mut codes = Vec::new();
    for i in 0..2 * N {
        let (verifier, challenge) = pkce();
        let url = authorize_url(&p, &challenge, &[]);
        let step =
            if i == 0 { browser.sign_in_through(&url, &p.email, PASSWORD).await } else { browser.open(&url).await };
        codes.push((step.param("code").unwrap(), verifier));
    }
    let refresh_codes = codes.split_off(N);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let serve = || {
        let mut cmd = binary();
        // Room for the held exchanges and the rest beside them.
        p.t.database_env(&mut cmd).env("LCA_DB_MAX_CONNECTIONS", "40");
        cmd
    };
    let hashes = |secrets: Vec<&str>| secrets.iter().map(|s| sha256(s.as_bytes()).to_vec()).collect::<Vec<_>>();
    let http = reqwest::Client::new();
    let mut owner = p.t.owner().await;

    // Round 1: N code exchanges, the server killed in their midst.
    let forms = codes.iter().map(|(c, v)| code_form(c, v).map(|(k, v)| (k, v.to_owned())).to_vec()).collect();
    let rows = Rows {
        table: "authorization_codes",
        key: "code_hash",
        used: "consumed_at",
        hashes: hashes(codes.iter().map(|(c, _)| c.as_str()).collect()),
    };
    let seen = fire_and_kill(&p, Proc::start(serve(), &log).await, forms, rows).await;
    let server = Proc::start(serve(), &log).await;
    let (mut answered, mut recorded, mut redeemable) = (0, 0, 0);
    for ((code, verifier), seen) in codes.iter().zip(&seen) {
        let (consumed, family): (bool, Option<Uuid>) =
            sqlx::query_as("SELECT consumed_at IS NOT NULL, family_id FROM authorization_codes WHERE code_hash = $1")
                .bind(&sha256(code.as_bytes())[..])
                .fetch_one(&mut owner)
                .await
                .unwrap();
        assert_eq!(consumed, family.is_some(), "a consumed code names its family, an unused one none");
        if let Some(f) = family {
            assert_eq!(family_rows(&mut owner, f).await, (1, 1, 1), "one redemption's rows, exactly once");
        }
        match (seen, family) {
            (Some((_, tokens)), Some(f)) => {
                answered += 1;
                let stored: Uuid = sqlx::query_scalar("SELECT jti FROM access_tokens WHERE family_id = $1")
                    .bind(f)
                    .fetch_one(&mut owner)
                    .await
                    .unwrap();
                assert_eq!(stored, jti(tokens), "the tokens the client got are the ones recorded");
            }
            (Some(_), None) => panic!("tokens were issued for a code the database does not record as redeemed"),
            (None, Some(_)) => recorded += 1,
            (None, None) => {
                redeemable += 1;
                let again = post_token(&http, &server.base, &p, &code_form(code, verifier)).await.unwrap();
                assert_eq!(again.0, 200, "a code never redeemed still works: {:?}", again.1);
                let f: Uuid = sqlx::query_scalar("SELECT family_id FROM authorization_codes WHERE code_hash = $1")
                    .bind(&sha256(code.as_bytes())[..])
                    .fetch_one(&mut owner)
                    .await
                    .unwrap();
                assert_eq!(family_rows(&mut owner, f).await, (1, 1, 1));
            }
        }
        // Redeemed by then, one way or the other: never a second time.
        let replay = post_token(&http, &server.base, &p, &code_form(code, verifier)).await.unwrap();
        assert_eq!((replay.0, replay.1["error"].as_str()), (400, Some("invalid_grant")), "{:?}", replay.1);
    }
    eprintln!(
        "fault figures: codes: {answered} answered, {recorded} redeemed but unanswered, {redeemable} still redeemable"
    );
    assert_eq!((answered, recorded, redeemable), (ANSWERED, LOST, IN_FLIGHT));

    // Round 2: N refresh tokens (each of its own family), rotated at once, the server killed
    // in their midst.
    let mut refresh = Vec::new();
    for (code, verifier) in &refresh_codes {
        let (status, tokens) = post_token(&http, &server.base, &p, &code_form(code, verifier)).await.unwrap();
        assert_eq!(status, 200, "{tokens}");
        refresh.push(tokens["refresh_token"].as_str().unwrap().to_owned());
    }
    let forms = refresh
        .iter()
        .map(|r| vec![("grant_type", "refresh_token".to_owned()), ("refresh_token", r.clone())])
        .collect();
    let rows = Rows {
        table: "refresh_tokens",
        key: "token_hash",
        used: "used_at",
        hashes: hashes(refresh.iter().map(String::as_str).collect()),
    };
    let seen = fire_and_kill(&p, server, forms, rows).await;
    let server = Proc::start(serve(), &log).await;
    let (mut rotated_answered, mut rotated_lost, mut unused) = (0, 0, 0);
    for (token, seen) in refresh.iter().zip(&seen) {
        let (used, family): (bool, Uuid) =
            sqlx::query_as("SELECT used_at IS NOT NULL, family_id FROM refresh_tokens WHERE token_hash = $1")
                .bind(&sha256(token.as_bytes())[..])
                .fetch_one(&mut owner)
                .await
                .unwrap();
        let rows = family_rows(&mut owner, family).await;
        if used {
            assert_eq!(rows, (2, 2, 2), "a rotation wrote its successor and its event once");
        } else {
            assert_eq!(rows, (1, 1, 1), "an unused token left its family as it was");
        }
        match seen {
            Some((_, tokens)) => {
                rotated_answered += 1;
                assert!(used, "a rotation the client saw is recorded");
                let next = use_refresh(&http, &server.base, &p, tokens["refresh_token"].as_str().unwrap()).await;
                assert_eq!(next.0, 200, "the successor the client got works: {:?}", next.1);
            }
            None if used => rotated_lost += 1,
            None => {
                unused += 1;
                let now = use_refresh(&http, &server.base, &p, token).await;
                assert_eq!(now.0, 200, "a token never rotated still works: {:?}", now.1);
            }
        }
        // Rotated by then, one way or the other: never again.
        let again = use_refresh(&http, &server.base, &p, token).await;
        assert_eq!((again.0, again.1["error"].as_str()), (400, Some("invalid_grant")), "{:?}", again.1);
    }
    eprintln!(
        "fault figures: refresh tokens: {rotated_answered} rotated and answered, {rotated_lost} rotated but unanswered, {unused} unused"
    );
    assert_eq!((rotated_answered, rotated_lost, unused), (ANSWERED, LOST, IN_FLIGHT));
    assert_no_panic(&server.log());
    assert!(server.stop(Signal::SIGTERM).success());
}

/// Families rotated at once in the storm, and how long it runs before the kill.
const STORM_FAMILIES: usize = 16;
const STORM_BEFORE_KILL: Duration = Duration::from_millis(1500);

/// Issue #13, must-show 3: a storm of refresh rotations (every family rotated again as soon as
/// its answer arrives), the server SIGKILLed in its midst and restarted. Every token whose
/// rotation was answered is refused afterwards; the last token of each chain (in flight at the
/// kill, or not yet sent) works once if the database does not record it used, and is refused
/// if it does. Only the server dies here; PostgreSQL stopping under load is `fault/database.rs`,
/// and rotation is a durable commit so that neither can bring a used token back
/// (ARCHITECTURE.md, "Durability").
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_storm_killed_midway_leaves_no_used_refresh_token_working() {
    let p = Arc::new(Provider::start_with(&[("LCA_CODE_TTL_SECS", "600")]).await);
    let browser = Browser::new(&p);
    let http = reqwest::Client::new();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let serve = || {
        let mut cmd = binary();
        p.t.database_env(&mut cmd);
        cmd
    };
    let server = Proc::start(serve(), &log).await;
    let mut chains = Vec::new();
    for i in 0..STORM_FAMILIES {
        let (verifier, challenge) = pkce();
        let url = authorize_url(&p, &challenge, &[]);
        let step =
            if i == 0 { browser.sign_in_through(&url, &p.email, PASSWORD).await } else { browser.open(&url).await };
        let code = step.param("code").unwrap();
        let (status, tokens) = post_token(&http, &server.base, &p, &code_form(&code, &verifier)).await.unwrap();
        assert_eq!(status, 200, "{tokens}");
        chains.push(tokens["refresh_token"].as_str().unwrap().to_owned());
    }

    // The storm: each family's chain of tokens, every one used once, until the kill.
    let base = server.base.clone();
    let storms: Vec<_> = chains
        .into_iter()
        .map(|first| {
            let (p, base) = (p.clone(), base.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut chain = vec![first];
                loop {
                    let current = chain.last().unwrap().clone();
                    match use_refresh_seen(&http, &base, &p, &current).await {
                        Some((200, tokens)) => chain.push(tokens["refresh_token"].as_str().unwrap().to_owned()),
                        Some((status, body)) => panic!("a rotation in the storm answered {status}: {body}"),
                        None => return chain,
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(STORM_BEFORE_KILL).await;
    let killed_log = server.log();
    server.stop(Signal::SIGKILL);
    assert_no_panic(&killed_log);
    let mut chains = Vec::new();
    for s in storms {
        chains.push(s.await.unwrap());
    }
    let rotations: usize = chains.iter().map(|c| c.len() - 1).sum();
    assert!(rotations >= 10 * STORM_FAMILIES, "a storm, not a drizzle: {rotations} rotations answered");

    let server = Proc::start(serve(), &log).await;
    let mut owner = p.t.owner().await;
    let (mut lost, mut unused) = (0, 0);
    for chain in &chains {
        // The last token: its rotation was in flight at the kill (or not yet sent).
        let last = chain.last().unwrap();
        let used: bool = sqlx::query_scalar("SELECT used_at IS NOT NULL FROM refresh_tokens WHERE token_hash = $1")
            .bind(&sha256(last.as_bytes())[..])
            .fetch_one(&mut owner)
            .await
            .unwrap();
        let now = use_refresh(&http, &server.base, &p, last).await;
        if used {
            lost += 1;
            assert_eq!(now.1["error"].as_str(), Some("invalid_grant"), "a rotated token works again: {:?}", now.1);
        } else {
            unused += 1;
            assert_eq!(now.0, 200, "a token never rotated still works: {:?}", now.1);
        }
        // Every token whose rotation was answered, in any order: never again.
        for used in chain[..chain.len() - 1].iter().rev() {
            let again = use_refresh(&http, &server.base, &p, used).await;
            assert_eq!((again.0, again.1["error"].as_str()), (400, Some("invalid_grant")), "{:?}", again.1);
        }
    }
    eprintln!(
        "fault figures: refresh storm: {rotations} rotations answered before the kill; of the {STORM_FAMILIES} in flight, {lost} rotated but unanswered, {unused} unused"
    );
    assert_no_panic(&server.log());
    assert!(server.stop(Signal::SIGTERM).success());
}

/// A refresh as the storm sends it: `None` when the connection died without an answer.
async fn use_refresh_seen(http: &reqwest::Client, base: &str, p: &Provider, token: &str) -> Seen {
    post_token(http, base, p, &[("grant_type", "refresh_token"), ("refresh_token", token)]).await
}
