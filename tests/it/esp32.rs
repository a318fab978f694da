//! The ESP32 example's device logic (`examples/esp32/device_flow.cpp`), compiled with the
//! host's g++ and run through its host shim (`examples/esp32/host/shim.cpp`) over loopback
//! HTTP. Must-show 1 runs against the release binary on its embedded default, provisioned
//! through its CLI: pairing (pending, slow_down, approval by the person in Chromium), refresh,
//! a telemetry call accepted by the satellite example's verifier, revocation by the admin side
//! and "re-pair needed". The lost refresh reply, with the client's grace window on (no
//! re-pairing) and off (re-pairing), runs against the in-process provider.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use laventecare_auth::clients;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

use crate::chrome::Chrome;
use crate::device::{confirm_page, decide};
use crate::flow::{Browser, PASSWORD, Provider};
use crate::release_server;
use crate::satellite_api::{Policy, Verifier, telemetry_base};
use crate::support::{json_out, run_with_stdin};

/// The shim, compiled once per test run.
fn shim() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/esp32");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("esp32-shim");
        let status = std::process::Command::new("g++")
            .args(["-std=c++17", "-Wall", "-Wextra", "-Werror", "-O1", "-o"])
            .arg(&out)
            .arg(dir.join("host/shim.cpp"))
            .arg(dir.join("device_flow.cpp"))
            // The host's DPoP key is OpenSSL's (libssl-dev, which .ci/run installs).
            .arg("-lcrypto")
            .status()
            .expect("g++ is needed to build the ESP32 example's host shim (.ci/run installs it)");
        assert!(status.success(), "the ESP32 device logic does not compile with g++");
        out
    })
}

/// A running shim: its stdin and its event lines.
struct Device {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    storage: PathBuf,
    _dir: tempfile::TempDir,
}

impl Device {
    /// The shim for the provider at `issuer`, as the public client `client_id`.
    fn start(issuer: &str, client_id: &str, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("nvs.txt");
        let mut child = tokio::process::Command::new(shim())
            .arg(issuer)
            .arg(client_id)
            .arg(&storage)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Self { child, lines, storage, _dir: dir }
    }

    async fn send(&mut self, command: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{command}\n").as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
    }

    /// The next event line; panics after 60 s.
    async fn next(&mut self) -> String {
        let line = tokio::time::timeout(Duration::from_secs(60), self.lines.next_line()).await;
        line.expect("the device logic said nothing for 60 s").unwrap().expect("the shim ended")
    }

    /// Reads events until one starting with `event`; returns it and the ones before it.
    async fn until(&mut self, event: &str) -> (String, Vec<String>) {
        let mut before = Vec::new();
        loop {
            let line = self.next().await;
            if line.starts_with(event) {
                return (line, before);
            }
            assert!(!line.starts_with("FAILED"), "{line} (after {before:?})");
            before.push(line);
        }
    }

    fn stored_refresh_token(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.storage).unwrap_or_default();
        text.lines().find_map(|l| l.strip_prefix("refresh_token=")).map(str::to_owned)
    }
}

/// A public device client of `acme` with the device and refresh grants, ES256 tokens and the
/// lost-reply window given.
async fn device_client(p: &Provider, grace: u32) -> String {
    p.client(clients::ClientRequest {
        name: "Acme Thermostat".into(),
        grants: vec!["device_code".into(), "refresh_token".into()],
        public: true,
        signing_alg: Some("ES256".into()),
        refresh_grace_secs: grace,
        ..Default::default()
    })
    .await
    .client_id
}

/// Asks the device to pair; returns the `verification_uri_complete` and the user code it shows,
/// after checking that the link points at `issuer`'s device page.
async fn codes(issuer: &str, device: &mut Device) -> (String, String) {
    device.send("pair").await;
    let (codes, _) = device.until("CODES").await;
    let uri = codes.split(" uri=").nth(1).unwrap().to_owned();
    assert!(uri.starts_with(&format!("{issuer}/device?user_code=")), "{codes}");
    let user_code = codes.split("user_code=").nth(1).unwrap().split(' ').next().unwrap().to_owned();
    (uri, user_code)
}

/// Pairs the device: its code is approved by the seeded user as soon as it is shown.
async fn pair(p: &Provider, device: &mut Device) {
    let (uri, _) = codes(&p.issuer, device).await;
    let browser = Browser::new(p);
    let page = confirm_page(&browser, &serde_json::json!({ "verification_uri_complete": uri }), &p.email).await;
    decide(&browser, &page, true).await;
    device.until("TOKENS").await;
}

/// The person opens the link the device shows in Chromium, signs in as `email`, checks the
/// code and approves.
async fn approve_in_chromium(uri: &str, email: &str, user_code: &str) {
    let chrome = Chrome::start().await;
    chrome.c().goto(uri).await.unwrap();
    chrome.wait_for("input#email").await.send_keys(email).await.unwrap();
    chrome.wait_for("input#password").await.send_keys(PASSWORD).await.unwrap();
    chrome.wait_for("button[type=submit]").await.click().await.unwrap();
    chrome.wait_for("#device-continue").await.click().await.unwrap();
    assert_eq!(chrome.wait_for("#device-user-code").await.text().await.unwrap(), user_code);
    chrome.wait_for("#device-approve").await.click().await.unwrap();
    chrome.wait_for_title("Device connected · LaventeCare").await;
    chrome.close().await;
}

