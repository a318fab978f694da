//! Load test (issue #12, must-show 4): a fleet of devices polling the token endpoint with the
//! device code of a pending request (RFC 8628 §3.4), the load a fleet puts on the provider
//! while people have not yet approved. Reports polls per second, p50/p99 and the answers.
//!
//! Run: `cargo bench --bench device_poll`
//!
//! It starts the release binary (`serve`, the embedded default in a temporary data directory)
//! on a free port of 127.0.0.1, provisions a tenant and a public device client through the
//! command line, makes `LCA_POLL_CODES` (default 25 000) device authorizations, then polls from
//! `LCA_POLL_CONNS` (default 32) keep-alive connections for `LCA_POLL_SECS` (default 10)
//! seconds, each connection going round its share of the codes: 25 000 devices polling at the
//! default interval of 5 s is 5 000 polls a second. A code polled sooner than its interval gets
//! `slow_down`, otherwise `authorization_pending`; both are a pending request's answer and cost
//! the same (one lookup, one conditional update of the poll time). Per-client and per-address
//! limits on new authorizations are raised for the setup only. `LCA_POLL_BIN` runs another build.

#![allow(clippy::unwrap_used, reason = "a load test that cannot set up should stop")]

#[path = "common/server.rs"]
#[allow(dead_code, reason = "the release binary is cargo's own here")]
mod server;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use server::{command, start};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Raised for the setup only: the fleet's requests all come from one address and one client.
const SETUP: &[(&str, &str)] = &[
    ("LCA_DEVICE_AUTHORIZATIONS_PER_CLIENT", "10000000"),
    ("LCA_DEVICE_AUTHORIZATIONS_PER_IP", "10000000"),
    ("LCA_DEVICE_CODE_TTL_SECS", "1800"),
];

fn cli_json(bin: &str, data: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = command(bin, data, SETUP).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn keep_alive() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(1).timeout(Duration::from_secs(30)).build().unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    // `cargo test --all-targets` runs benches without `--bench`: a load test has no place there.
    if !std::env::args().any(|a| a == "--bench") {
        println!("device_poll: a load test; run it with `cargo bench --bench device_poll`");
        return;
    }
    let bin = std::env::var("LCA_POLL_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_laventecare-auth").to_owned());
    let codes_wanted = usize::try_from(env_or("LCA_POLL_CODES", 25_000)).unwrap();
    let conns = usize::try_from(env_or("LCA_POLL_CONNS", 32)).unwrap();
    let secs = env_or("LCA_POLL_SECS", 10);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    println!("device_poll: binary {bin}");
    let server = start(&bin, &data, SETUP).await;
    cli_json(&bin, &data, &["tenant", "create", "--slug", "fleet", "--name", "Fleet", "--json"]);
    let client = cli_json(
        &bin,
        &data,
        &[
            "client",
            "create",
            "--tenant",
            "fleet",
            "--name",
            "Thermostat",
            "--grant",
            "device_code",
            "--grant",
            "refresh_token",
            "--public",
            "--json",
        ],
    );
    let client_id = Arc::new(client["client_id"].as_str().unwrap().to_owned());

    // The fleet's pending requests.
    let started = Instant::now();
    let per_conn = codes_wanted.div_ceil(conns);
    let makers = (0..conns).map(|c| {
        let (base, client_id) = (server.base.clone(), client_id.clone());
        let n = per_conn.min(codes_wanted.saturating_sub(c * per_conn));
        tokio::spawn(async move {
            let http = keep_alive();
            let mut mine = Vec::with_capacity(n);
            for _ in 0..n {
                let res = http
                    .post(format!("{base}/device_authorization"))
                    .form(&[("client_id", client_id.as_str()), ("scope", "openid offline_access")])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                let body: serde_json::Value = res.json().await.unwrap();
                mine.push(body["device_code"].as_str().unwrap().to_owned());
            }
            mine
        })
    });
    let shares: Vec<Vec<String>> = join_all(makers).await.into_iter().map(Result::unwrap).collect();
    let made: usize = shares.iter().map(Vec::len).sum();
    println!("device_poll: {made} pending requests made in {:.1} s", started.elapsed().as_secs_f64());

    // The polling.
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let pollers = shares.into_iter().map(|mine| {
        let (base, client_id) = (server.base.clone(), client_id.clone());
        tokio::spawn(async move {
            let http = keep_alive();
            let mut times = Vec::new();
            let mut answers = BTreeMap::<String, u64>::new();
            let mut i = 0;
            while Instant::now() < deadline && !mine.is_empty() {
                let code = &mine[i % mine.len()];
                i += 1;
                let form = [
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("device_code", code.as_str()),
                    ("client_id", client_id.as_str()),
                ];
                let sent = Instant::now();
                let res = http.post(format!("{base}/token")).form(&form).send().await.unwrap();
                let status = res.status().as_u16();
                let body: serde_json::Value = res.json().await.unwrap_or_default();
                times.push(sent.elapsed());
                let answer = body["error"].as_str().map_or_else(|| status.to_string(), str::to_owned);
                *answers.entry(answer).or_default() += 1;
            }
            (times, answers)
        })
    });
    let results: Vec<_> = join_all(pollers).await.into_iter().map(Result::unwrap).collect();
    let took = started.elapsed().as_secs_f64();
    let mut times: Vec<Duration> = results.iter().flat_map(|r| r.0.iter().copied()).collect();
    times.sort();
    let mut answers = BTreeMap::<String, u64>::new();
    for (_, a) in &results {
        for (k, v) in a {
            *answers.entry(k.clone()).or_default() += v;
        }
    }
    let polls = times.len();
    println!();
    println!("| codes | connections | seconds | polls/s | p50 | p99 | answers |");
    println!("|---:|---:|---:|---:|---:|---:|---|");
    println!(
        "| {made} | {conns} | {took:.1} | {:.0} | {:.2} ms | {:.2} ms | {} |",
        polls as f64 / took,
        percentile(&times, 0.50).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        answers.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
    );
    let pending_only = answers.keys().all(|k| k == "authorization_pending" || k == "slow_down");
    assert!(pending_only, "a pending request got another answer: {answers:?}");
    drop(server);
}
