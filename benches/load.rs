//! Load test (issue #13): throughput, p50/p99 and CPU per request of the endpoints on every
//! relying party's and device's path, for the release server on its embedded default, and
//! optionally the same load against node-oidc-provider side by side.
//!
//! Run: `cargo bench --bench load` (ours only) or `cargo bench --bench load -- --peer` (also the
//! peer, installed from npm into a temporary folder; needs `node` and `npm`).
//!
//! It starts the release binary (`serve` on the embedded default in a temporary data directory)
//! on a free port of 127.0.0.1 and provisions it through the command line: a tenant, a service
//! client (`client_credentials`), a confidential web client (code + refresh), a public device
//! client and a member. Then it drives each scenario from `LCA_LOAD_CONNS` (default 32)
//! keep-alive connections for `LCA_LOAD_SECS` (default 10) seconds, `LCA_LOAD_ROUNDS` (default
//! 3) rounds, ours and the peer's alternating, and prints the medians as a Markdown table:
//!
//! - `discovery`, `jwks`: `GET` of the two documents.
//! - `client_credentials`: a service client's token (RFC 6749 §4.4, RS256 JWT).
//! - `refresh_token`: rotation (RFC 9700 §4.14); every connection goes round its own families,
//!   so each refresh token is fresh and used once.
//! - `authorization_code`: redemption of codes made beforehand through a signed-in session
//!   (each used once; the run ends early when they are used up).
//! - `device_poll`: polling with the device codes of pending requests (RFC 8628 §3.4).
//! - `introspection`: of a service client's access token (RFC 7662).
//! - `userinfo`: with a member's access token.
//! - `login_burst`: wrong passwords for unknown emails from 32 addresses (127.0.0.10-41), every
//!   one a bcrypt cost-12 check, against the ceiling of cores ÷ one hash's time; and
//!   `client_credentials` during that burst.
//! - `commit_baseline`: not the server: a one-row `INSERT` + durable commit per request from
//!   the same number of connections straight to the embedded PostgreSQL (pgbench's simplest
//!   write), the machine's durable-commit rate that refresh rotation is held against.
//!
//! CPU per request is the server's user+system time over the run divided by the requests; for
//! ours the embedded PostgreSQL's (postmaster and its backends) is shown too, and the ratio
//! column compares ours *with* PostgreSQL against the peer's in-memory process. Resident memory
//! is the server's `VmRSS`, idle (after start-up) and at the end.
//!
//! The peer is node-oidc-provider 9.13 (`benches/peer/oidc-provider.mjs`): in-memory adapter,
//! RS256 JWT access tokens for `client_credentials` through resource indicators; it introspects
//! only opaque tokens, so its introspection load uses one of those. It has no figures for the
//! scenarios that need its interactive login (shown as —).

#![allow(clippy::unwrap_used, reason = "a load test that cannot set up should stop")]

#[path = "common/server.rs"]
#[allow(dead_code, reason = "the release binary is cargo's own here")]
mod server;

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::redirect::Policy;
use server::{command, start};
use sqlx::Connection;

const EMAIL: &str = "load@example.com";
const PASSWORD: &str = "violet tundra kayak 42";
const REDIRECT: &str = "http://127.0.0.1:9/callback";
const PEER_CLIENT: &str = "svc";
const PEER_SECRET: &str = "svc-secret-for-the-peer-load-test";
/// What the setup raises: codes live long enough to be made before they are redeemed, device
/// requests are made from one client and address, the login burst's addresses are not locked.
const SETUP: &[(&str, &str)] = &[
    ("LCA_CODE_TTL_SECS", "600"),
    ("LCA_DEVICE_AUTHORIZATIONS_PER_CLIENT", "10000000"),
    ("LCA_DEVICE_AUTHORIZATIONS_PER_IP", "10000000"),
    ("LCA_DEVICE_CODE_TTL_SECS", "1800"),
    ("LCA_LOGIN_IP_LOCK_AFTER", "1000000000"),
    ("LCA_JANITOR_INTERVAL", "0"),
];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// Processes: CPU time and resident memory from /proc.

/// Clock ticks per second of `/proc/<pid>/stat`.
fn clock_ticks() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(100.0)
}

/// (parent pid, user+system ticks, reaped children's user+system ticks) of a process.
fn stat(pid: u32) -> Option<(u32, u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // Fields 4, 14-17 of proc(5), counted here from field 3.
    Some((u32::try_from(num(1)).unwrap_or(0), num(11) + num(12), num(13) + num(14)))
}

/// CPU ticks of a process and its children, live and reaped.
fn tree_ticks(root: u32) -> u64 {
    let Some((_, own, reaped)) = stat(root) else { return 0 };
    let mut total = own + reaped;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Some((parent, ticks, _)) = stat(pid)
            && parent == root
        {
            total += ticks;
        }
    }
    total
}

