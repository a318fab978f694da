//! Load test (issue #9, must-show 4): one address floods `POST /login` with wrong passwords
//! while a second address signs in; reports the second's sign-in times and successes.
//!
//! Run: `cargo bench --bench login_flood`
//!
//! It starts the real release binary (`serve`, the embedded default: its own PostgreSQL
//! cluster in a temporary data directory, default settings) on a free port of 127.0.0.1, and
//! talks to it only over loopback: the flooding clients bind their sockets to 127.0.0.2, the
//! legitimate one to 127.0.0.3, so the server sees two client IPs. Bounded: the flood lasts
//! `LCA_FLOOD_SECS` (default 30) seconds and at most `LCA_FLOOD_MAX` (default 200 000)
//! requests, from `LCA_FLOOD_CONNS` (default 32) connections; the legitimate client signs in
//! at most 20 times during it. `LCA_FLOOD_BIN` runs another build of the binary (e.g. one of
//! an older commit) with this same client.

#![allow(clippy::unwrap_used, reason = "a load test that cannot set up should stop")]

#[path = "common/server.rs"]
#[allow(dead_code, reason = "the release binary is cargo's own here")]
mod server;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::redirect::Policy;
use server::{command, start};
use tokio::sync::Mutex;

const FLOODER: &str = "127.0.0.2";
const LEGIT: &str = "127.0.0.3";
const LEGIT_EMAIL: &str = "legit@example.com";
const LEGIT_PASSWORD: &str = "a long legit passphrase 7";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn client(from: &str) -> reqwest::Client {
    let from: IpAddr = from.parse().unwrap();
    reqwest::Client::builder()
        .local_address(from)
        .cookie_store(true)
        .redirect(Policy::none())
        .timeout(Duration::from_secs(40))
        .build()
        .unwrap()
}

/// The CSRF token of a fresh login page.
async fn csrf(http: &reqwest::Client, base: &str) -> Option<String> {
    let html = http.get(format!("{base}/login")).send().await.ok()?.text().await.ok()?;
    let at = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(html[at..].split('"').next()?.to_owned())
}

/// One legitimate sign-in from a fresh browser: (signed in, time of the POST).
async fn sign_in(base: &str) -> (bool, Duration) {
    let http = client(LEGIT);
    let Some(token) = csrf(&http, base).await else { return (false, Duration::ZERO) };
    let form = [("csrf", token.as_str()), ("req", ""), ("email", LEGIT_EMAIL), ("password", LEGIT_PASSWORD)];
    let started = Instant::now();
    let res = http.post(format!("{base}/login")).form(&form).send().await;
    let took = started.elapsed();
    let ok = res.is_ok_and(|r| {
        r.status().is_redirection()
            && r.headers().get("location").is_some_and(|l| !l.to_str().unwrap_or("/login").starts_with("/login"))
    });
    (ok, took)
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs benches without it, and
    // a 30-second flood has no place in a test run.
    if !std::env::args().any(|a| a == "--bench") {
        println!("login_flood: a load test; run it with `cargo bench --bench login_flood`");
        return;
    }
    let bin = std::env::var("LCA_FLOOD_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_laventecare-auth").to_owned());
    let flood_secs = env_or("LCA_FLOOD_SECS", 30);
    let flood_max = env_or("LCA_FLOOD_MAX", 200_000);
    let conns = env_or("LCA_FLOOD_CONNS", 32);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    println!("login_flood: binary {bin}");
    let server = start(&bin, &data, &[]).await;

    let mut create = command(&bin, &data, &[]);
    create.args(["user", "create", "--email", LEGIT_EMAIL, "--password-stdin"]);
    let mut child = create.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(LEGIT_PASSWORD.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "user create: {}", String::from_utf8_lossy(&out.stderr));

    // Before the flood.
    let mut idle = Vec::new();
    for _ in 0..5 {
        let (ok, took) = sign_in(&server.base).await;
        assert!(ok, "a sign-in without any flood failed");
        idle.push(took);
    }

    // The flood: every connection keeps one session and posts wrong passwords for ever-new
    // unknown addresses (so no account lock stops it; only the IP's own limits do).
    let sent = Arc::new(AtomicU64::new(0));
    let statuses = Arc::new(Mutex::new(BTreeMap::<u16, u64>::new()));
    let deadline = Instant::now() + Duration::from_secs(flood_secs);
    let mut flooders = Vec::new();
    for c in 0..conns {
        let (base, sent, statuses) = (server.base.clone(), sent.clone(), statuses.clone());
        flooders.push(tokio::spawn(async move {
            let http = client(FLOODER);
            let Some(token) = csrf(&http, &base).await else { return };
            let mut n = 0u64;
            while Instant::now() < deadline && sent.fetch_add(1, Ordering::Relaxed) < flood_max {
                n += 1;
                let email = format!("flood-{c}-{n}@example.com");
                let form = [("csrf", token.as_str()), ("req", ""), ("email", &email), ("password", "wrong")];
                let status = match http.post(format!("{base}/login")).form(&form).send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                *statuses.lock().await.entry(status).or_insert(0) += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut during = Vec::new();
    let mut succeeded = 0;
    // Only while the flood goes on (it ends at the deadline or after `flood_max` requests).
    while during.len() < 20
        && Instant::now() + Duration::from_secs(1) < deadline
        && sent.load(Ordering::Relaxed) < flood_max
    {
        let (ok, took) = sign_in(&server.base).await;
        succeeded += u32::from(ok);
        during.push(took);
    }
    for f in flooders {
        let _ = f.await;
    }
    drop(server);

    let statuses = statuses.lock().await.clone();
    let flood_total: u64 = statuses.values().sum();
    println!(
        "login_flood: {conns} connections from {FLOODER} for {flood_secs} s: {flood_total} attempts, statuses {statuses:?}"
    );
    println!("login_flood: {LEGIT} before the flood: median {:?} over {} sign-ins", median(&mut idle), idle.len());
    println!(
        "login_flood: {LEGIT} during the flood: median {:?}, max {:?}, {succeeded}/{} sign-ins succeeded",
        median(&mut during),
        during.iter().max().copied().unwrap_or_default(),
        during.len()
    );
}
