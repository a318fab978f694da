//! DPoP proofs (RFC 9449): checking a proof JWT (§4.3), the thumbprint of its key (`jkt`,
//! RFC 7638) that tokens are bound to, and the server nonces (§8). Written here on josekit,
//! which verifies the signature with the key the proof carries; no crate checks DPoP itself.
//! The replay cache is `db::dpop_proofs`; the token endpoint and UserInfo use this
//! (ARCHITECTURE.md, "DPoP").

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use josekit::jwk::Jwk;
use josekit::jws::{ES256, EdDSA, JwsVerifier, PS256, RS256};
use serde_json::{Map, Value};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::keys::thumbprint;

/// The algorithms a proof may be signed with (discovery's `dpop_signing_alg_values_supported`).
pub const ALGS: [&str; 4] = ["ES256", "EdDSA", "RS256", "PS256"];
/// The longest proof read (a 4096-bit RSA key in the header is about 1 KiB).
const MAX_PROOF_LEN: usize = 8192;
/// How old a proof's `iat` may be, and how far ahead (a device's clock may run a little fast).
pub const MAX_AGE_SECS: i64 = 300;
pub const MAX_AHEAD_SECS: i64 = 60;
/// A nonce's window: one stays valid for this long to two windows.
const NONCE_WINDOW_SECS: i64 = 300;

/// A proof that passed every check but the nonce and the replay cache, which need state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The thumbprint of the proof's key (`cnf.jkt` of what it binds).
    pub jkt: String,
    pub jti: String,
    pub nonce: Option<String>,
}

impl Proof {
    /// The replay cache's key: SHA-256 of the key's thumbprint and the `jti`.
    pub fn replay_key(&self) -> [u8; 32] {
        crate::secrets::sha256(format!("{}\u{0}{}", self.jkt, self.jti).as_bytes())
    }
}

/// Checks a DPoP proof for a request with method `htm` to `htu` (scheme, authority and path;
/// no query or fragment) at `now`; `access_token`: the token it must be bound to (`ath`), at a
/// resource. The error is the `error_description` of `invalid_dpop_proof`.
pub fn check(proof: &str, htm: &str, htu: &str, now: i64, access_token: Option<&str>) -> Result<Proof, &'static str> {
    if proof.len() > MAX_PROOF_LEN {
        return Err("the DPoP proof is too long");
    }
    let mut parts = proof.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err("the DPoP proof is not a signed JWT");
    };
    let header: Map<String, Value> = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("the DPoP proof's header is malformed")?;
    if header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err("the DPoP proof's typ is not dpop+jwt");
    }
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or_default();
    if !ALGS.contains(&alg) {
        return Err("the DPoP proof's algorithm is not supported");
    }
    let Some(Value::Object(jwk)) = header.get("jwk") else {
        return Err("the DPoP proof carries no jwk");
    };
    // A private key in the header would be a key everyone now has.
    if ["d", "p", "q", "dp", "dq", "qi", "k"].iter().any(|m| jwk.contains_key(*m)) {
        return Err("the DPoP proof's jwk is not a public key");
    }
    let key = Jwk::from_map(jwk.clone()).map_err(|_| "the DPoP proof's jwk is malformed")?;
    let verifier: Box<dyn JwsVerifier> = match alg {
        "ES256" => ES256.verifier_from_jwk(&key).map(|v| Box::new(v) as Box<dyn JwsVerifier>),
        "EdDSA" => EdDSA.verifier_from_jwk(&key).map(|v| Box::new(v) as Box<dyn JwsVerifier>),
        "RS256" => RS256.verifier_from_jwk(&key).map(|v| Box::new(v) as Box<dyn JwsVerifier>),
        _ => PS256.verifier_from_jwk(&key).map(|v| Box::new(v) as Box<dyn JwsVerifier>),
    }
    .map_err(|_| "the DPoP proof's jwk does not fit its algorithm")?;
    let claims: Map<String, Value> = match josekit::jwt::decode_with_verifier(proof, verifier.as_ref()) {
        Ok((payload, _)) => payload.into(),
        Err(_) => return Err("the DPoP proof's signature is not valid"),
    };
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let jti = text("jti").filter(|j| !j.is_empty() && j.len() <= 256).ok_or("the DPoP proof has no usable jti")?;
    if text("htm") != Some(htm) {
        return Err("the DPoP proof is for another method");
    }
    if text("htu").map(without_query) != Some(htu) {
        return Err("the DPoP proof is for another URI");
    }
    let iat = claims.get("iat").and_then(Value::as_i64).ok_or("the DPoP proof has no iat")?;
    if iat < now - MAX_AGE_SECS || iat > now + MAX_AHEAD_SECS {
        return Err("the DPoP proof is too old or from the future");
    }
    if let Some(token) = access_token {
        let ath = URL_SAFE_NO_PAD.encode(crate::secrets::sha256(token.as_bytes()));
        if text("ath") != Some(ath.as_str()) {
            return Err("the DPoP proof is not bound to this access token");
        }
    }
    let jkt = thumbprint(jwk).map_err(|_| "the DPoP proof's jwk is malformed")?;
    Ok(Proof { jkt, jti: jti.to_owned(), nonce: text("nonce").map(str::to_owned) })
}