/// `VmRSS` of a process, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// The postmaster of the embedded cluster of `data`.
fn postmaster(data: &Path) -> u32 {
    let pidfile = std::fs::read_to_string(data.join("postgres").join("pgdata").join("postmaster.pid")).unwrap();
    pidfile.lines().next().unwrap().trim().parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// The load generator.

/// One request's outcome: `Ok` or the answer that made it a failure.
type Outcome = Result<(), String>;
type Request = Pin<Box<dyn Future<Output = Outcome> + Send>>;
/// What one connection sends next, given its client; `None` when it has nothing left.
type Worker = Box<dyn FnMut(&reqwest::Client) -> Option<Request> + Send>;

/// A server under load: its base URL and the processes whose CPU time it costs.
struct Target {
    base: String,
    server_pid: u32,
    db_pid: Option<u32>,
}

#[derive(Clone, Default)]
struct Figures {
    failures: BTreeMap<String, u64>,
    /// Successful requests per second (failures are counted apart; CPU is per request sent).
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    server_ms: f64,
    db_ms: f64,
}

impl Figures {
    fn cpu_ms(&self) -> f64 {
        self.server_ms + self.db_ms
    }
}

fn keep_alive(from: Option<IpAddr>) -> reqwest::Client {
    let mut b =
        reqwest::Client::builder().pool_max_idle_per_host(1).redirect(Policy::none()).timeout(Duration::from_secs(60));
    if let Some(from) = from {
        b = b.local_address(from);
    }
    b.build().unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

/// Drives `conns` connections for `secs` seconds (or until every worker has nothing left).
async fn drive(
    target: &Target,
    conns: usize,
    secs: u64,
    mut make: impl FnMut(usize) -> (Worker, Option<IpAddr>),
) -> Figures {
    let ticks = clock_ticks();
    let (server0, db0) = (tree_ticks(target.server_pid), target.db_pid.map_or(0, tree_ticks));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|c| {
            let (mut next, from) = make(c);
            tokio::spawn(async move {
                let http = keep_alive(from);
                let mut times = Vec::new();
                let mut failures = BTreeMap::<String, u64>::new();
                while Instant::now() < deadline {
                    let Some(request) = next(&http) else { break };
                    let sent = Instant::now();
                    let outcome = request.await;
                    times.push(sent.elapsed());
                    if let Err(answer) = outcome {
                        *failures.entry(answer).or_default() += 1;
                    }
                }
                (times, failures)
            })
        })
        .collect();
    let mut times = Vec::new();
    let mut failures = BTreeMap::<String, u64>::new();
    for task in tasks {
        let (t, f) = task.await.unwrap();
        times.extend(t);
        for (k, v) in f {
            *failures.entry(k).or_default() += v;
        }
    }
    let took = started.elapsed().as_secs_f64();
    let (server1, db1) = (tree_ticks(target.server_pid), target.db_pid.map_or(0, tree_ticks));
    times.sort();
    let n = times.len() as u64;
    let ok = n - failures.values().sum::<u64>();
    let per_request = |t: u64| if n == 0 { 0.0 } else { t as f64 / ticks * 1e3 / n as f64 };
    Figures {
        failures,
        per_sec: ok as f64 / took,
        p50_ms: percentile(&times, 0.50),
        p99_ms: percentile(&times, 0.99),
        server_ms: per_request(server1.saturating_sub(server0)),
        db_ms: per_request(db1.saturating_sub(db0)),
    }
}

/// `rounds` runs of the same load, each on a settled database ([`settle`]); the median run.
async fn median_of<M: FnMut(usize) -> (Worker, Option<IpAddr>)>(
    data: &Path,
    target: &Target,
    (conns, secs, rounds): (usize, u64, u64),
    mut make: impl FnMut() -> M,
) -> Figures {
    let mut runs = Vec::new();
    for _ in 0..rounds {
        settle(data).await;
        runs.push(drive(target, conns, secs, make()).await);
    }
    median_by(&runs)
}

/// A worker that sends the request `build` makes, again and again, and counts a `200` (or what
/// `check` accepts of the body) as success.
fn repeat(build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + 'static) -> Worker {
    let build = Arc::new(build);
    Box::new(move |http| {
        let request = build(http);
        Some(Box::pin(async move { answer(request.send().await).await.map(drop) }))
    })
}

/// `Ok` with the JSON body of a 200, or what went wrong: the OAuth `error`, else the status.
async fn answer(res: reqwest::Result<reqwest::Response>) -> Result<serde_json::Value, String> {
    let res = res.map_err(|e| if e.is_timeout() { "timeout".to_owned() } else { "connection".to_owned() })?;
    let status = res.status().as_u16();
    let bytes = res.bytes().await.map_err(|_| "body".to_owned())?;
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if status == 200 {
        return Ok(body);
    }
    Err(body["error"].as_str().map_or_else(|| status.to_string(), str::to_owned))
}

// ---------------------------------------------------------------------------------------------
// Setup of ours through the command line and the hosted pages.

fn cli_json(bin: &str, data: &Path, args: &[&str]) -> serde_json::Value {
    let out = command(bin, data, SETUP).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

struct Ours {
    service: (String, String),
    web: (String, String),
    device: String,
}

fn provision(bin: &str, data: &Path) -> Ours {
    cli_json(bin, data, &["tenant", "create", "--slug", "load", "--name", "Load", "--json"]);
    // `client create` in the load tenant, with its grants and options.
    let client = |name: &str, rest: &[&str]| {
        let mut args = vec!["client", "create", "--tenant", "load", "--name", name, "--json"];
        args.extend_from_slice(rest);
        cli_json(bin, data, &args)
    };
    let svc = client("Jobs", &["--grant", "client_credentials", "--role", "viewer"]);
    let web = client("Web", &["--grant", "authorization_code", "--grant", "refresh_token", "--redirect-uri", REDIRECT]);
    let device = client("Thermostat", &["--grant", "device_code", "--public"]);
    let mut create = command(bin, data, SETUP);
    create.args(["user", "create", "--email", EMAIL, "--password-stdin"]);
    let mut child = create.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(PASSWORD.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "user create: {}", String::from_utf8_lossy(&out.stderr));
    cli_json(bin, data, &["member", "add", "--tenant", "load", "--email", EMAIL, "--role", "viewer", "--json"]);
    let pair = |v: &serde_json::Value| {
        (v["client_id"].as_str().unwrap().to_owned(), v["client_secret"].as_str().unwrap_or_default().to_owned())
    };
    Ours { service: pair(&svc), web: pair(&web), device: device["client_id"].as_str().unwrap().to_owned() }
}

/// The value of a hidden input of a page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no hidden {name} in {html}")) + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

const VERIFIER: &str = "a-pkce-verifier-of-the-load-test-that-is-long-enough-0123456789";

/// A signed-in browser that asks for codes of the web client.
struct Session {
    http: reqwest::Client,
    base: String,
    authorize: String,
}

impl Session {
    async fn new(base: &str, client_id: &str) -> Self {
        let http = reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap();
        let challenge = laventecare_auth::protocol::types::s256_challenge(VERIFIER);
        let mut url = reqwest::Url::parse(&format!("{base}/authorize")).unwrap();
        url.query_pairs_mut().extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("scope", "openid email offline_access"),
            ("state", "load"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]);
        let session = Self { http, base: base.to_owned(), authorize: url.to_string() };
        // The first time through: the login page, then consent.
        let code = session.code().await;
        assert!(code.is_some(), "no code after signing in");
        session
    }

    /// Follows the provider's redirects from `/authorize`, signing in and consenting where
    /// asked, to the code at the redirect URI.
    async fn code(&self) -> Option<String> {
        let mut res = self.http.get(&self.authorize).send().await.ok()?;
        for _ in 0..10 {
            if res.status().is_redirection() {
                let location = res.headers()["location"].to_str().ok()?.to_owned();
                if location.starts_with(REDIRECT) {
                    let url = reqwest::Url::parse(&location).ok()?;
                    return url.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned());
                }
                let next = reqwest::Url::parse(&self.base).ok()?.join(&location).ok()?;
                res = self.http.get(next).send().await.ok()?;
                continue;
            }
            let html = res.text().await.ok()?;
            let form: Vec<(&str, String)> = if html.contains("action=\"/login\"") {
                vec![
                    ("csrf", hidden(&html, "csrf")),
                    ("req", hidden(&html, "req")),
                    ("email", EMAIL.into()),
                    ("password", PASSWORD.into()),
                ]
            } else if html.contains("action=\"/consent\"") {
                vec![("csrf", hidden(&html, "csrf")), ("req", hidden(&html, "req")), ("decision", "allow".into())]
            } else {
                panic!("an unexpected page on the way to a code: {html}");
            };
            let action = if form.len() == 4 { "/login" } else { "/consent" };
            res = self.http.post(format!("{}{action}", self.base)).form(&form).send().await.ok()?;
        }
        None
    }
}

