//! `openid-client` (npm) as a real relying party: a pushed authorization request (RFC 9126),
//! the code grant with PKCE, UserInfo and a refresh, with and without DPoP (RFC 9449), each
//! checked by the library
//! (`tests/rp/openid_client.mjs`). The package is installed with `npm ci` from
//! `tests/rp/package-lock.json` into a temporary folder, so the repository holds no
//! `node_modules`; the suite needs Node.js 20 or later and npm (`.ci/run` installs them where
//! they are missing).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::flow::{Browser, PASSWORD, Provider, REDIRECT};

/// A folder with `tests/rp` installed (`npm ci`).
fn installed() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let rp = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rp");
    for file in ["package.json", "package-lock.json", "openid_client.mjs"] {
        std::fs::copy(rp.join(file), dir.path().join(file)).unwrap();
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--silent"])
        .current_dir(dir.path())
        .output()
        .expect("npm is needed for the openid-client tests (apt-get install nodejs npm)");
    assert!(out.status.success(), "npm ci: {}", String::from_utf8_lossy(&out.stderr));
    dir
}

fn script(dir: &Path) -> PathBuf {
    dir.join("openid_client.mjs")
}

/// Runs the relying party against `p` (with DPoP when `dpop`), signing in through the
/// browser when it asks; its final answer.
async fn run(p: &Provider, dpop: bool) -> Value {
    let dir = tokio::task::spawn_blocking(installed).await.unwrap();
    let mut child = Command::new("node")
        .arg(script(dir.path()))
        .env("ISSUER", &p.issuer)
        .env("CLIENT_ID", &p.client_id)
        .env("CLIENT_SECRET", &p.client_secret)
        .env("REDIRECT_URI", REDIRECT)
        .env("DPOP", if dpop { "1" } else { "0" })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node is needed for the openid-client tests");
    let mut stdin = child.stdin.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let _ = tx.send(serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}")));
        }
    });
    let first = rx.recv().await.expect("the relying party said nothing");
    let url = first["authorization_url"].as_str().unwrap_or_else(|| panic!("{first}")).to_owned();
    assert!(url.starts_with(&p.url("/authorize?")), "{url}");
    assert!(url.contains("request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3A"), "pushed: {url}");
    assert!(!url.contains("code_challenge"), "nothing but client_id and request_uri: {url}");

    let step = Browser::new(p).sign_in_through(&url, &p.email, PASSWORD).await;
    writeln!(stdin, "{}", step.left()).unwrap();
    let done = rx.recv().await.expect("no answer from the relying party");
    assert!(done.get("error").is_none(), "openid-client refused: {done}");
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success());
    done
}

/// The library pushes the request, the browser signs in through the `request_uri`, and the
/// library redeems the code, validates the ID token, reads UserInfo and refreshes.
#[tokio::test]
async fn openid_client_pushes_its_request_and_completes_the_code_flow() {
    let p = Provider::start().await;
    let done = run(&p, false).await;
    let pushed: i64 = {
        let mut conn = p.t.owner().await;
        sqlx::query_scalar("SELECT count(*) FROM pushed_authorization_requests").fetch_one(&mut conn).await.unwrap()
    };
    assert_eq!(pushed, 1);
    assert_eq!(done["claims"]["email"].as_str(), None, "scope claims go to UserInfo");
    assert_eq!(done["claims"]["aud"], p.client_id.as_str());
    assert_eq!(done["claims"]["tenant"], "acme");
    assert_eq!(done["userinfo"]["email"], "ann@example.com");
    assert_eq!(done["scope"], "email offline_access openid");
    assert_eq!(done["refreshed_scope"], "email offline_access openid");
    assert_eq!(done["token_type"], "bearer", "the library lower-cases it");
}

/// The same with DPoP: the library's proofs (and its answer to `use_dpop_nonce`) at the token
/// endpoint and UserInfo; the tokens are bound to its key.
#[tokio::test]
async fn openid_client_with_dpop_gets_bound_tokens() {
    let p = Provider::start().await;
    let done = run(&p, true).await;
    assert_eq!((done["token_type"].as_str(), done["refreshed_token_type"].as_str()), (Some("dpop"), Some("dpop")));
    assert_eq!(done["userinfo"]["email"], "ann@example.com", "UserInfo took the DPoP-bound token");
    let at = crate::flow::claims(done["access_token"].as_str().unwrap());
    assert!(at["cnf"]["jkt"].as_str().is_some_and(|j| j.len() == 43), "{at}");
    let mut conn = p.t.owner().await;
    let bound: Option<String> =
        sqlx::query_scalar("SELECT dpop_jkt FROM token_families").fetch_one(&mut conn).await.unwrap();
    assert_eq!(bound.as_deref(), at["cnf"]["jkt"].as_str(), "the refresh tokens are bound to the same key");
}
