//! Signed JWTs in compact serialisation (RFC 7519, RFC 7515 §7.1): signing with a given key,
//! checking a signature, and the claim checks a caller applies afterwards.
//!
//! Which key signs or verifies is [`KeyStore`](super::KeyStore)'s business; this module only
//! refuses what no key may accept (`alg: none`, unknown algorithms, the wrong `typ`).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use josekit::JoseError;
use josekit::jws::{JwsHeader, JwsSigner, JwsVerifier};
use josekit::jwt::JwtPayload;
use serde_json::{Map, Value};

/// Larger tokens are refused before any parsing (ours are well under 2 KB).
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The `typ` header of a token we issue (RFC 7515 §4.1.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenType {
    /// `JWT`: ID tokens (OIDC Core §2 does not require a `typ`; RFC 7519 §5.1 suggests this).
    IdToken,
    /// `at+jwt`: access tokens (RFC 9068 §2.1), so they cannot pass for ID tokens.
    AccessToken,
    /// `logout+jwt`: back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0
    /// §2.4), so they cannot pass for either.
    LogoutToken,
}

impl TokenType {
    pub fn header_value(self) -> &'static str {
        match self {
            TokenType::IdToken => "JWT",
            TokenType::AccessToken => "at+jwt",
            TokenType::LogoutToken => "logout+jwt",
        }
    }

    /// Whether a received `typ` is this type. Media types compare case-insensitively and may
    /// omit `application/` (RFC 7515 §4.1.9); RFC 9068 §4 requires `at+jwt` on access tokens,
    /// while an ID token may have no `typ` at all.
    fn accepts(self, typ: Option<&str>) -> bool {
        let Some(typ) = typ else {
            return self == TokenType::IdToken;
        };
        let typ = typ.to_ascii_lowercase();
        let typ = typ.strip_prefix("application/").unwrap_or(&typ);
        typ == self.header_value().to_ascii_lowercase()
    }
}

/// Why a token was refused. The messages are ours and say nothing about keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the token is not a well-formed signed JWT")]
    Malformed,
    /// `none`, HMAC, or anything else we never sign with (RFC 8725 §3.1).
    #[error("the token's algorithm is not accepted")]
    UnsupportedAlgorithm,
    #[error("the token's signing key is unknown")]
    UnknownKey,
    #[error("the token's algorithm does not match its key")]
    AlgorithmMismatch,
    #[error("the token is not of the expected type")]
    WrongType,
    #[error("the token's signature is not valid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by someone else")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
    #[error("the token lacks the {0} claim")]
    MissingClaim(&'static str),
}

/// The members of a JOSE header (RFC 7515 §4.1) that choose and check the key, read before
/// the signature is checked: treat them as untrusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub alg: String,
    pub kid: Option<String>,
    pub typ: Option<String>,
}

/// Reads the header of a compact JWS without checking anything else.
pub fn decode_header(token: &str) -> Result<Header, VerifyError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(VerifyError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(VerifyError::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD.decode(header).map_err(|_| VerifyError::Malformed)?;
    let map: Map<String, Value> = serde_json::from_slice(&bytes).map_err(|_| VerifyError::Malformed)?;
    let string = |name: &str| -> Result<Option<String>, VerifyError> {
        match map.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(VerifyError::Malformed),
        }
    };
    Ok(Header { alg: string("alg")?.ok_or(VerifyError::Malformed)?, kid: string("kid")?, typ: string("typ")? })
}

/// Signs `claims` with `signer`, whose algorithm and kid go into the header with `typ`.
pub(crate) fn sign(signer: &dyn JwsSigner, typ: TokenType, claims: &Map<String, Value>) -> anyhow::Result<String> {
    let mut header = JwsHeader::new();
    header.set_token_type(typ.header_value());
    // from_map checks the registered claims' types (exp a number, aud a string or list…).
    let payload = JwtPayload::from_map(claims.clone())?;
    Ok(josekit::jwt::encode_with_signer(&payload, &header, signer)?)
}

