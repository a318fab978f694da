//! High-entropy secrets: generation, hashing at rest, constant-time comparison, and a wrapper
//! whose `Debug` cannot leak them into logs.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a caller presents (passwords, codes, tokens, client secrets) is decoded into
/// `secrecy`'s `SecretString`, whose `Debug` prints `[REDACTED]`, so a logged request struct
/// cannot show one. [`exposed`] reads an optional one.
pub use secrecy::{ExposeSecret, SecretString};

/// The text of an optional presented secret.
pub fn exposed(secret: &Option<SecretString>) -> Option<&str> {
    secret.as_ref().map(ExposeSecret::expose_secret)
}

/// For the request types' tests: decodes `form` (urlencoded) as `T` and asserts that its
/// `Debug` shows none of `secrets`.
#[cfg(test)]
#[track_caller]
pub(crate) fn assert_debug_redacts<T: std::fmt::Debug + serde::de::DeserializeOwned>(form: &str, secrets: &[&str]) {
    let decoded: T = serde_urlencoded::from_str(form).unwrap_or_else(|e| panic!("{form}: {e}"));
    let shown = format!("{decoded:?}");
    for secret in secrets {
        assert!(!shown.contains(secret), "{secret} shown by Debug: {shown}");
    }
    assert!(shown.contains("REDACTED"), "{shown}");
}

/// A secret value (client secret, code, token). `Debug` prints `Secret([redacted])`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A fresh secret of 256 random bits, base64url without padding (43 characters).
    pub fn generate() -> Self {
        Self(URL_SAFE_NO_PAD.encode(random_bytes::<32>()))
    }

    /// Wraps a secret received from a caller.
    pub fn from_presented(value: String) -> Self {
        Self(value)
    }

    /// The secret itself, to show it once or to send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 stored in place of the secret. A fast hash is enough: the secret has 256
    /// bits of entropy, so there is nothing to brute-force.
    pub fn hash(&self) -> [u8; 32] {
        sha256(self.0.as_bytes())
    }

    /// Compares with a stored hash in constant time.
    pub fn matches(&self, stored_hash: &[u8]) -> bool {
        self.hash().ct_eq(stored_hash).into()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS generator failing means the machine cannot do cryptography at all; there is no
    // safe way to continue.
    #[expect(clippy::expect_used, reason = "no secure fallback exists")]
    getrandom::fill(&mut buf).expect("the operating system's random number generator failed");
    buf
}

/// A random identifier of 128 bits as 32 lowercase hex characters (client ids).
pub fn random_id() -> String {
    hex::encode(random_bytes::<16>())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A generated secret carries 256 bits and is never printed by `Debug`.
    #[test]
    fn secret_is_long_and_redacted() {
        let s = Secret::generate();
        assert_eq!(s.expose().len(), 43);
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert_ne!(Secret::generate(), s);
    }

    /// The stored hash matches only the same secret.
    #[test]
    fn hash_matches_only_itself() {
        let s = Secret::generate();
        let h = s.hash();
        assert!(s.matches(&h));
        assert!(!Secret::generate().matches(&h));
        assert!(!s.matches(&h[..31]));
    }
}
