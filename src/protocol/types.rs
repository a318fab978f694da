//! Protocol values as types.

use std::collections::BTreeSet;

/// Scopes this provider knows (OIDC Core §5.4, §11).
pub const SCOPES_SUPPORTED: [&str; 5] = ["openid", "profile", "email", "offline_access", "admin"];

/// A set of scopes (RFC 6749 §3.3: space-delimited, case-sensitive, order irrelevant).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes(BTreeSet<String>);

impl Scopes {
    /// Parses a `scope` parameter. Each scope is `%x21 / %x23-5B / %x5D-7E` (RFC 6749 §3.3).
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.len() > 1000 {
            return Err("the scope parameter is too long");
        }
        let mut set = BTreeSet::new();
        for s in raw.split(' ').filter(|s| !s.is_empty()) {
            if !s.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)) {
                return Err("a scope contains a character that is not allowed");
            }
            set.insert(s.to_owned());
        }
        Ok(Self(set))
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Whether every scope here is in `allowed`.
    pub fn is_subset_of(&self, allowed: &[String]) -> bool {
        self.0.iter().all(|s| allowed.iter().any(|a| a == s))
    }

    /// The scopes of `self` that are also in `other`.
    pub fn intersect(&self, other: &Scopes) -> Scopes {
        Scopes(self.0.intersection(&other.0).cloned().collect())
    }

    /// A set of words already held to the scope syntax (those of a parsed request, names of
    /// ours), without `parse`'s bound on the whole string: a set built from a parsed request
    /// plus a few more words can be longer than the request was.
    pub fn of_words<'a>(words: impl IntoIterator<Item = &'a str>) -> Scopes {
        Scopes(words.into_iter().filter(|w| !w.is_empty()).map(str::to_owned).collect())
    }

    /// The scopes of `self` and of `other`.
    pub fn union(&self, other: &Scopes) -> Scopes {
        Scopes(self.0.union(&other.0).cloned().collect())
    }

    /// The scopes of the APIs `resources` define (`clients::resources`).
    pub fn defined_by(resources: &[crate::db::resource_servers::ResourceServerRow]) -> Scopes {
        Scopes(resources.iter().flat_map(|r| r.scopes.iter().cloned()).collect())
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }
}

impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for s in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(s)?;
            first = false;
        }
        Ok(())
    }
}

/// `prompt` values (OIDC Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
    pub select_account: bool,
}

impl Prompt {
    /// Parses the space-delimited list; `none` with any other value is an error.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let mut p = Prompt::default();
        for v in raw.split(' ').filter(|s| !s.is_empty()) {
            match v {
                "none" => p.none = true,
                "login" => p.login = true,
                "consent" => p.consent = true,
                "select_account" => p.select_account = true,
                _ => return Err("unknown prompt value"),
            }
        }
        if p.none && (p.login || p.consent || p.select_account) {
            return Err("prompt=none cannot be combined with other values");
        }
        Ok(p)
    }
}

/// A PKCE code challenge (RFC 7636 §4.2): 43–128 characters of `[A-Za-z0-9-._~]`.
pub fn valid_pkce_value(s: &str) -> bool {
    (43..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// The S256 challenge of a verifier: BASE64URL(SHA256(ASCII(verifier))) (RFC 7636 §4.2).
pub fn s256_challenge(verifier: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::secrets::sha256(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scope sets ignore order and repeats, and refuse forbidden characters.
    #[test]
    fn scopes() {
        let s = Scopes::parse("openid  email openid").unwrap();
        assert_eq!(s.to_string(), "email openid");
        assert!(Scopes::parse("open\"id").is_err());
        assert!(Scopes::parse("é").is_err());
        assert!(s.is_subset_of(&["openid".into(), "email".into(), "profile".into()]));
        assert!(!s.is_subset_of(&["openid".into()]));
    }

    /// prompt=none stands alone; unknown values are refused.
    #[test]
    fn prompts() {
        assert!(Prompt::parse("login consent").unwrap().login);
        assert!(Prompt::parse("none login").is_err());
        assert!(Prompt::parse("bogus").is_err());
        assert_eq!(Prompt::parse("").unwrap(), Prompt::default());
    }

    /// RFC 7636 Appendix B's example.
    #[test]
    fn pkce_s256() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(valid_pkce_value("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!valid_pkce_value("short"));
    }
}