/// The release binary's CLI on `data` (the running server's cluster), as `--json`.
fn admin(bin: &Path, data: &Path, args: &[&str], stdin: &str) -> serde_json::Value {
    let mut cmd = release_server::command(bin.to_str().unwrap(), data, &[]);
    cmd.args(args).arg("--json");
    json_out(&run_with_stdin(cmd, stdin))
}

/// Must-show 1: the flow from pairing to "re-pair needed", against the release server,
/// approved in Chromium and revoked through the CLI.
#[tokio::test]
async fn the_device_logic_pairs_refreshes_reports_and_is_told_to_pair_again_after_a_revoke() {
    let bin = release_server::release_binary().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = release_server::start(bin.to_str().unwrap(), &data, &[]).await;
    let issuer = server.base.clone();
    admin(&bin, &data, &["tenant", "create", "--slug", "acme", "--name", "Acme"], "");
    let email = "ann@example.com";
    admin(&bin, &data, &["user", "create", "--email", email, "--password-stdin"], &format!("{PASSWORD}\n"));
    admin(&bin, &data, &["member", "add", "--tenant", "acme", "--email", email, "--role", "editor"], "");
    let client = admin(
        &bin,
        &data,
        &[
            "client",
            "create",
            "--tenant",
            "acme",
            "--name",
            "Acme Thermostat",
            "--public",
            "--grant",
            "device_code",
            "--grant",
            "refresh_token",
            "--signing-alg",
            "ES256",
            "--refresh-grace-secs",
            "60",
        ],
        "",
    );
    let client_id = client["client_id"].as_str().unwrap().to_owned();

    let mut device = Device::start(&issuer, &client_id, &["--poll-fast"]);
    assert_eq!(device.next().await, "READY paired=no");
    let (uri, user_code) = codes(&issuer, &mut device).await;
    // Polled before the person acts: pending, then slow_down for polling faster than `interval`.
    let (pending, before) = device.until("PENDING").await;
    assert!(before.is_empty() && pending == "PENDING", "{before:?} {pending}");
    let (slow, between) = device.until("SLOW_DOWN").await;
    assert!(between.is_empty(), "{between:?}");
    assert_eq!(slow, "SLOW_DOWN interval=10");
    approve_in_chromium(&uri, email, &user_code).await;
    device.until("TOKENS").await;
    let first = device.stored_refresh_token().expect("the refresh token is stored");

    device.send("refresh").await;
    let (refreshed, retries) = device.until("REFRESHED").await;
    assert!(retries.is_empty() && refreshed.starts_with("REFRESHED expires_in="), "{retries:?} {refreshed}");
    assert_ne!(device.stored_refresh_token().unwrap(), first, "the rotated token replaced the first");

    // The satellite API accepts the device's access token (tid, roles, aud = the device client).
    let policy =
        Policy { issuer: issuer.clone(), audiences: vec![client_id.clone()], tenant_id: None, role: "viewer".into() };
    let api = telemetry_base(Verifier::new(policy, format!("{issuer}/jwks"))).await;
    device.send(&format!("telemetry {api}/telemetry {{\"celsius\":21.5}}")).await;
    assert_eq!(device.until("TELEMETRY").await.0, "TELEMETRY 202");

    // The admin side revokes the device; its next refresh tells it to pair again.
    let listed = admin(&bin, &data, &["device", "list", "--tenant", "acme"], "");
    let family = listed["devices"][0]["family_id"].as_str().unwrap().to_owned();
    assert!(admin(&bin, &data, &["device", "revoke", "--tenant", "acme", &family], "")["revoked"] == true);
    device.send("refresh").await;
    let (repair, _) = device.until("REPAIR_NEEDED").await;
    assert_eq!(repair, "REPAIR_NEEDED");
    assert_eq!(device.stored_refresh_token(), None, "the refused token is erased");
    device.send(&format!("telemetry {api}/telemetry {{}}")).await;
    assert_eq!(device.until("TELEMETRY").await.0, "TELEMETRY 401");
    device.send("quit").await;
    drop(server);
}

