//! Back-channel logout delivery (OpenID Connect Back-Channel Logout 1.0; ARCHITECTURE.md,
//! "Back-channel logout"). What ends a user's sessions writes notices in its own transaction
//! (`db::logout_notices`); this worker, beside the janitor in `serve`, claims the due ones,
//! signs a logout token for each and POSTs it to the client's `backchannel_logout_uri`, so the
//! user's request never waits for a relying party. A failed delivery is tried again after 5
//! s, 30 s, 2 min, 10 min, 1 h and 6 h, then given up and audited.
//!
//! Outbound requests are the server reaching into the network at a URI a tenant chose, so
//! they go only to public addresses unless `LCA_BACKCHANNEL_ALLOW_PRIVATE` says otherwise:
//! our resolver drops every other address (which also defeats DNS rebinding: the address
//! checked is the one connected to), literal addresses are checked before sending, and
//! redirects are not followed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Map, json};
use uuid::Uuid;

use crate::db::logout_notices::{self, Notice};
use crate::db::{self, audit};
use crate::state::AppState;
use crate::tokens::{SigningAlg, TokenType};

/// The event a logout token carries (§2.4).
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How often the worker looks for due notices.
pub const POLL: Duration = Duration::from_secs(1);
/// How long a relying party has to answer one delivery.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How long a claimed notice is the claiming worker's (longer than any delivery takes).
const LEASE_SECS: i64 = 60;
/// Notices claimed per tenant per round.
const BATCH: i64 = 50;
/// The wait before each retry; past the last, the notice is given up.
const BACKOFF_SECS: [i64; 6] = [5, 30, 120, 600, 3600, 6 * 3600];
/// How long a logout token is valid (§2.4 asks for a short `exp`).
const TOKEN_SECS: i64 = 120;

/// Starts the worker; it stops when `stop` completes.
pub fn spawn(
    state: AppState,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = client(state.config.backchannel_allow_private);
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                _ = tick.tick() => {
                    if let Err(e) = deliver_due(&state, &http).await {
                        tracing::warn!(error = %e, "back-channel logout round failed");
                    }
                }
            }
        }
    })
}

/// The HTTP client of deliveries: no redirects, a short timeout, our resolver.
pub fn client(allow_private: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .dns_resolver(Arc::new(Resolver { allow_private }))
        .user_agent("LaventeCare-Auth back-channel logout")
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// One round: every tenant with notices due, each notice claimed, delivered and recorded.
/// Returns how many were delivered.
pub async fn deliver_due(state: &AppState, http: &reqwest::Client) -> anyhow::Result<u64> {
    let mut tx = state.db.unscoped().await?;
    let tenants = logout_notices::due_tenants(&mut tx).await?;
    tx.commit().await?;
    let mut delivered = 0;
    for tenant in tenants {
        let mut tx = state.db.tenant(tenant).await?;
        let notices = logout_notices::claim(&mut tx, BATCH, LEASE_SECS).await?;
        tx.commit().await?;
        let mut posts = tokio::task::JoinSet::new();
        for notice in notices {
            let (state, http) = (state.clone(), http.clone());
            posts.spawn(async move {
                let outcome = deliver(&state, &http, &notice).await;
                (notice, outcome)
            });
        }
        while let Some(joined) = posts.join_next().await {
            let Ok((notice, outcome)) = joined else { continue };
            let mut tx = state.db.tenant(tenant).await?;
            match outcome {
                Ok(()) => {
                    logout_notices::delivered(&mut tx, notice.id).await?;
                    delivered += 1;
                }
                Err(why) => record_failure(&mut tx, &notice, &why).await?,
            }
            tx.commit().await?;
        }
    }
    Ok(delivered)
}

/// A failed attempt: retried later, or given up and audited after the last.
async fn record_failure(tx: &mut db::Tx, notice: &Notice, why: &str) -> Result<(), sqlx::Error> {
    let attempt = usize::try_from(notice.attempts).unwrap_or(usize::MAX);
    let next = BACKOFF_SECS.get(attempt).map(|secs| Utc::now() + chrono::Duration::seconds(*secs));
    logout_notices::failed(tx, notice.id, why, next).await?;
    if next.is_none() {
        let event = audit::Event {
            actor_kind: "system",
            action: "backchannel_logout.abandoned",
            outcome: "failure",
            target_kind: Some("client"),
            target_id: Some(notice.client_id.clone()),
            details: json!({ "user_id": notice.user_id, "sid": notice.sid, "attempts": notice.attempts + 1, "error": why }),
            ..Default::default()
        };
        audit::append(tx, &event).await?;
    }
    Ok(())
}

/// Signs and POSTs one logout token (§2.5): `logout_token` in a form; any 2xx is delivered.
async fn deliver(state: &AppState, http: &reqwest::Client, notice: &Notice) -> Result<(), String> {
    let url = reqwest::Url::parse(&notice.uri).map_err(|_| "the URI does not parse".to_owned())?;
    if let Some(ip) = literal_ip(&url)
        && !(state.config.backchannel_allow_private || is_public(ip))
    {
        return Err("the URI names an address that is not public".into());
    }
    let token = logout_token(state, notice).map_err(|e| format!("signing failed: {e}"))?;
    let res = http.post(url).form(&[("logout_token", token)]).send().await.map_err(|e| describe(&e))?;
    if res.status().is_success() { Ok(()) } else { Err(format!("answered {}", res.status().as_u16())) }
}

/// A transport error in words, without the URL (the audit log has the client).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect (or resolves to no public address)".into()
    } else {
        "the request failed".into()
    }
}

/// The logout token of a notice (§2.4): `iss`, `aud` (the client), `iat`, `exp`, `jti`,
/// `sub`, `sid` when the session is known, and the event; never a `nonce`. Signed with the
/// client's algorithm, `typ: logout+jwt`.
pub fn logout_token(state: &AppState, notice: &Notice) -> anyhow::Result<String> {
    let now = Utc::now().timestamp();
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(state.config.issuer));
    claims.insert("aud".into(), json!(notice.client_id));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + TOKEN_SECS));
    claims.insert("jti".into(), json!(Uuid::now_v7().to_string()));
    claims.insert("sub".into(), json!(notice.user_id.to_string()));
    if let Some(sid) = &notice.sid {
        claims.insert("sid".into(), json!(sid));
    }
    claims.insert("events".into(), json!({ EVENT: {} }));
    let alg = notice.signing_alg.as_deref().and_then(SigningAlg::from_name).unwrap_or(SigningAlg::Rs256);
    state.keys.sign(alg, TokenType::LogoutToken, &claims)
}

fn literal_ip(url: &reqwest::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

/// Whether an address is on the public internet: not loopback, private (RFC 1918, RFC 4193),
/// shared (RFC 6598), link-local, unspecified, multicast, broadcast or documentation. Written
/// here because `IpAddr::is_global` is not stable; an IPv4-mapped IPv6 address is judged as
/// the IPv4 one.
pub fn is_public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

/// The resolver of deliveries: the system's, keeping only public addresses (unless allowed).
struct Resolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = found.into_iter().filter(|a| allow_private || is_public(a.ip())).collect();
            if kept.is_empty() {
                return Err("the host resolves to no public address".into());
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses() {
        for public in ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8", "::ffff:8.8.8.8"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
    }
}
