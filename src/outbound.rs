//! Outbound HTTP to addresses a tenant or a caller chose (ARCHITECTURE.md, "Outbound
//! requests"): back-channel logout deliveries and client ID metadata documents. Such a request
//! is the server reaching into the network on someone else's word, so it goes only to public
//! addresses unless the caller's setting allows private ones: [`Resolver`] drops every other
//! address (which also defeats DNS rebinding: the address checked is the one connected to),
//! literal addresses are checked with [`literal_ip`] and [`is_public`] before sending, and
//! redirects are never followed. Imports nothing of the crate.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// An HTTP client that follows no redirect, gives up after `timeout`, resolves names through
/// [`Resolver`] and ignores `HTTP(S)_PROXY`: a proxy would resolve and connect on its own,
/// past the resolver's check.
pub fn client(allow_private: bool, timeout: Duration, user_agent: &'static str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .dns_resolver(Arc::new(Resolver { allow_private }))
        .user_agent(user_agent)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// A transport error in words, without library text or the URL (for logs and audit rows).
pub fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect (or resolves to no public address)".into()
    } else {
        "the request failed".into()
    }
}

/// The address a URL names literally (`https://10.0.0.1/`, `https://[::1]/`), which no
/// resolver sees.
pub fn literal_ip(url: &reqwest::Url) -> Option<IpAddr> {
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

/// The system's resolver, keeping only public addresses (unless allowed).
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