/// A URI without its query and fragment (RFC 9449 §4.3: `htu` is compared without them).
fn without_query(uri: &str) -> &str {
    uri.split(['?', '#']).next().unwrap_or(uri)
}

/// Server nonces (§8) that need no storage: the time window and an HMAC of it under a key
/// derived from the master key, so every instance makes and accepts the same ones. A nonce is
/// accepted in its window and the next.
pub struct Nonces {
    key: [u8; 32],
}

impl Nonces {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn tag(&self, window: i64) -> [u8; 16] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(b"dpop-nonce");
        mac.update(&window.to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&full[..16]);
        tag
    }

    /// The nonce to hand out at `now`.
    pub fn current(&self, now: i64) -> String {
        let window = now.div_euclid(NONCE_WINDOW_SECS);
        let mut bytes = window.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.tag(window));
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Whether `nonce` is one of ours, of this window or the one before.
    pub fn valid(&self, nonce: &str, now: i64) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(nonce) else { return false };
        if bytes.len() != 24 {
            return false;
        }
        let window = i64::from_be_bytes(bytes[..8].try_into().unwrap_or_default());
        let current = now.div_euclid(NONCE_WINDOW_SECS);
        (window == current || window == current - 1) && bool::from(self.tag(window).ct_eq(&bytes[8..]))
    }
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Nonces([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use josekit::jws::JwsHeader;
    use josekit::jwt::JwtPayload;

    fn proof(claims: Value, header_typ: &str) -> (String, String) {
        let pair = ES256.generate_key_pair().unwrap();
        let mut header = JwsHeader::new();
        header.set_token_type(header_typ);
        let public = pair.to_jwk_public_key();
        header.set_jwk(public.clone());
        let payload = JwtPayload::from_map(claims.as_object().unwrap().clone()).unwrap();
        let signer = ES256.signer_from_jwk(&pair.to_jwk_private_key()).unwrap();
        let jwt = josekit::jwt::encode_with_signer(&payload, &header, &signer).unwrap();
        (jwt, thumbprint(public.as_ref()).unwrap())
    }

    const HTU: &str = "https://id.example.com/token";

    #[test]
    fn a_good_proof_and_what_each_check_refuses() {
        let now = 1_800_000_000;
        let good = serde_json::json!({ "jti": "j1", "htm": "POST", "htu": HTU, "iat": now });
        let (jwt, jkt) = proof(good.clone(), "dpop+jwt");
        let ok = check(&jwt, "POST", HTU, now, None).unwrap();
        assert_eq!((ok.jkt, ok.jti.as_str(), ok.nonce), (jkt, "j1", None));
        assert!(check(&jwt, "GET", HTU, now, None).is_err(), "method");
        assert!(check(&jwt, "POST", "https://id.example.com/userinfo", now, None).is_err(), "uri");
        assert!(check(&jwt, "POST", HTU, now + MAX_AGE_SECS + 1, None).is_err(), "too old");
        assert!(check(&jwt, "POST", HTU, now - MAX_AHEAD_SECS - 1, None).is_err(), "from the future");
        assert!(check(&jwt, "POST", HTU, now, Some("token")).is_err(), "no ath");
        let (wrong_typ, _) = proof(good.clone(), "JWT");
        assert!(check(&wrong_typ, "POST", HTU, now, None).is_err(), "typ");
        let mut tampered: Vec<&str> = jwt.split('.').collect();
        let other = URL_SAFE_NO_PAD
            .encode(br#"{"jti":"j2","htm":"POST","htu":"https://id.example.com/token","iat":1800000000}"#);
        tampered[1] = &other;
        assert!(check(&tampered.join("."), "POST", HTU, now, None).is_err(), "signature");
        let with_query = serde_json::json!({ "jti": "j3", "htm": "POST", "htu": format!("{HTU}?x=1"), "iat": now });
        assert!(check(&proof(with_query, "dpop+jwt").0, "POST", HTU, now, None).is_ok(), "htu without its query");
        let ath = URL_SAFE_NO_PAD.encode(crate::secrets::sha256(b"token"));
        let bound = serde_json::json!({ "jti": "j4", "htm": "GET", "htu": HTU, "iat": now, "ath": ath });
        assert!(check(&proof(bound, "dpop+jwt").0, "GET", HTU, now, Some("token")).is_ok());
        for junk in ["", "a.b", "a.b.c.d", &"x".repeat(9000)] {
            assert!(check(junk, "POST", HTU, now, None).is_err());
        }
    }

    #[test]
    fn nonces() {
        let nonces = Nonces::new([7; 32]);
        let now = 1_800_000_000;
        let n = nonces.current(now);
        assert!(nonces.valid(&n, now));
        assert!(nonces.valid(&n, now + NONCE_WINDOW_SECS), "the next window too");
        assert!(!nonces.valid(&n, now + 2 * NONCE_WINDOW_SECS), "not later");
        assert!(!Nonces::new([8; 32]).valid(&n, now), "another key's");
        assert!(!nonces.valid("not-a-nonce", now));
    }
}
