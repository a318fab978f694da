//! Redirect URIs. They are registered and compared as exact strings (OAuth 2.1 §4.1.1,
//! RFC 9700 §4.1.3): no normalisation, no wildcards, so the original string is what is kept.

use url::{Host, Url};

/// A registered redirect (or post-logout redirect) URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri(String);

impl RedirectUri {
    /// Accepts an absolute URI without a fragment (RFC 6749 §3.1.2) that is one of:
    /// - `https://…`;
    /// - `http://` on a loopback host, for native apps and development (RFC 8252 §7.3);
    /// - a private-use scheme with a dot in it, `com.example.app:/cb` (RFC 8252 §7.1).
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.len() > 2000 {
            return Err("too long");
        }
        if raw.trim() != raw || raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("must not contain spaces or control characters");
        }
        let url = Url::parse(raw).map_err(|_| "not an absolute URI")?;
        if url.fragment().is_some() || raw.contains('#') {
            return Err("must not have a fragment");
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry credentials");
        }
        // Compared as exact strings, so the string must be the URL a browser goes to: a
        // backslash, an upper-case scheme or host, a dot segment (`..`, `%2e%2e`), a default
        // port, `https:host` would each be read differently from how they are written.
        if url.as_str() != raw {
            return Err(
                "must be written in normal form (lower-case scheme and host, no default port, no dot segments or backslashes)",
            );
        }
        match url.scheme() {
            "https" => {
                if url.host().is_none() {
                    return Err("needs a host");
                }
            }
            "http" => {
                let loopback = match url.host() {
                    Some(Host::Domain(d)) => d == "localhost",
                    Some(Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(Host::Ipv6(ip)) => ip.is_loopback(),
                    None => false,
                };
                if !loopback {
                    return Err("http is only allowed for a loopback host; use https");
                }
            }
            "javascript" | "data" | "file" | "vbscript" | "about" | "blob" => {
                return Err("scheme not allowed");
            }
            scheme if scheme.contains('.') => {}
            _ => {
                return Err("use https, loopback http, or a private-use scheme such as com.example.app");
            }
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// https, loopback http and private-use schemes pass; everything else is refused.
    #[test]
    fn redirect_uris() {
        for ok in [
            "https://app.example.com/callback",
            "https://app.example.com/cb?x=1",
            "http://127.0.0.1:3000/cb",
            "http://localhost/cb",
            "http://[::1]:8000/cb",
            "com.example.app:/oauth2redirect",
        ] {
            assert_eq!(RedirectUri::parse(ok).map(|u| u.into_string()), Ok(ok.to_owned()), "{ok}");
        }
        for bad in [
            "",
            "/relative",
            "https://app.example.com/cb#frag",
            "http://app.example.com/cb",
            "javascript:alert(1)",
            "myapp:/cb",
            "https://user:pw@app.example.com/cb",
            " https://app.example.com/cb",
            "https://app.example.com/c b",
            "https://app.example.com\\@evil.example/cb",
            "https://APP.example.com/cb",
            "https://app.example.com/a/%2e%2e/cb",
            "https://app.example.com:443/cb",
            "https:app.example.com/cb",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad}");
        }
    }
}