/// `n` codes from `sessions` signed-in browsers at once.
async fn codes(sessions: &[Arc<Session>], n: usize) -> Vec<String> {
    let per = n.div_ceil(sessions.len());
    let tasks: Vec<_> = sessions
        .iter()
        .map(|s| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut mine = Vec::with_capacity(per);
                for _ in 0..per {
                    mine.push(s.code().await.expect("a code"));
                }
                mine
            })
        })
        .collect();
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.truncate(n);
    all
}

// ---------------------------------------------------------------------------------------------
// The peer.

struct Peer {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_peer() -> Peer {
    let dir = tempfile::tempdir().unwrap();
    let npm = |args: &[&str]| {
        let out = Command::new("npm").args(args).current_dir(dir.path()).output().expect("npm is needed for --peer");
        assert!(out.status.success(), "npm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    std::fs::write(dir.path().join("package.json"), r#"{"name":"lca-load-peer","private":true}"#).unwrap();
    npm(&["install", "--no-audit", "--no-fund", "oidc-provider@9.13"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches").join("peer").join("oidc-provider.mjs");
    std::fs::copy(&script, dir.path().join("oidc-provider.mjs")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = std::fs::File::create(dir.path().join("peer.log")).unwrap();
    let child = Command::new("node")
        .arg("oidc-provider.mjs")
        .current_dir(dir.path())
        .env("PORT", port.to_string())
        .env("CLIENT_ID", PEER_CLIENT)
        .env("CLIENT_SECRET", PEER_SECRET)
        .env("NODE_ENV", "production")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let peer = Peer { child, base: format!("http://127.0.0.1:{port}"), _dir: dir };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{}/.well-known/openid-configuration", peer.base)).send().await.is_err() {
        assert!(Instant::now() < deadline, "the peer did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    peer
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

/// The endpoints of a discovery document.
struct Endpoints {
    discovery: String,
    jwks: String,
    token: String,
    introspection: String,
    userinfo: String,
}

async fn endpoints(base: &str) -> Endpoints {
    let discovery = format!("{base}/.well-known/openid-configuration");
    let doc: serde_json::Value = reqwest::get(&discovery).await.unwrap().json().await.unwrap();
    let at = |k: &str| doc[k].as_str().unwrap_or_default().to_owned();
    Endpoints {
        jwks: at("jwks_uri"),
        token: at("token_endpoint"),
        introspection: at("introspection_endpoint"),
        userinfo: at("userinfo_endpoint"),
        discovery,
    }
}

fn get(url: &str) -> impl Fn(usize) -> (Worker, Option<IpAddr>) + '_ {
    move |_| {
        let url = url.to_owned();
        (repeat(move |http| http.get(&url)), None)
    }
}

fn client_credentials(
    token: &str,
    (id, secret): (&str, &str),
    extra: &'static [(&'static str, &'static str)],
) -> impl Fn(usize) -> (Worker, Option<IpAddr>) {
    let (token, id, secret) = (token.to_owned(), id.to_owned(), secret.to_owned());
    move |_| {
        let (token, id, secret) = (token.clone(), id.clone(), secret.clone());
        let worker = repeat(move |http| {
            let mut form = vec![("grant_type", "client_credentials")];
            form.extend_from_slice(extra);
            http.post(&token).basic_auth(&id, Some(&secret)).form(&form)
        });
        (worker, None)
    }
}

async fn one_token(token: &str, (id, secret): (&str, &str), extra: &[(&str, &str)]) -> String {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    let res = reqwest::Client::new().post(token).basic_auth(id, Some(secret)).form(&form).send().await.unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap_or_else(|| panic!("no access token: {body}")).to_owned()
}

fn introspection(url: &str, (id, secret): (&str, &str), token: &str) -> impl Fn(usize) -> (Worker, Option<IpAddr>) {
    let (url, id, secret, token) = (url.to_owned(), id.to_owned(), secret.to_owned(), token.to_owned());
    move |_| {
        let (url, id, secret, token) = (url.clone(), id.clone(), secret.clone(), token.clone());
        let worker: Worker = Box::new(move |http| {
            let request = http.post(&url).basic_auth(&id, Some(&secret)).form(&[("token", token.as_str())]);
            Some(Box::pin(async move {
                let body = answer(request.send().await).await?;
                if body["active"] == true { Ok(()) } else { Err("inactive".to_owned()) }
            }))
        });
        (worker, None)
    }
}

/// Fixed-width cells of the table.
fn ms(v: f64) -> String {
    if v >= 10.0 { format!("{v:.0}") } else { format!("{v:.2}") }
}

fn median_by(rounds: &[Figures]) -> Figures {
    let mut sorted = rounds.to_vec();
    sorted.sort_by(|a, b| a.per_sec.total_cmp(&b.per_sec));
    sorted.get(sorted.len() / 2).cloned().unwrap_or_default()
}

struct Row {
    scenario: &'static str,
    ours: Figures,
    peer: Option<Figures>,
    note: String,
}

fn failures(f: &Figures) -> String {
    if f.failures.is_empty() {
        return String::new();
    }
    f.failures.iter().map(|(k, v)| format!("{k} ×{v}")).collect::<Vec<_>>().join(", ")
}

fn print_table(rows: &[Row], conns: usize, secs: u64, rounds: u64) {
    println!();
    println!(
        "{conns} connections, {secs} s per run, median of {rounds} rounds; CPU in ms per request (server + its PostgreSQL)"
    );
    println!();
    println!(
        "| scenario | req/s | p50 ms | p99 ms | CPU ms/req | peer req/s | ratio | peer CPU ms/req | CPU ratio | notes |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for r in rows {
        let o = &r.ours;
        let (peer, ratio, peer_cpu, cpu_ratio) = match &r.peer {
            Some(p) if p.per_sec > 0.0 => (
                format!("{:.0}", p.per_sec),
                format!("{:.2}×", o.per_sec / p.per_sec),
                ms(p.cpu_ms()),
                format!("{:.2}×", o.cpu_ms() / p.cpu_ms().max(1e-9)),
            ),
            _ => ("—".into(), "—".into(), "—".into(), "—".into()),
        };
        let mut note = r.note.clone();
        let failed = failures(o);
        if !failed.is_empty() {
            note = format!("{note} failures: {failed}").trim().to_owned();
        }
        println!(
            "| {} | {:.0} | {} | {} | {} ({} + {}) | {peer} | {ratio} | {peer_cpu} | {cpu_ratio} | {note} |",
            r.scenario,
            o.per_sec,
            ms(o.p50_ms),
            ms(o.p99_ms),
            ms(o.cpu_ms()),
            ms(o.server_ms),
            ms(o.db_ms),
        );
    }
}

/// The embedded cluster's superuser, on database `db`.
fn superuser(data: &Path, db: &str) -> sqlx::postgres::PgConnectOptions {
    sqlx::postgres::PgConnectOptions::new().socket(data.join("postgres").join("run")).username("postgres").database(db)
}

/// What pgbench does between runs: `VACUUM (ANALYZE)` and a checkpoint, so that a scenario
/// does not pay for the dead rows, stale statistics and dirty pages of the one before it (an
/// autovacuum of the last scenario's tables in the middle of the next one).
async fn settle(data: &Path) {
    let mut conn = sqlx::PgConnection::connect_with(&superuser(data, "laventecare")).await.unwrap();
    sqlx::raw_sql("VACUUM (ANALYZE)").execute(&mut conn).await.unwrap();
    sqlx::raw_sql("CHECKPOINT").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

/// The durable one-row commit rate of the embedded cluster, from `conns` connections.
async fn commit_baseline(data: &Path, target: &Target, conns: usize, secs: u64) -> Figures {
    let options = superuser(data, "postgres");
    let mut admin = sqlx::PgConnection::connect_with(&options).await.unwrap();
    sqlx::query("CREATE TABLE IF NOT EXISTS load_commit_baseline (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), v text)")
        .execute(&mut admin)
        .await
        .unwrap();
    let mut connections = Vec::new();
    for _ in 0..conns {
        connections.push(Arc::new(tokio::sync::Mutex::new(sqlx::PgConnection::connect_with(&options).await.unwrap())));
    }
    // `drive` times what the workers send; here they talk to PostgreSQL instead of HTTP.
    let figures = drive(target, conns, secs, |c| {
        let conn = connections[c].clone();
        let worker: Worker = Box::new(move |_| {
            let conn = conn.clone();
            Some(Box::pin(async move {
                let mut conn = conn.lock().await;
                sqlx::query("INSERT INTO load_commit_baseline (v) VALUES ($1)")
                    .bind("x")
                    .execute(&mut *conn)
                    .await
                    .map(drop)
                    .map_err(|_| "insert".to_owned())
            }))
        });
        (worker, None)
    })
    .await;
    sqlx::query("DROP TABLE load_commit_baseline").execute(&mut admin).await.unwrap();
    figures
}

#[tokio::main]
async fn main() {
    // `cargo test --all-targets` runs benches without `--bench`: a load test has no place there.
    if !std::env::args().any(|a| a == "--bench") {
        println!("load: a load test; run it with `cargo bench --bench load` (add `-- --peer` for the peer)");
        return;
    }
    let with_peer = std::env::args().any(|a| a == "--peer");
    let only: Option<Vec<String>> =
        std::env::var("LCA_LOAD_ONLY").ok().map(|v| v.split(',').map(str::to_owned).collect());
    let wanted = |name: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == name));
    let bin = std::env::var("LCA_LOAD_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_laventecare-auth").to_owned());
    let conns = usize::try_from(env_or("LCA_LOAD_CONNS", 32)).unwrap();
    let secs = env_or("LCA_LOAD_SECS", 10);
    let rounds = env_or("LCA_LOAD_ROUNDS", 3).max(1);
    let shape = (conns, secs, rounds);
    let dir = tempfile::tempdir().unwrap();
    let data: PathBuf = dir.path().join("data");
    println!("load: binary {bin}");
    let server = start(&bin, &data, SETUP).await;
    let ours_target = Target { base: server.base.clone(), server_pid: server.pid(), db_pid: Some(postmaster(&data)) };
    let ours = provision(&bin, &data);
    let ep = endpoints(&ours_target.base).await;
    let idle_rss = rss_mib(ours_target.server_pid);

    let peer = if with_peer { Some(start_peer().await) } else { None };
    let peer_target = peer.as_ref().map(|p| Target { base: p.base.clone(), server_pid: p.child.id(), db_pid: None });
    let peer_ep = match &peer_target {
        Some(t) => Some(endpoints(&t.base).await),
        None => None,
    };
    let peer_idle_rss = peer_target.as_ref().map(|t| rss_mib(t.server_pid));
    let svc = (ours.service.0.as_str(), ours.service.1.as_str());
    let peer_svc = (PEER_CLIENT, PEER_SECRET);

    let mut rows = Vec::new();
    // The scenarios both sides have, ours and the peer's alternating.
    let ours_token = one_token(&ep.token, svc, &[]).await;
    let peer_token = match &peer_ep {
        Some(p) => Some(one_token(&p.token, peer_svc, &[("resource", "urn:peer:opaque")]).await),
        None => None,
    };
    type Make<'a> = Box<dyn Fn(usize) -> (Worker, Option<IpAddr>) + 'a>;
    let shared: Vec<(&'static str, Make<'_>, Option<Make<'_>>)> = vec![
        ("discovery", Box::new(get(&ep.discovery)), peer_ep.as_ref().map(|p| Box::new(get(&p.discovery)) as Make<'_>)),
        ("jwks", Box::new(get(&ep.jwks)), peer_ep.as_ref().map(|p| Box::new(get(&p.jwks)) as Make<'_>)),
        (
            "client_credentials",
            Box::new(client_credentials(&ep.token, svc, &[])),
            peer_ep.as_ref().map(|p| Box::new(client_credentials(&p.token, peer_svc, &[])) as Make<'_>),
        ),
        (
            "introspection",
            Box::new(introspection(&ep.introspection, svc, &ours_token)),
            peer_ep
                .as_ref()
                .zip(peer_token.as_ref())
                .map(|(p, t)| Box::new(introspection(&p.introspection, peer_svc, t)) as Make<'_>),
        ),
    ];
    // `get` borrows the endpoint strings; they live to the end of `main`.
    for (name, make_ours, make_peer) in &shared {
        if !wanted(name) {
            continue;
        }
        let (mut o, mut p) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            settle(&data).await;
            o.push(drive(&ours_target, conns, secs, make_ours).await);
            if let (Some(make_peer), Some(t)) = (make_peer, &peer_target) {
                p.push(drive(t, conns, secs, make_peer).await);
            }
        }
        let row = Row {
            scenario: name,
            ours: median_by(&o),
            peer: (!p.is_empty()).then(|| median_by(&p)),
            note: String::new(),
        };
        eprintln!("load: {name}: {:.0}/s", row.ours.per_sec);
        rows.push(row);
    }

    // Ours only: the grants and endpoints that need a signed-in user or a device.
    let web = (ours.web.0.clone(), ours.web.1.clone());
    let sessions: Vec<Arc<Session>> = if wanted("refresh_token") || wanted("authorization_code") || wanted("userinfo") {
        let mut s = Vec::new();
        for _ in 0..conns.min(8) {
            s.push(Arc::new(Session::new(&ours_target.base, &web.0).await));
        }
        s
    } else {
        Vec::new()
    };
    let redeem = |code: &str| {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ];
        reqwest::Client::new().post(&ep.token).basic_auth(&web.0, Some(&web.1)).form(&form).send()
    };

    if wanted("refresh_token") {
        let families = 8 * conns;
        let mut tokens = Vec::new();
        for code in codes(&sessions, families).await {
            let body = answer(redeem(&code).await).await.unwrap();
            tokens.push(body["refresh_token"].as_str().unwrap().to_owned());
        }
        let mut o = Vec::new();
        for _ in 0..rounds {
            settle(&data).await;
            let shares: Vec<Arc<Mutex<VecDeque<String>>>> = tokens
                .chunks(tokens.len().div_ceil(conns))
                .map(|c| Arc::new(Mutex::new(c.iter().cloned().collect())))
                .collect();
            let (url, id, secret) = (ep.token.clone(), web.0.clone(), web.1.clone());
            let figures = drive(&ours_target, conns, secs, |c| {
                let (url, id, secret, mine) =
                    (url.clone(), id.clone(), secret.clone(), shares[c % shares.len()].clone());
                let worker: Worker = Box::new(move |http| {
                    let token = mine.lock().unwrap().pop_front()?;
                    let form = [("grant_type", "refresh_token"), ("refresh_token", token.as_str())];
                    let request = http.post(&url).basic_auth(&id, Some(&secret)).form(&form);
                    let mine = mine.clone();
                    Some(Box::pin(async move {
                        let body = answer(request.send().await).await?;
                        let next = body["refresh_token"].as_str().ok_or("no refresh token")?;
                        mine.lock().unwrap().push_back(next.to_owned());
                        Ok(())
                    }))
                });
                (worker, None)
            })
            .await;
            // The next round goes on with the tokens each family holds now.
            tokens = shares.iter().flat_map(|s| s.lock().unwrap().iter().cloned().collect::<Vec<_>>()).collect();
            o.push(figures);
        }
        rows.push(Row {
            scenario: "refresh_token",
            ours: median_by(&o),
            peer: None,
            note: format!("{families} families, each token used once"),
        });
        eprintln!("load: refresh_token done");
    }

    if wanted("authorization_code") {
        let wanted_codes = usize::try_from(env_or("LCA_LOAD_CODES", 12_000)).unwrap();
        let mut o = Vec::new();
        for _ in 0..rounds {
            let made = Instant::now();
            let pool = codes(&sessions, wanted_codes).await;
            eprintln!("load: {} codes made in {:.1} s", pool.len(), made.elapsed().as_secs_f64());
            settle(&data).await;
            let shares: Vec<Arc<Mutex<Vec<String>>>> =
                pool.chunks(pool.len().div_ceil(conns)).map(|c| Arc::new(Mutex::new(c.to_vec()))).collect();
            let (url, id, secret) = (ep.token.clone(), web.0.clone(), web.1.clone());
            o.push(
                drive(&ours_target, conns, secs, |c| {
                    let (url, id, secret, mine) =
                        (url.clone(), id.clone(), secret.clone(), shares[c % shares.len()].clone());
                    let worker: Worker = Box::new(move |http| {
                        let code = mine.lock().unwrap().pop()?;
                        let form = [
                            ("grant_type", "authorization_code"),
                            ("code", code.as_str()),
                            ("redirect_uri", REDIRECT),
                            ("code_verifier", VERIFIER),
                        ];
                        let request = http.post(&url).basic_auth(&id, Some(&secret)).form(&form);
                        Some(Box::pin(async move { answer(request.send().await).await.map(drop) }))
                    });
                    (worker, None)
                })
                .await,
            );
        }
        rows.push(Row {
            scenario: "authorization_code",
            ours: median_by(&o),
            peer: None,
            note: format!("{wanted_codes} codes per round, each used once"),
        });
    }

    if wanted("userinfo") {
        let code = codes(&sessions, 1).await.pop().unwrap();
        let body = answer(redeem(&code).await).await.unwrap();
        let access = body["access_token"].as_str().unwrap().to_owned();
        let url = ep.userinfo.clone();
        let figures = median_of(&data, &ours_target, shape, || {
            |_| {
                let (url, access) = (url.clone(), access.clone());
                (repeat(move |http| http.get(&url).bearer_auth(&access)), None)
            }
        })
        .await;
        rows.push(Row { scenario: "userinfo", ours: figures, peer: None, note: String::new() });
    }

    if wanted("device_poll") {
        let pending = usize::try_from(env_or("LCA_LOAD_DEVICES", 4_000)).unwrap();
        let http = keep_alive(None);
        let mut device_codes = Vec::with_capacity(pending);
        let url = format!("{}/device_authorization", ours_target.base);
        for _ in 0..pending {
            let form = [("client_id", ours.device.as_str()), ("scope", "openid offline_access")];
            let body = answer(http.post(&url).form(&form).send().await).await.unwrap();
            device_codes.push(body["device_code"].as_str().unwrap().to_owned());
        }
        let device_codes = Arc::new(device_codes);
        let (url, client_id) = (ep.token.clone(), ours.device.clone());
        let polls = median_of(&data, &ours_target, shape, || {
            |c| {
                let (url, client_id, codes) = (url.clone(), client_id.clone(), device_codes.clone());
                let mut i = c;
                let worker: Worker = Box::new(move |http| {
                    let code = codes[i % codes.len()].clone();
                    i += conns;
                    let form = [
                        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                        ("device_code", code.as_str()),
                        ("client_id", client_id.as_str()),
                    ];
                    let request = http.post(&url).form(&form);
                    Some(Box::pin(async move {
                        match answer(request.send().await).await {
                            Err(e) if e == "authorization_pending" || e == "slow_down" => Ok(()),
                            Err(e) => Err(e),
                            Ok(_) => Err("tokens".to_owned()),
                        }
                    }))
                });
                (worker, None)
            }
        })
        .await;
        rows.push(Row {
            scenario: "device_poll",
            ours: polls,
            peer: None,
            note: format!("{pending} pending requests; the answers are authorization_pending or slow_down"),
        });
    }

    if wanted("login_burst") {
        let ceiling = bcrypt_ceiling();
        let login_url = format!("{}/login", ours_target.base);
        let logins = median_of(&data, &ours_target, shape, || bad_logins(&login_url)).await;
        rows.push(Row {
            scenario: "login_burst",
            note: format!("{:.0} % of the bcrypt ceiling of {ceiling:.1}/s", logins.per_sec / ceiling * 100.0),
            ours: logins,
            peer: None,
        });
        // client_credentials during a burst, against its figure alone.
        let alone = rows.iter().find(|r| r.scenario == "client_credentials").map(|r| r.ours.per_sec);
        let cc = client_credentials(&ep.token, svc, &[]);
        let mut o = Vec::new();
        for _ in 0..rounds {
            settle(&data).await;
            let burst = tokio::spawn({
                let t = Target { base: ours_target.base.clone(), server_pid: ours_target.server_pid, db_pid: None };
                let login_url = login_url.clone();
                async move { drive(&t, 32, secs + 1, bad_logins(&login_url)).await }
            });
            tokio::time::sleep(Duration::from_millis(500)).await;
            o.push(drive(&ours_target, conns, secs, &cc).await);
            burst.await.unwrap();
        }
        let during = median_by(&o);
        rows.push(Row {
            scenario: "client_credentials during login_burst",
            note: alone
                .map_or_else(String::new, |a| format!("{:.0} % of its throughput alone", during.per_sec / a * 100.0)),
            ours: during,
            peer: None,
        });
    }

    if wanted("commit_baseline") {
        let mut o = Vec::new();
        for _ in 0..rounds {
            settle(&data).await;
            o.push(commit_baseline(&data, &ours_target, conns, secs).await);
        }
        let baseline = median_by(&o);
        let refresh = rows.iter().find(|r| r.scenario == "refresh_token").map(|r| r.ours.per_sec);
        if let (Some(refresh), Some(row)) = (refresh, rows.iter_mut().find(|r| r.scenario == "refresh_token")) {
            row.note = format!("{}; {:.0} % of the durable commit rate", row.note, refresh / baseline.per_sec * 100.0);
        }
        rows.push(Row {
            scenario: "commit_baseline",
            ours: baseline,
            peer: None,
            note: "one-row INSERT + durable commit straight to PostgreSQL, no server".into(),
        });
    }

    print_table(&rows, conns, secs, rounds);
    println!();
    let end_rss = rss_mib(ours_target.server_pid);
    match (&peer_target, peer_idle_rss) {
        (Some(p), Some(peer_idle)) => {
            let peer_end = rss_mib(p.server_pid);
            println!("| resident memory | ours MiB | peer MiB | ratio |");
            println!("|---|---:|---:|---:|");
            println!("| idle | {idle_rss:.1} | {peer_idle:.1} | {:.2}× |", idle_rss / peer_idle);
            println!("| end of the run | {end_rss:.1} | {peer_end:.1} | {:.2}× |", end_rss / peer_end);
        }
        _ => println!("resident memory: {idle_rss:.1} MiB idle, {end_rss:.1} MiB at the end of the run"),
    }
    drop(peer);
    drop(server);
}

/// Wrong passwords for ever-new unknown emails (each a full bcrypt check against the dummy
/// hash), connection `c` from 127.0.0.(10 + c % 32): the server's per-address limits see 32
/// addresses, and none is locked (the setup raises `LCA_LOGIN_IP_LOCK_AFTER`). Each request is
/// one post; a `429` or `503` is a failure.
fn bad_logins(login_url: &str) -> impl Fn(usize) -> (Worker, Option<IpAddr>) + Send + 'static {
    let login_url = login_url.to_owned();
    move |c| {
        let from: IpAddr = format!("127.0.0.{}", 10 + c % 32).parse().unwrap();
        let url = login_url.clone();
        let mut n = 0u64;
        // The login page once per connection, as a flood would: its session cookie and CSRF
        // field serve every attempt after it.
        let page: Arc<tokio::sync::OnceCell<(String, String)>> = Arc::default();
        let worker: Worker = Box::new(move |http| {
            n += 1;
            let (http, url, page) = (http.clone(), url.clone(), page.clone());
            let email = format!("nobody-{c}-{n}@example.com");
            Some(Box::pin(async move {
                let (cookie, csrf) = page
                    .get_or_try_init(|| async {
                        let page = http.get(&url).send().await.map_err(|_| "connection".to_owned())?;
                        let cookie: Vec<String> = page
                            .headers()
                            .get_all("set-cookie")
                            .iter()
                            .filter_map(|v| v.to_str().ok())
                            .map(|v| v.split(';').next().unwrap_or("").to_owned())
                            .collect();
                        let html = page.text().await.map_err(|_| "body".to_owned())?;
                        Ok::<_, String>((cookie.join("; "), hidden(&html, "csrf")))
                    })
                    .await?;
                let form = [
                    ("csrf", csrf.clone()),
                    ("req", String::new()),
                    ("email", email),
                    ("password", "a wrong password".to_owned()),
                ];
                let res = http
                    .post(&url)
                    .header("cookie", cookie.as_str())
                    .form(&form)
                    .send()
                    .await
                    .map_err(|_| "connection".to_owned())?;
                match res.status().as_u16() {
                    s if s < 400 || s == 401 => Ok(()),
                    s => Err(s.to_string()),
                }
            }))
        });
        (worker, Some(from))
    }
}

/// Logins per second the machine can check: cores ÷ the time of one cost-12 hash.
fn bcrypt_ceiling() -> f64 {
    let started = Instant::now();
    let n = 4;
    for _ in 0..n {
        bcrypt::verify("wrong password", "$2b$12$C6UzMDM.H6dfI/f/IKxGhuZGzwh.Dv/8Mt1e1y8h8E0jjPDqUJZv6").unwrap();
    }
    let one = started.elapsed().as_secs_f64() / f64::from(n);
    std::thread::available_parallelism().map_or(1, |n| n.get()) as f64 / one
}
