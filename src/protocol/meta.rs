//! Who is asking: the request facts the audit log records and the throttles count.
//!
//! The client IP is the TCP peer, unless the peer is one of `LCA_TRUSTED_PROXIES`: then it is
//! the right-most address in the configured forwarding header that is not itself a trusted
//! proxy. Everything left of a trusted proxy's entry was written by whoever talked to that
//! proxy, so only the chain of trusted hops, read from the right, can be believed; a client
//! can put anything at the left end. From any other peer the headers are ignored, so nobody
//! can choose the address their attempts are counted under (ARCHITECTURE.md, "Client address, throttles and rate limits").

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use crate::config::{ProxyConfig, ProxyHeader};
use crate::db::audit::{Actor, Event};
use crate::error::{AppError, REQUEST_ID_HEADER};
use crate::state::AppState;

/// Most forwarding entries read from one request: a chain longer than any real proxy path is
/// cut (from the left, the untrusted end), so a huge header costs nothing.
const MAX_HOPS: usize = 32;

/// Client IP, user agent and request id of a request.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    /// The client (see the module comment); `None` when the peer is unknown.
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl FromRequestParts<AppState> for RequestMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = |name: &str| {
            parts.headers.get(name).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(512).collect::<String>())
        };
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        Ok(Self {
            ip: peer.map(|peer| client_ip(peer, &parts.headers, &state.config.proxies)),
            user_agent: header(header::USER_AGENT.as_str()),
            request_id: header(REQUEST_ID_HEADER),
        })
    }
}

/// The client of a request that came from `peer` (see the module comment).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, proxies: &ProxyConfig) -> IpAddr {
    let peer = peer.to_canonical();
    let trusted = |ip: &IpAddr| proxies.trusted.iter().any(|net| net.contains(ip));
    let Some(kind) = proxies.header.filter(|_| trusted(&peer)) else { return peer };
    let hops = forwarded_hops(headers, kind);
    let mut client = peer;
    for hop in hops.iter().rev() {
        // A hop a trusted proxy wrote but we cannot read ("unknown", an obfuscated name, junk)
        // ends the walk: the last address we could believe is a proxy's, never a guess.
        let Some(ip) = hop else { break };
        client = *ip;
        if !trusted(ip) {
            break;
        }
    }
    client
}

/// The addresses of every forwarding entry, left to right, `None` for one that is not an IP
/// address; at most the right-most [`MAX_HOPS`]. Several header lines form one list
/// (RFC 9110 §5.3), in order.
fn forwarded_hops(headers: &HeaderMap, kind: ProxyHeader) -> Vec<Option<IpAddr>> {
    let name = match kind {
        ProxyHeader::XForwardedFor => "x-forwarded-for",
        ProxyHeader::Forwarded => "forwarded",
    };
    let mut hops: Vec<Option<IpAddr>> = Vec::new();
    for value in headers.get_all(name) {
        // A header that is not visible ASCII is unreadable as a whole: one unreadable hop.
        let Ok(value) = value.to_str() else {
            hops.push(None);
            continue;
        };
        for element in value.split(',') {
            hops.push(match kind {
                ProxyHeader::XForwardedFor => parse_node(element.trim()),
                ProxyHeader::Forwarded => forwarded_for(element),
            });
        }
    }
    let cut = hops.len().saturating_sub(MAX_HOPS);
    hops.split_off(cut)
}

/// The `for=` of one `Forwarded` element (RFC 7239 §4: `;`-separated pairs, names
/// case-insensitive); `None` when it has none, or one that is not an address.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let mut found = None;
    for pair in element.split(';') {
        let (name, value) = pair.split_once('=')?;
        if name.trim().eq_ignore_ascii_case("for") {
            if found.is_some() {
                return None; // Two `for=` in one element: not a well-formed element.
            }
            let value = value.trim();
            // A quoted-string (RFC 7230 §3.2.6); the values we accept never need escapes.
            let value = match value.strip_prefix('"') {
                Some(rest) => rest.strip_suffix('"').filter(|v| !v.contains(['"', '\\']))?,
                None => value,
            };
            found = Some(parse_node(value)?);
        }
    }
    found
}

