//! `LCA_TRUSTED_PROXIES` (issue #9, item 4): the client of a request from a trusted proxy is
//! the right-most untrusted address of the configured forwarding header; from anyone else the
//! headers are ignored. Audit rows and throttles use that client, IPv6 per /64. The parsing
//! itself (quoting, ports, malformed values, long chains) has unit tests in
//! `src/protocol/meta.rs`; these go through the real server over TCP.

use uuid::Uuid;

use crate::floods::{Served, client_from};
use crate::flow::{PASSWORD, hidden};
use crate::mfa::audit_rows_in as rows;

const PROXY: &str = "127.0.0.2";
const STRANGER: &str = "127.0.0.3";

/// One sign-in from `from` with extra headers; returns the status. A wrong password goes to
/// a fresh unknown address each time, so the account counters never interfere; the right
/// one is ann's.
async fn fail_login(s: &Served, from: &str, headers: &[(&str, &str)], password: &str) -> u16 {
    let email =
        if password == PASSWORD { "ann@example.com".to_owned() } else { format!("{}@example.com", Uuid::now_v7()) };
    let http = client_from(from);
    let page = http.get(format!("{}/login", s.base)).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&page, "csrf");
    let mut req = http.post(format!("{}/login", s.base)).form(&[
        ("csrf", csrf.as_str()),
        ("req", ""),
        ("email", email.as_str()),
        ("password", password),
    ]);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.unwrap().status().as_u16()
}

/// The IPs of the `login.failure` rows, oldest first.
async fn failure_ips(s: &Served) -> Vec<String> {
    rows(&s.t, s.platform, "login.failure").await.into_iter().map(|r| r.ip.unwrap_or_default()).collect()
}

/// With no trusted proxies, or from a peer outside them, forwarding headers are ignored: the
/// audit row has the TCP peer. From the trusted proxy, the right-most untrusted address.
/// (On 310a6ac every row had the peer: there was no way to trust a proxy.)
#[tokio::test]
async fn audit_rows_record_the_real_client() {
    let spoof = [("x-forwarded-for", "198.51.100.66"), ("forwarded", "for=198.51.100.67")];
    let s = Served::start(&[], None).await;
    fail_login(&s, PROXY, &spoof, "wrong wrong wrong").await;
    assert_eq!(failure_ips(&s).await, [PROXY], "no proxies configured: headers ignored");

    let s = Served::start(&[("LCA_TRUSTED_PROXIES", "127.0.0.2/32, 10.0.0.0/8")], None).await;
    fail_login(&s, STRANGER, &spoof, "wrong wrong wrong").await;
    fail_login(&s, PROXY, &[("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.1.2.3")], "wrong wrong wrong").await;
    // Only X-Forwarded-For is read (the default): a client's own Forwarded passes through.
    fail_login(&s, PROXY, &[("forwarded", "for=198.51.100.67")], "wrong wrong wrong").await;
    fail_login(&s, PROXY, &[("x-forwarded-for", "203.0.113.9, garbage")], "wrong wrong wrong").await;
    assert_eq!(failure_ips(&s).await, [STRANGER, "203.0.113.9", PROXY, PROXY]);

    let s = Served::start(&[("LCA_TRUSTED_PROXIES", "127.0.0.2"), ("LCA_PROXY_HEADER", "forwarded")], None).await;
    let forwarded = "for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\";proto=https";
    fail_login(&s, PROXY, &[("forwarded", forwarded), ("x-forwarded-for", "198.51.100.66")], "wrong wrong wrong").await;
    assert_eq!(failure_ips(&s).await, ["2001:db8:cafe::17"]);
    // The signed-in session records the client too.
    let http = client_from(PROXY);
    let page = http.get(format!("{}/login", s.base)).send().await.unwrap().text().await.unwrap();
    let form = [("csrf", hidden(&page, "csrf")), ("req", String::new()), ("email", "ann@example.com".into())];
    let mut form = form.to_vec();
    form.push(("password", PASSWORD.into()));
    let res =
        http.post(format!("{}/login", s.base)).header("forwarded", "for=192.0.2.44").form(&form).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let success = rows(&s.t, s.platform, "login.success").await;
    assert_eq!(success[0].ip.as_deref(), Some("192.0.2.44"));
}

/// An untrusted peer cannot dodge the IP lock by making up a new forwarding header for each
/// attempt: it stays locked under its own address.
#[tokio::test]
async fn spoofed_headers_do_not_dodge_the_ip_lock() {
    let s = Served::start(&[("LCA_TRUSTED_PROXIES", "10.0.0.0/8"), ("LCA_LOGIN_IP_LOCK_AFTER", "2")], None).await;
    for i in 0..2 {
        let xff = format!("203.0.113.{i}");
        fail_login(&s, STRANGER, &[("x-forwarded-for", &xff)], "wrong wrong wrong").await;
    }
    let runs = s.state.passwords.runs();
    for i in 10..15 {
        let xff = format!("203.0.113.{i}");
        fail_login(&s, STRANGER, &[("x-forwarded-for", &xff)], "wrong wrong wrong").await;
    }
    assert_eq!(s.state.passwords.runs(), runs, "locked: no attempt was checked");
    let locks = rows(&s.t, s.platform, "login.ip_lockout").await;
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0].target_id.as_deref(), Some(STRANGER));
}

/// Through a trusted proxy, clients are throttled apart, and IPv6 clients per /64: another
/// address in a locked /64 is locked, the next /64 is not.
#[tokio::test]
async fn throttles_key_the_real_client_and_ipv6_per_64() {
    let s = Served::start(&[("LCA_TRUSTED_PROXIES", "127.0.0.0/8"), ("LCA_LOGIN_IP_LOCK_AFTER", "2")], None).await;
    let via = |client: &'static str| [("x-forwarded-for", client)];
    fail_login(&s, PROXY, &via("2001:db8:1:2::1"), "wrong wrong wrong").await;
    fail_login(&s, PROXY, &via("2001:db8:1:2::2"), "wrong wrong wrong").await;
    let locks = rows(&s.t, s.platform, "login.ip_lockout").await;
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0].target_id.as_deref(), Some("2001:db8:1:2::/64"));

    let runs = s.state.passwords.runs();
    fail_login(&s, PROXY, &via("2001:db8:1:2:ffff:ffff:ffff:fffe"), PASSWORD).await;
    assert_eq!(s.state.passwords.runs(), runs, "the same /64 is locked");
    fail_login(&s, PROXY, &via("2001:db8:1:3::1"), "wrong wrong wrong").await;
    fail_login(&s, PROXY, &via("198.51.100.1"), "wrong wrong wrong").await;
    assert_eq!(s.state.passwords.runs(), runs + 2, "another /64 and an IPv4 client are checked");
    // The proxy itself was never locked: its clients are.
    let ips = failure_ips(&s).await;
    assert!(!ips.iter().any(|ip| ip == PROXY), "{ips:?}");
}