/// Must-show 3, window on: the reply of the first refresh is lost; the device presents the same
/// token again, gets the same successor, and carries on without re-pairing.
#[tokio::test]
async fn a_lost_refresh_reply_is_survived_with_the_grace_window() {
    let p = Provider::start().await;
    let client_id = device_client(&p, 60).await;
    let mut device = Device::start(&p.issuer, &client_id, &["--drop-refresh-reply", "1"]);
    assert_eq!(device.next().await, "READY paired=no");
    pair(&p, &mut device).await;

    device.send("refresh").await;
    let (refreshed, before) = device.until("REFRESHED").await;
    assert_eq!(before.first().map(String::as_str), Some("DROPPED_REPLY status=200"), "{before:?}");
    assert!(before.iter().any(|l| l.starts_with("RETRY_LATER")), "{before:?}");
    assert!(refreshed.starts_with("REFRESHED"));
    // The successor it finally got works: the family is intact.
    device.send("refresh").await;
    let (again, before) = device.until("REFRESHED").await;
    assert!(before.is_empty(), "{before:?} {again}");
    let mut owner = p.t.owner().await;
    let revoked: i64 = sqlx::query_scalar("SELECT count(*) FROM token_families WHERE revoked_at IS NOT NULL")
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert_eq!(revoked, 0);
    device.send("quit").await;
}

/// Must-show 3, window off (the default): the retry after the lost reply is reuse, the family
/// ends, and the device must be paired again.
#[tokio::test]
async fn a_lost_refresh_reply_needs_re_pairing_without_the_grace_window() {
    let p = Provider::start().await;
    let client_id = device_client(&p, 0).await;
    let mut device = Device::start(&p.issuer, &client_id, &["--drop-refresh-reply", "1"]);
    assert_eq!(device.next().await, "READY paired=no");
    pair(&p, &mut device).await;

    device.send("refresh").await;
    let (repair, before) = device.until("REPAIR_NEEDED").await;
    assert_eq!(before.first().map(String::as_str), Some("DROPPED_REPLY status=200"), "{before:?}");
    assert_eq!(repair, "REPAIR_NEEDED");
    assert_eq!(device.stored_refresh_token(), None);
    device.send("quit").await;
}

/// Issue 15 (DPoP for devices): the device logic opts in with a P-256 key (`--dpop`). It pairs
/// and refreshes with proofs (answering the provider's nonce request), its tokens are bound
/// (`token_type` DPoP, the family holds the key's thumbprint), and its stolen refresh token is
/// refused without the key, spending nothing. The satellite API takes the bound access token
/// with a proof of the key, refuses it as a bearer token, and refuses a replayed proof. The
/// cost of a proof on the host is printed (the figure the README quotes).
#[tokio::test]
async fn the_device_logic_binds_its_tokens_with_dpop() {
    let p = Provider::start().await;
    let client_id = device_client(&p, 0).await;
    let mut device = Device::start(&p.issuer, &client_id, &["--dpop"]);
    assert_eq!(device.next().await, "READY paired=no");
    pair(&p, &mut device).await;
    device.send("token-type").await;
    assert_eq!(device.until("TOKEN_TYPE").await.0, "TOKEN_TYPE DPoP");
    let mut owner = p.t.owner().await;
    let bound: Vec<Option<String>> =
        sqlx::query_scalar("SELECT dpop_jkt FROM token_families").fetch_all(&mut owner).await.unwrap();
    assert!(matches!(bound.as_slice(), [Some(jkt)] if jkt.len() == 43), "{bound:?}");

    // The refresh token alone, without the key: refused, and the device's next refresh works.
    let stolen = device.stored_refresh_token().unwrap();
    let res = p
        .http()
        .post(p.url("/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", stolen.as_str()), ("client_id", client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"], "invalid_grant");
    device.send("refresh").await;
    let (refreshed, before) = device.until("REFRESHED").await;
    assert!(before.is_empty(), "{before:?} {refreshed}");
    assert_ne!(device.stored_refresh_token().unwrap(), stolen);

    // The satellite API: a proof of the key with the bound token.
    let policy =
        Policy { issuer: p.issuer.clone(), audiences: vec![client_id.clone()], tenant_id: None, role: "editor".into() };
    let api = telemetry_base(Verifier::new(policy, format!("{}/jwks", p.issuer))).await;
    device.send(&format!("telemetry {api}/telemetry {{\"celsius\":19.0}}")).await;
    assert_eq!(device.until("TELEMETRY").await.0, "TELEMETRY 202");

    // The same proof again: refused (each proof works once).
    device.send(&format!("replay {api}/telemetry {{\"celsius\":19.0}}")).await;
    assert_eq!(device.until("REPLAY").await.0, "REPLAY 401");
    // The access token as a bearer token (what a thief holding only the token can do): refused.
    device.send("access-token").await;
    let (line, _) = device.until("ACCESS_TOKEN").await;
    let token = line.strip_prefix("ACCESS_TOKEN ").unwrap().to_owned();
    let res = reqwest::Client::new()
        .post(format!("{api}/telemetry"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "celsius": 19.0 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // What a proof costs the host (the board's figure is in examples/esp32/README.md).
    device.send("dpop-cost 50").await;
    let (cost, _) = device.until("DPOP_SIGN_US").await;
    let us: i64 = cost.strip_prefix("DPOP_SIGN_US ").unwrap().parse().unwrap();
    assert!(us > 0, "{cost}");
    eprintln!("ES256 DPoP proof signature on this host: median {us} µs of 50");
    device.send("quit").await;
}