/// A node (RFC 7239 §6): `192.0.2.43`, `192.0.2.43:47011`, `[2001:db8::1]`,
/// `[2001:db8::1]:4711`, or (in `X-Forwarded-For`) a bare IPv6 address. Ports are dropped;
/// `unknown` and obfuscated identifiers (`_hidden`) are `None`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = node.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || valid_port(after.strip_prefix(':')?)) {
            return None;
        }
        return inside.parse::<std::net::Ipv6Addr>().ok().map(|ip| IpAddr::V6(ip).to_canonical());
    }
    let (host, port) = node.rsplit_once(':')?;
    let ip = host.parse::<std::net::Ipv4Addr>().ok()?;
    valid_port(port).then_some(IpAddr::V4(ip))
}

/// A port, or an obfuscated port (`_abc`), RFC 7239 §6.
fn valid_port(port: &str) -> bool {
    port.parse::<u16>().is_ok()
        || (port.len() > 1
            && port.starts_with('_')
            && port.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
}

impl RequestMeta {
    /// An audit event of this request: `actor` and `target` are (kind, id).
    pub fn event<'a>(
        &self,
        action: &'a str,
        outcome: &'a str,
        actor: (&'a str, Option<String>),
        target: (&'a str, String),
    ) -> Event<'a> {
        Event {
            actor_kind: actor.0,
            actor_id: actor.1,
            target_kind: Some(target.0),
            target_id: Some(target.1),
            action,
            outcome,
            ip: self.ip,
            user_agent: self.user_agent.clone(),
            request_id: self.request_id.clone(),
            details: serde_json::Value::Object(Default::default()),
        }
    }

    /// The actor of this request's events: `kind` and `id` say who, the request where from.
    pub fn actor(&self, kind: &'static str, id: Option<String>) -> Actor {
        Actor { kind, id, ip: self.ip, user_agent: self.user_agent.clone(), request_id: self.request_id.clone() }
    }
}

/// Counts one request on a rate-limit key; 429 with `Retry-After` past `limit` per window.
pub async fn rate_limit(state: &AppState, key: &[u8], limit: i32) -> Result<(), AppError> {
    let mut tx = state.db.unscoped().await?;
    let over = crate::db::rate_limits::hit(&mut tx, key, limit, state.config.rate_limits.window_seconds).await?;
    tx.commit().await?;
    match over {
        Some(retry_after) => Err(AppError::TooManyRequests { retry_after, page: false }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str], header: ProxyHeader) -> ProxyConfig {
        ProxyConfig { trusted: list.iter().map(|s| s.parse().unwrap()).collect(), header: Some(header) }
    }

    fn headers(name: &'static str, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(name, v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Nodes: addresses with and without ports, bracketed IPv6, and what is not an address.
    #[test]
    fn nodes() {
        assert_eq!(parse_node("192.0.2.43"), Some(ip("192.0.2.43")));
        assert_eq!(parse_node("192.0.2.43:47011"), Some(ip("192.0.2.43")));
        assert_eq!(parse_node("[2001:db8::1]:4711"), Some(ip("2001:db8::1")));
        assert_eq!(parse_node("[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(parse_node("2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(parse_node("::ffff:192.0.2.1"), Some(ip("192.0.2.1")), "mapped IPv4 is IPv4");
        for bad in
            ["unknown", "_hidden", "", "[2001:db8::1", "[2001:db8::1]x", "192.0.2.43:99999", "1.2.3", "[1.2.3.4]"]
        {
            assert_eq!(parse_node(bad), None, "{bad}");
        }
    }

    /// `Forwarded` elements: `for=` among other pairs, any case, quoted IPv6 with a port.
    #[test]
    fn forwarded_elements() {
        assert_eq!(forwarded_for("for=192.0.2.60;proto=http;by=203.0.113.43"), Some(ip("192.0.2.60")));
        assert_eq!(forwarded_for(" For=\"[2001:db8:cafe::17]:4711\""), Some(ip("2001:db8:cafe::17")));
        assert_eq!(forwarded_for("proto=https;for=\"198.51.100.1:80\""), Some(ip("198.51.100.1")));
        assert_eq!(forwarded_for("by=203.0.113.43"), None, "no for=");
        assert_eq!(forwarded_for("for=unknown"), None);
        assert_eq!(forwarded_for("for=\"[2001:db8::1]"), None, "unterminated quote");
        assert_eq!(forwarded_for("for=1.2.3.4;for=5.6.7.8"), None, "two for=");
        assert_eq!(forwarded_for("for"), None, "no value");
    }

    /// An untrusted peer's headers are ignored, however they are spelled.
    #[test]
    fn untrusted_peer_keeps_its_address() {
        let cfg = proxies(&["10.0.0.0/8"], ProxyHeader::XForwardedFor);
        let spoof = headers("x-forwarded-for", &["198.51.100.7"]);
        assert_eq!(client_ip(ip("203.0.113.9"), &spoof, &cfg), ip("203.0.113.9"));
        // Nothing trusted at all: headers never count.
        let none = ProxyConfig::default();
        assert_eq!(client_ip(ip("10.1.1.1"), &spoof, &none), ip("10.1.1.1"));
    }

    /// A trusted chain: the right-most address that is not a trusted proxy, whatever the
    /// client put on the left; all-trusted chains end at the left-most proxy.
    #[test]
    fn trusted_chains() {
        let cfg = proxies(&["10.0.0.0/8", "2001:db8:ff::/48"], ProxyHeader::XForwardedFor);
        let peer = ip("10.0.0.1");
        let chain = headers("x-forwarded-for", &["6.6.6.6, 198.51.100.7", "10.2.3.4,10.9.9.9"]);
        assert_eq!(client_ip(peer, &chain, &cfg), ip("198.51.100.7"));
        let v6 = headers("x-forwarded-for", &["2001:db8:1::5, 2001:db8:ff::1"]);
        assert_eq!(client_ip(peer, &v6, &cfg), ip("2001:db8:1::5"));
        let all_proxies = headers("x-forwarded-for", &["10.7.7.7, 10.8.8.8"]);
        assert_eq!(client_ip(peer, &all_proxies, &cfg), ip("10.7.7.7"));
        assert_eq!(client_ip(peer, &HeaderMap::new(), &cfg), peer, "no header: the peer");
        // The other header is not read: a proxy that writes X-Forwarded-For passes a client's
        // own Forwarded through untouched.
        let other = headers("forwarded", &["for=6.6.6.6"]);
        assert_eq!(client_ip(peer, &other, &cfg), peer);

        let cfg = proxies(&["10.0.0.0/8"], ProxyHeader::Forwarded);
        let fwd =
            headers("forwarded", &["for=6.6.6.6, for=\"[2001:db8::1]:4711\";proto=https", "for=10.3.3.3;by=10.0.0.1"]);
        assert_eq!(client_ip(peer, &fwd, &cfg), ip("2001:db8::1"));
        let xff = headers("x-forwarded-for", &["6.6.6.6"]);
        assert_eq!(client_ip(peer, &xff, &cfg), peer, "X-Forwarded-For ignored when Forwarded is configured");
    }

    /// Malformed entries stop the walk at the last address a trusted proxy vouched for.
    #[test]
    fn malformed_headers() {
        let cfg = proxies(&["10.0.0.0/8"], ProxyHeader::XForwardedFor);
        let peer = ip("10.0.0.1");
        for junk in ["not-an-ip", "unknown", "", "1.2.3.4 5.6.7.8", "198.51.100.7,,"] {
            let h = headers("x-forwarded-for", &[junk]);
            assert_eq!(client_ip(peer, &h, &cfg), peer, "{junk:?}");
        }
        // Junk left of a good untrusted address does not matter.
        let h = headers("x-forwarded-for", &["junk, 198.51.100.7, 10.1.1.1"]);
        assert_eq!(client_ip(peer, &h, &cfg), ip("198.51.100.7"));
        // Junk right of it: the trusted proxy that wrote it is the last believable hop.
        let h = headers("x-forwarded-for", &["198.51.100.7, junk, 10.1.1.1"]);
        assert_eq!(client_ip(peer, &h, &cfg), ip("10.1.1.1"));
        // Non-ASCII bytes in the header.
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", axum::http::HeaderValue::from_bytes(b"198.51.100.7\xff").unwrap());
        assert_eq!(client_ip(peer, &h, &cfg), peer);
        // A huge chain: only the right-most MAX_HOPS entries are read.
        let long = vec!["10.4.4.4"; 10_000].join(",");
        let h = headers("x-forwarded-for", &[&format!("198.51.100.7,{long}")]);
        assert_eq!(client_ip(peer, &h, &cfg), ip("10.4.4.4"));
        let cfg = proxies(&["10.0.0.0/8"], ProxyHeader::Forwarded);
        for junk in ["for=", "for=\"", "for=[::1", "garbage", "for=1.2.3.4;for=5.6.7.8", "for=_hidden"] {
            let h = headers("forwarded", &[junk]);
            assert_eq!(client_ip(peer, &h, &cfg), peer, "{junk:?}");
        }
    }
}
