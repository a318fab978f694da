//! `/metrics` (issue #14, item 1): served by the real binary on `LCA_METRICS_LISTEN` only, in
//! the Prometheus text format, and its counters move with a sign-in, a failed sign-in and a
//! token request; the public listener does not answer it; without the setting there is no
//! metrics listener at all.

use std::collections::BTreeMap;

use laventecare_auth::identity::{self, PasswordHasher};
use laventecare_auth::{clients, tenancy, vocabulary::Role};

use crate::fault::Proc;
use crate::floods::{client_from, login};
use crate::flow::PASSWORD;
use crate::support::{TestDb, binary, free_port};

/// One sample of `text`: the value of the line named `name` whose labels include `labels`.
/// Fails the test if more than one line matches (the labels asked for must pick one series).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let (series_name, series_labels) = match series.split_once('{') {
            Some((n, rest)) => (n, parse_labels(rest.trim_end_matches('}'))),
            None => (series, BTreeMap::new()),
        };
        if series_name == name && labels.iter().all(|(k, v)| series_labels.get(*k).map(String::as_str) == Some(*v)) {
            assert!(found.is_none(), "{name} {labels:?} matches more than one series:\n{text}");
            found = Some(value.parse::<f64>().unwrap());
        }
    }
    found
}

/// `a="x",b="y"` (no escaped quotes in our label values).
fn parse_labels(raw: &str) -> BTreeMap<String, String> {
    raw.split("\",")
        .filter_map(|pair| pair.split_once("=\""))
        .map(|(k, v)| (k.trim_start_matches(',').to_owned(), v.trim_end_matches('"').to_owned()))
        .collect()
}

async fn scrape(http: &reqwest::Client, base: &str) -> String {
    let res = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    res.text().await.unwrap()
}

#[tokio::test]
async fn the_metrics_listener_counts_sign_ins_tokens_and_requests() {
    let t = TestDb::new().await;
    t.tenant("acme").await;
    identity::create_user(&t.db, &PasswordHasher::new(), "ann@example.com", PASSWORD).await.unwrap();
    tenancy::add_member(&t.db, "acme", "ann@example.com", Role::Viewer).await.unwrap();
    let service = clients::create_client(
        &t.db,
        clients::ClientRequest {
            tenant: "acme".into(),
            name: "Jobs".into(),
            grants: vec!["client_credentials".into()],
            role: Some(Role::Viewer),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let secret = service.client_secret.as_ref().unwrap().expose().to_owned();

    let metrics = format!("http://127.0.0.1:{}", free_port());
    let mut cmd = binary();
    t.database_env(&mut cmd)
        .env("LCA_METRICS_LISTEN", metrics.trim_start_matches("http://"))
        .env("LCA_ADMIN_PASSWORD", "an admin password of some length");
    let logs = tempfile::tempdir().unwrap();
    let server = Proc::start(cmd, &logs.path().join("server.log")).await;
    let http = reqwest::Client::new();

    let before = scrape(&http, &metrics).await;
    assert_eq!(sample(&before, "lca_tokens_issued_total", &[("grant", "client_credentials")]), None);
    // Gauges read off the process at the scrape.
    assert_eq!(sample(&before, "lca_db_pool_max_connections", &[]), Some(20.0));
    assert!(sample(&before, "lca_password_hasher_capacity", &[]).unwrap() >= 2.0, "{before}");
    assert_eq!(sample(&before, "lca_password_hasher_queue", &[]), Some(0.0));
    let key_age = sample(&before, "lca_signing_key_age_seconds", &[("alg", "RS256")]).unwrap();
    assert!((0.0..600.0).contains(&key_age), "a key made at this start: {key_age}");

    // The public listener has no /metrics, and the metrics listener nothing else.
    assert_eq!(http.get(format!("{}/metrics", server.base)).send().await.unwrap().status(), 404);
    assert_eq!(http.get(format!("{metrics}/healthz")).send().await.unwrap().status(), 404);
    assert_eq!(http.post(format!("{metrics}/metrics")).send().await.unwrap().status(), 405);

    // One sign-in, one wrong password, one token, one odd path.
    let browser = client_from("127.0.0.1");
    assert_eq!(login(&browser, &server.base, "ann@example.com", PASSWORD).await.0, 303);
    assert_eq!(login(&client_from("127.0.0.1"), &server.base, "ann@example.com", "not the password").await.0, 200);
    let res = http
        .post(format!("{}/token", server.base))
        .basic_auth(&service.client_id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let odd = http.get(format!("{}/no/such/../path-{}", server.base, uuid::Uuid::new_v4())).send().await.unwrap();
    assert_eq!(odd.status(), 404);

    let after = scrape(&http, &metrics).await;
    let count = |name: &str, labels: &[(&str, &str)]| sample(&after, name, labels);
    assert_eq!(count("lca_tokens_issued_total", &[("grant", "client_credentials")]), Some(1.0), "{after}");
    assert_eq!(count("lca_sign_ins_total", &[("step", "password"), ("outcome", "success")]), Some(1.0));
    assert_eq!(count("lca_sign_ins_total", &[("step", "password"), ("outcome", "failure")]), Some(1.0));
    let token_route = [("route", "/token"), ("method", "POST"), ("status", "200")];
    assert_eq!(count("lca_http_requests_total", &token_route), Some(1.0));
    assert_eq!(count("lca_http_request_duration_seconds_count", &token_route), Some(1.0));
    assert!(
        count("lca_http_request_duration_seconds_bucket", &[token_route.as_slice(), &[("le", "+Inf")]].concat())
            .is_some_and(|n| n == 1.0)
    );
    // Two login pages, a redirect and a page again; the odd path as the fallback's, not its own.
    assert_eq!(
        count("lca_http_requests_total", &[("route", "/login"), ("method", "GET"), ("status", "200")]),
        Some(2.0)
    );
    assert_eq!(
        count("lca_http_requests_total", &[("route", "/login"), ("method", "POST"), ("status", "303")]),
        Some(1.0)
    );
    assert_eq!(count("lca_http_requests_total", &[("route", "unmatched"), ("status", "404")]), Some(2.0), "{after}");
    assert!(!after.contains("path-"), "no series named after what a caller sent");
    // No series carries a secret or an address.
    for word in [secret.as_str(), "ann@example.com", "127.0.0.1"] {
        assert!(!after.contains(word), "{word} in the metrics");
    }
    drop(server);
}

/// Without `LCA_METRICS_LISTEN` nothing listens for metrics, and the public listener has no
/// `/metrics` either.
#[tokio::test]
async fn metrics_are_off_by_default() {
    let t = TestDb::new().await;
    let mut cmd = binary();
    t.database_env(&mut cmd).env("LCA_ADMIN_PASSWORD", "an admin password of some length");
    let logs = tempfile::tempdir().unwrap();
    let server = Proc::start(cmd, &logs.path().join("server.log")).await;
    let res = reqwest::get(format!("{}/metrics", server.base)).await.unwrap();
    assert_eq!(res.status(), 404);
    let log = server.log();
    assert!(log.contains("\"serving\"") && !log.contains("serving /metrics"), "no metrics listener: {log}");
    drop(server);
}