/// Checks the signature of `token` with `verifier` and returns its claims. josekit also
/// checks that the header's `alg` and `kid` are the verifier's and refuses unknown `crit`
/// members (RFC 7515 §4.1.11).
pub(crate) fn verify_signature(token: &str, verifier: &dyn JwsVerifier) -> Result<Map<String, Value>, VerifyError> {
    match josekit::jwt::decode_with_verifier(token, verifier) {
        Ok((payload, _header)) => Ok(payload.into()),
        Err(JoseError::InvalidSignature(_)) => Err(VerifyError::BadSignature),
        Err(_) => Err(VerifyError::Malformed),
    }
}

/// Whether the header fits a token of `typ`.
pub(crate) fn check_type(header: &Header, typ: TokenType) -> Result<(), VerifyError> {
    if typ.accepts(header.typ.as_deref()) { Ok(()) } else { Err(VerifyError::WrongType) }
}

/// The claim checks after the signature (RFC 7519 §4.1, RFC 9068 §4, OIDC Core §3.1.3.7).
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// `iss` must be exactly this.
    pub issuer: &'a str,
    /// When set, `aud` (a string or a list) must contain it.
    pub audience: Option<&'a str>,
    pub now: DateTime<Utc>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
}

/// Checks `iss`, `exp` (required), `nbf` (if present) and `aud` (if asked for).
pub fn check_claims(claims: &Map<String, Value>, expected: &Expected<'_>) -> Result<(), VerifyError> {
    let now = expected.now.timestamp();
    let leeway = i64::try_from(expected.leeway.as_secs()).unwrap_or(i64::MAX);
    match claims.get("iss").and_then(Value::as_str) {
        Some(iss) if iss == expected.issuer => {}
        Some(_) => return Err(VerifyError::WrongIssuer),
        None => return Err(VerifyError::MissingClaim("iss")),
    }
    let exp = numeric_date(claims, "exp")?.ok_or(VerifyError::MissingClaim("exp"))?;
    // "The current date/time MUST be before the expiration date/time" (RFC 7519 §4.1.4).
    if now >= exp.saturating_add(leeway) {
        return Err(VerifyError::Expired);
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && now < nbf.saturating_sub(leeway)
    {
        return Err(VerifyError::NotYetValid);
    }
    if let Some(audience) = expected.audience {
        let ok = match claims.get("aud") {
            Some(Value::String(aud)) => aud == audience,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
            _ => return Err(VerifyError::MissingClaim("aud")),
        };
        if !ok {
            return Err(VerifyError::WrongAudience);
        }
    }
    Ok(())
}

/// A NumericDate claim (RFC 7519 §2) in whole seconds.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, VerifyError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).map(Some).ok_or(VerifyError::Malformed)
        }
        Some(_) => Err(VerifyError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn expected(now: i64) -> Expected<'static> {
        Expected {
            issuer: "https://id.example.com",
            audience: Some("client-1"),
            now: DateTime::from_timestamp(now, 0).unwrap(),
            leeway: Duration::from_secs(30),
        }
    }

    /// iss, exp, nbf and aud are each enforced, with the leeway on the times.
    #[test]
    fn claim_checks() {
        let good = claims(json!({
            "iss": "https://id.example.com", "aud": ["other", "client-1"],
            "exp": 1_000, "nbf": 500,
        }));
        assert_eq!(check_claims(&good, &expected(900)), Ok(()));
        assert_eq!(check_claims(&good, &expected(1_029)), Ok(()));
        assert_eq!(check_claims(&good, &expected(1_030)), Err(VerifyError::Expired));
        assert_eq!(check_claims(&good, &expected(470)), Ok(()));
        assert_eq!(check_claims(&good, &expected(469)), Err(VerifyError::NotYetValid));
        let mut e = expected(900);
        e.issuer = "https://evil.example.com";
        assert_eq!(check_claims(&good, &e), Err(VerifyError::WrongIssuer));
        let mut e = expected(900);
        e.audience = Some("client-2");
        assert_eq!(check_claims(&good, &e), Err(VerifyError::WrongAudience));
        let no_exp = claims(json!({"iss": "https://id.example.com", "aud": "client-1"}));
        assert_eq!(check_claims(&no_exp, &expected(0)), Err(VerifyError::MissingClaim("exp")));
    }

    /// typ comparison follows RFC 7515 §4.1.9 and keeps the two token kinds apart.
    #[test]
    fn token_types() {
        let at = TokenType::AccessToken;
        assert!(at.accepts(Some("at+jwt")));
        assert!(at.accepts(Some("application/AT+JWT")));
        assert!(!at.accepts(Some("JWT")));
        assert!(!at.accepts(None));
        let id = TokenType::IdToken;
        assert!(id.accepts(Some("JWT")));
        assert!(id.accepts(None));
        assert!(!id.accepts(Some("at+jwt")));
    }

    /// Headers that are not base64url JSON objects with a string alg are malformed.
    #[test]
    fn malformed_headers() {
        let enc = |s: &str| URL_SAFE_NO_PAD.encode(s);
        assert_eq!(decode_header("a.b"), Err(VerifyError::Malformed));
        assert_eq!(decode_header("a.b.c.d"), Err(VerifyError::Malformed));
        let no_alg = format!("{}.e30.sig", enc(r#"{"kid":"k"}"#));
        assert_eq!(decode_header(&no_alg), Err(VerifyError::Malformed));
        let num_alg = format!("{}.e30.sig", enc(r#"{"alg":1}"#));
        assert_eq!(decode_header(&num_alg), Err(VerifyError::Malformed));
        let ok = format!("{}.e30.sig", enc(r#"{"alg":"ES256","kid":"k","typ":"JWT"}"#));
        let header = decode_header(&ok).unwrap();
        assert_eq!(header.alg, "ES256");
        assert_eq!(header.kid.as_deref(), Some("k"));
    }

    /// Randomised (issue 11): `decode_header` never panics on any string, and a real signed
    /// token with one character changed (header, payload or signature) never verifies.
    /// `LCA_FUZZ_CASES` raises the number of cases (default 256).
    mod fuzz {
        use std::sync::OnceLock;

        use proptest::prelude::*;

        use super::*;
        use crate::tokens::keys::{PrivateKey, SigningAlg};

        fn config() -> ProptestConfig {
            let cases = std::env::var("LCA_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
            ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(cases) }
        }

        /// One signed token per algorithm, and the key that verifies it.
        fn signed() -> &'static [(PrivateKey, String)] {
            static TOKENS: OnceLock<Vec<(PrivateKey, String)>> = OnceLock::new();
            TOKENS.get_or_init(|| {
                SigningAlg::ALL
                    .into_iter()
                    .map(|alg| {
                        let key = PrivateKey::generate(alg).unwrap();
                        let claims = claims(json!({"iss": "https://id.example.com", "sub": "u", "exp": 2_000_000_000}));
                        let token = sign(key.signer().unwrap().as_ref(), TokenType::AccessToken, &claims).unwrap();
                        (key, token)
                    })
                    .collect()
            })
        }

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn decode_header_never_panics(raw in prop_oneof![any::<String>(), "[A-Za-z0-9_.-]{0,300}"]) {
                let _ = decode_header(&raw);
            }

            #[test]
            fn mutated_tokens_are_refused(which in 0usize..3, at in any::<prop::sample::Index>(), by in 0x21u8..0x7f) {
                let (key, token) = &signed()[which];
                let verifier = key.verifier().unwrap();
                prop_assert!(verify_signature(token, verifier.as_ref()).is_ok());
                let mut bytes = token.clone().into_bytes();
                let i = at.index(bytes.len());
                prop_assume!(bytes[i] != by);
                bytes[i] = by;
                let mutated = String::from_utf8(bytes).unwrap();
                let verified = verify_signature(&mutated, verifier.as_ref());
                prop_assert!(verified.is_err(), "mutated token accepted: {} -> {}", token, mutated);
            }
        }
    }
}
