//! One signing key: its algorithm, its RFC 7638 `kid`, its published public JWK, and its
//! private part sealed under the master key for the database.
//!
//! Keys are made and used through josekit, which signs through OpenSSL, not through the `rsa`
//! crate (RUSTSEC-2023-0071, a timing side channel).

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::{Jwk, KeyPair as _};
use josekit::jws::{ES256, EdDSA, JwsSigner, JwsVerifier, RS256};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::master_key::MasterKey;
use crate::tokens::seal;

/// Modulus size of new RS256 keys (RFC 7518 §3.3 asks for at least 2048 bits).
const RSA_BITS: u32 = 2048;

/// What the sealed private keys are bound to, besides their kid (domain separation from other
/// secrets under the same master key).
const SEAL_PURPOSE: &str = "signing_keys.private_enc";

/// A JWS signing algorithm we issue tokens with (RFC 7518 §3.1, RFC 8037 §3.1).
/// RS256 is always offered (OIDC Core §15.1); ES256 and EdDSA give small tokens to
/// microcontrollers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SigningAlg {
    #[serde(rename = "RS256")]
    Rs256,
    #[serde(rename = "ES256")]
    Es256,
    /// Ed25519 only.
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl SigningAlg {
    /// Every algorithm, in the order the JWKS lists their keys.
    pub const ALL: [SigningAlg; 3] = [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa];

    /// The JOSE name (`alg` header and JWK member).
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Es256 => "ES256",
            SigningAlg::EdDsa => "EdDSA",
        }
    }

    /// The algorithm of a JOSE name; `None` for anything else (including `none`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == name)
    }
}

impl std::fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A private signing key. `Debug` prints only its kid and algorithm.
pub struct PrivateKey {
    alg: SigningAlg,
    kid: String,
    /// The private JWK (public members included).
    jwk: Jwk,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("jwk", &"[redacted]")
            .finish()
    }
}

impl PrivateKey {
    /// A fresh key (RSA 2048, P-256 or Ed25519). RSA generation takes tens of milliseconds:
    /// call it off the async threads.
    pub fn generate(alg: SigningAlg) -> anyhow::Result<Self> {
        let jwk = match alg {
            SigningAlg::Rs256 => RS256.generate_key_pair(RSA_BITS)?.to_jwk_key_pair(),
            SigningAlg::Es256 => ES256.generate_key_pair()?.to_jwk_key_pair(),
            SigningAlg::EdDsa => EdDSA.generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)?.to_jwk_key_pair(),
        };
        Self::from_jwk(alg, jwk)
    }

    /// Wraps a private JWK, computing its kid.
    fn from_jwk(alg: SigningAlg, mut jwk: Jwk) -> anyhow::Result<Self> {
        check_key_type(alg, &jwk)?;
        let kid = thumbprint(jwk.as_ref())?;
        jwk.set_key_id(kid.clone());
        jwk.set_algorithm(alg.as_str());
        jwk.set_key_use("sig");
        Ok(Self { alg, kid, jwk })
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWK to publish (RFC 7517 §4): the public members plus `kid`, `alg` and `use`,
    /// which josekit's `to_public_key` leaves out.
    pub fn public_jwk(&self) -> anyhow::Result<Map<String, Value>> {
        let mut public = self.jwk.to_public_key()?;
        public.set_key_use("sig");
        public.set_algorithm(self.alg.as_str());
        public.set_key_id(self.kid.clone());
        Ok(public.into())
    }

    /// The private JWK itself, for tests and for nothing that logs.
    pub fn expose_jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// The private JWK sealed for the `private_enc` column, bound to this key's kid.
    pub fn seal(&self, master_key: &MasterKey) -> anyhow::Result<Vec<u8>> {
        let plaintext = serde_json::to_vec(self.jwk.as_ref())?;
        seal::seal(master_key, SEAL_PURPOSE, &self.kid, &plaintext)
    }

    /// Opens a `private_enc` value of the row `kid`. Fails if the master key is another one,
    /// the ciphertext belongs to another row, or the key inside is not the `alg` key whose
    /// thumbprint is `kid`. Errors name the kid only, never key material.
    pub fn unseal(master_key: &MasterKey, alg: SigningAlg, kid: &str, sealed: &[u8]) -> anyhow::Result<Self> {
        let plaintext = seal::open(master_key, SEAL_PURPOSE, kid, sealed).with_context(|| {
            format!(
                "cannot decrypt signing key {kid}: was it created under another master key \
                 (LCA_MASTER_KEY)?"
            )
        })?;
        // No error source from here on: parser messages could quote the plaintext.
        let map: Map<String, Value> = serde_json::from_slice(&plaintext)
            .map_err(|_| anyhow!("signing key {kid}: the decrypted key is not a JSON object"))?;
        let jwk = Jwk::from_map(map).map_err(|_| anyhow!("signing key {kid}: the decrypted key is not a JWK"))?;
        let key = Self::from_jwk(alg, jwk)
            .map_err(|_| anyhow!("signing key {kid}: the decrypted key is not an {alg} key"))?;
        if key.kid != kid {
            bail!("signing key {kid}: the decrypted key has another thumbprint");
        }
        Ok(key)
    }

    /// A josekit signer that puts this key's kid in the JWS header.
    pub(crate) fn signer(&self) -> anyhow::Result<Box<dyn JwsSigner>> {
        let fail = |_| anyhow!("signing key {}: not usable for {}", self.kid, self.alg);
        Ok(match self.alg {
            SigningAlg::Rs256 => Box::new(RS256.signer_from_jwk(&self.jwk).map_err(fail)?),
            SigningAlg::Es256 => Box::new(ES256.signer_from_jwk(&self.jwk).map_err(fail)?),
            SigningAlg::EdDsa => Box::new(EdDSA.signer_from_jwk(&self.jwk).map_err(fail)?),
        })
    }

    /// A josekit verifier for this key's public part, expecting its kid in the header.
    pub(crate) fn verifier(&self) -> anyhow::Result<Box<dyn JwsVerifier>> {
        let public = Jwk::from_map(self.public_jwk()?)?;
        Ok(match self.alg {
            SigningAlg::Rs256 => Box::new(RS256.verifier_from_jwk(&public)?),
            SigningAlg::Es256 => Box::new(ES256.verifier_from_jwk(&public)?),
            SigningAlg::EdDsa => Box::new(EdDSA.verifier_from_jwk(&public)?),
        })
    }
}

