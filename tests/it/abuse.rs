//! Hostile input against the real router over a socket (issue 11, "Abuse tests"): every case is
//! a clean 4xx (never a 5xx, never a reset where an answer is possible), its body carries no
//! internal text, and nothing is stored.
//!
//! The cases, one file per kind: [`size`] (oversized bodies, headers and parameters),
//! [`decoding`] (malformed and invalid UTF-8 forms, queries and JSON), [`repeated`]
//! (RFC 6749 §3.1 duplicates), [`redirects`] (redirect URIs at registration and authorization,
//! open redirects at login, consent and logout), [`injection`] (CR/LF and header tricks),
//! [`nul`] (NUL in every text field that reaches PostgreSQL).
//!
//! Cases already shown in process elsewhere are referenced, not repeated: `http::
//! control_characters_are_refused_at_the_edge` (NUL/CR/LF in `req`, login email, token code,
//! revoke token, device user code), `http::strict_decoding_rejects_with_our_words`,
//! `acr::malformed_claims_are_refused_and_unknown_acr_values_ignored` (the `claims` bound),
//! `api_resources::refused_clients_leave_nothing_behind` (unknown fields and wrong types at
//! `POST /clients`), `cli::client_create_refuses_nonsense` (a fragment at registration).

mod decoding;
mod injection;
mod nul;
mod redirects;
mod repeated;
mod size;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::flow::Provider;

/// An answer read off the socket as bytes, so a split header would show.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    /// The header lines, exactly as sent (without the status line).
    pub head: Vec<String>,
    pub body: String,
}

impl Raw {
    /// The values of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.head
            .iter()
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect()
    }
}

/// Writes `request` as it is on a new connection and reads the answer until the server closes.
/// A write cut short by the server (it answered early) is fine; a read that fails is a reset
/// where an answer was possible, and fails the test.
pub async fn raw(p: &Provider, request: &[u8]) -> Raw {
    let addr = p.issuer.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Whether the whole request was written does not matter: the server may answer and close
    // before reading all of an oversized request.
    let _ = stream.write_all(request).await;
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut bytes)).await;
    match read {
        Ok(Ok(_)) => {}
        // A reset after the answer arrived in full still let the caller read it.
        Ok(Err(_)) if !bytes.is_empty() => {}
        Ok(Err(e)) => panic!("the connection failed before an answer: {e}"),
        Err(_) => panic!("no answer within 20 s"),
    }
    parse(&bytes)
}

fn parse(bytes: &[u8]) -> Raw {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no complete head in {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{status_line}"));
    let head: Vec<String> = lines.map(str::to_owned).collect();
    let mut raw = Raw { status, head, body: String::new() };
    let chunked = raw.header("transfer-encoding").iter().any(|v| v.eq_ignore_ascii_case("chunked"));
    raw.body = if chunked { dechunk(body) } else { body.to_owned() };
    raw
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A `GET` of `target` with the given extra header lines, closing the connection after.
pub fn get_request(p: &Provider, target: &str, headers: &str) -> Vec<u8> {
    let host = p.issuer.trim_start_matches("http://");
    format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n").into_bytes()
}

/// A form `POST` of `body` to `target`, with the given extra header lines.
pub fn post_request(p: &Provider, target: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let host = p.issuer.trim_start_matches("http://");
    let mut out = format!(
        "POST {target} HTTP/1.1\r\nHost: {host}\r\n{headers}Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// Words of the libraries and runtime underneath that must never reach a caller.
const INTERNALS: [&str; 16] = [
    "sqlx",
    "serde",
    "axum",
    "hyper",
    "postgres",
    "panicked",
    "/src/",
    ".rs:",
    "tokio",
    "invalid type",
    "missing field",
    "unknown field",
    "at line ",
    "invalid byte sequence",
    "error returned from database",
    "0x00",
];

/// The answer is a 4xx whose body names nothing of the machinery.
pub fn assert_clean(what: &str, status: u16, body: &str) {
    assert!((400..500).contains(&status), "{what}: {status} {body}");
    let lower = body.to_lowercase();
    for word in INTERNALS {
        assert!(!lower.contains(word), "{what}: {word:?} leaked: {body}");
    }
}

/// [`assert_clean`] for a raw answer.
pub fn assert_clean_raw(what: &str, raw: &Raw) {
    assert_clean(what, raw.status, &raw.body);
}

/// Sends a reqwest request and returns (status, Location, body).
pub async fn send(req: reqwest::RequestBuilder) -> (u16, Option<String>, String) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let location = res.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
    (status, location, res.text().await.unwrap())
}

/// The tables whose rows an abusive request must not add to or change the count of.
const TABLES: [&str; 14] = [
    "tenants",
    "users",
    "memberships",
    "clients",
    "authorization_codes",
    "token_families",
    "refresh_tokens",
    "access_tokens",
    "consents",
    "device_grants",
    "backup_codes",
    "recovery_links",
    "signing_keys",
    "audit_events",
];

/// Row counts of [`TABLES`] (as the database owner, which sees every tenant's rows).
pub async fn stored(p: &Provider) -> Vec<(&'static str, i64)> {
    let mut conn = p.t.owner().await;
    let mut out = Vec::new();
    for table in TABLES {
        // The table names are the constants above.
        let sql = sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}"));
        let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&mut conn).await.unwrap();
        out.push((table, n));
    }
    out
}

/// The number of browser sessions stored (an authorization request that waits is one).
pub async fn sessions(p: &Provider) -> i64 {
    let mut conn = p.t.owner().await;
    sqlx::query_as::<_, (i64,)>("SELECT count(*) FROM browser_sessions").fetch_one(&mut conn).await.unwrap().0
}

/// A cookie-keeping client signed in as the seeded user (no redirects followed), and the CSRF
/// token of its session, for requests a [`crate::flow::Browser`] cannot write (raw bytes).
pub async fn signed_in(p: &Provider) -> (reqwest::Client, String) {
    let http = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = http.get(p.url("/login")).send().await.unwrap().text().await.unwrap();
    let csrf = crate::flow::hidden(&page, "csrf");
    let form = [("csrf", csrf.as_str()), ("req", ""), ("email", &p.email), ("password", crate::flow::PASSWORD)];
    let res = http.post(p.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 303, "signed in");
    let account = http.get(p.url("/account")).send().await.unwrap().text().await.unwrap();
    (http, crate::flow::hidden(&account, "csrf"))
}