/// The key type and curve each algorithm must use (RFC 7518 §3.3–3.4, RFC 8037 §3.1).
fn check_key_type(alg: SigningAlg, jwk: &Jwk) -> anyhow::Result<()> {
    let ok = match alg {
        SigningAlg::Rs256 => jwk.key_type() == "RSA",
        SigningAlg::Es256 => jwk.key_type() == "EC" && jwk.curve() == Some("P-256"),
        SigningAlg::EdDsa => jwk.key_type() == "OKP" && jwk.curve() == Some("Ed25519"),
    };
    if !ok {
        bail!("the key is not an {alg} key");
    }
    Ok(())
}

/// The RFC 7638 JWK thumbprint: SHA-256 over the JSON object of the key type's required
/// members (§3.2: RSA `e, kty, n`; EC `crv, kty, x, y`; RFC 8037 §2 OKP `crv, kty, x`), in
/// lexicographic order and without whitespace (§3.3), base64url-encoded without padding.
///
/// The JSON is written by hand: serde_json's map keeps insertion order in this build (josekit
/// turns on `preserve_order`), so its serialisation is not canonical.
pub fn thumbprint(jwk: &Map<String, Value>) -> anyhow::Result<String> {
    let kty = jwk.get("kty").and_then(Value::as_str).context("the JWK has no kty")?;
    let members: &[&str] = match kty {
        "RSA" => &["e", "kty", "n"],
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        _ => bail!("no thumbprint for key type {kty:?}"),
    };
    let mut json = String::from("{");
    for (i, name) in members.iter().enumerate() {
        let value =
            jwk.get(*name).and_then(Value::as_str).with_context(|| format!("the JWK has no string member {name:?}"))?;
        if i > 0 {
            json.push(',');
        }
        json.push_str(&serde_json::to_string(name)?);
        json.push(':');
        json.push_str(&serde_json::to_string(value)?);
    }
    json.push('}');
    Ok(URL_SAFE_NO_PAD.encode(crate::secrets::sha256(json.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The thumbprint of the RFC 7638 §3.1 example key is the one the RFC gives.
    #[test]
    fn thumbprint_matches_rfc7638_example() {
        let jwk: Map<String, Value> = serde_json::from_str(
            r#"{
              "kty": "RSA",
              "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
              "e": "AQAB",
              "alg": "RS256",
              "kid": "2011-04-29"
            }"#,
        )
        .unwrap();
        assert_eq!(thumbprint(&jwk).unwrap(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    /// Members outside the required set (kid, alg, use, private members) do not change it.
    #[test]
    fn thumbprint_ignores_optional_members() {
        let key = PrivateKey::generate(SigningAlg::Es256).unwrap();
        let public = key.public_jwk().unwrap();
        assert_eq!(thumbprint(&public).unwrap(), key.kid());
        assert_eq!(thumbprint(key.expose_jwk().as_ref()).unwrap(), key.kid());
    }

    /// The published JWK carries kid, alg and use, and no private member.
    #[test]
    fn public_jwk_has_kid_alg_use_and_no_private_part() {
        for alg in SigningAlg::ALL {
            let key = PrivateKey::generate(alg).unwrap();
            let public = key.public_jwk().unwrap();
            assert_eq!(public["kid"], key.kid());
            assert_eq!(public["alg"], alg.as_str());
            assert_eq!(public["use"], "sig");
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(!public.contains_key(private), "{alg}: {private} published");
            }
        }
    }

    /// Debug output names the key but never shows it.
    #[test]
    fn debug_is_redacted() {
        let key = PrivateKey::generate(SigningAlg::EdDsa).unwrap();
        let d = key.expose_jwk().parameter("d").unwrap().as_str().unwrap();
        let printed = format!("{key:?}");
        assert!(printed.contains(key.kid()));
        assert!(!printed.contains(d));
    }

    /// A sealed key opens only with its own kid, under its own master key.
    #[test]
    fn sealed_key_is_bound_to_kid_and_master_key() {
        let master = seal::master_key_for_tests(7);
        let key = PrivateKey::generate(SigningAlg::Es256).unwrap();
        let sealed = key.seal(&master).unwrap();
        let opened = PrivateKey::unseal(&master, SigningAlg::Es256, key.kid(), &sealed).unwrap();
        assert_eq!(opened.kid(), key.kid());
        let other = PrivateKey::generate(SigningAlg::Es256).unwrap();
        assert!(PrivateKey::unseal(&master, SigningAlg::Es256, other.kid(), &sealed).is_err());
        let wrong = seal::master_key_for_tests(8);
        assert!(PrivateKey::unseal(&wrong, SigningAlg::Es256, key.kid(), &sealed).is_err());
    }
}
