//! Verifying LaventeCare access tokens offline, in a satellite API: the signature against the
//! provider's JWKS (cached, fetched again when a token names a key it does not know: the
//! provider rotated), then `typ`, `iss`, `aud`, `exp`, and the tenant and role the API needs.
//! A DPoP-bound token (`cnf.jkt`, RFC 9449) is taken only with `Authorization: DPoP` and a
//! proof of its key for this request ([`Verifier::verify_request`]).
//!
//! Copy this file into your API. It needs `josekit`, `reqwest` (or any HTTP client for the
//! JWKS), `serde_json`, `sha2`, `base64` and `tokio`; nothing in it calls the provider per
//! request.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use josekit::jwk::JwkSet;
use josekit::jws::{ES256, EdDSA, JwsVerifier, RS256};
use serde_json::Value;
use tokio::sync::RwLock;

/// How long a fetched JWKS is used before it is fetched again (the provider publishes a new
/// key well before it signs with it, and keeps retired keys until their tokens expire).
const JWKS_MAX_AGE: Duration = Duration::from_secs(300);
/// The shortest time between two fetches caused by unknown keys, so that tokens with made-up
/// `kid`s cannot make the API hammer the provider.
const MISS_REFETCH_SPACING: Duration = Duration::from_secs(10);
/// Clock skew tolerated on `exp`.
const LEEWAY: Duration = Duration::from_secs(30);
/// How old a DPoP proof may be, and how far ahead of our clock (RFC 9449 §11.1); seen proofs'
/// `jti`s are kept this long, so a proof works once.
const PROOF_AGE_SECS: i64 = 300;
const PROOF_AHEAD_SECS: i64 = 60;

/// What the API requires of every token.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The provider's issuer, exactly as in its discovery document.
    pub issuer: String,
    /// The client ids (or, with resource indicators, API identifiers) whose tokens this API
    /// accepts: one of them must be in `aud`.
    pub audiences: Vec<String>,
    /// The tenant this API serves (`tid`); `None` accepts any tenant and leaves the check to
    /// the caller.
    pub tenant_id: Option<String>,
    /// The role the API requires (`roles` is the expanded list: an admin also has `editor`
    /// and `viewer`).
    pub role: String,
}

/// Why a token was refused. An API answers all of them the same way (401, `invalid_token`).
#[derive(Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Not a JWT, or a signature that does not verify under a published key.
    BadSignature,
    /// A key the provider does not publish (or no longer publishes).
    UnknownKey,
    /// Not an access token (`typ` is not `at+jwt`): an ID token, for instance.
    NotAnAccessToken,
    /// Another issuer's token.
    WrongIssuer,
    /// Meant for another API.
    WrongAudience,
    Expired,
    WrongTenant,
    MissingRole,
    /// The JWKS could not be fetched.
    JwksUnavailable,
    /// A DPoP-bound token as a bearer token, or a bearer token under the DPoP scheme.
    WrongScheme,
    /// A missing, malformed, stale, replayed or foreign DPoP proof.
    BadProof,
}

/// The claims an API reads after the checks.
#[derive(Debug, Clone)]
pub struct Verified {
    pub sub: String,
    pub tid: String,
    pub roles: Vec<String>,
    pub client_id: String,
    pub scope: String,
    /// The thumbprint of the key the token is bound to (`cnf.jkt`), if it is.
    pub jkt: Option<String>,
}

struct Keys {
    by_kid: HashMap<String, Box<dyn JwsVerifier>>,
    fetched: Instant,
}

/// A verifier for one provider; share one per process (it caches the JWKS).
pub struct Verifier {
    policy: Policy,
    jwks_uri: String,
    http: reqwest::Client,
    keys: RwLock<Option<Keys>>,
    last_miss_fetch: std::sync::Mutex<Option<Instant>>,
    /// DPoP proofs seen (`jti`), with when they may be forgotten.
    seen_proofs: std::sync::Mutex<HashMap<String, Instant>>,
}

impl Verifier {
    /// `jwks_uri` comes from the provider's discovery document (`{issuer}/jwks` for LaventeCare).
    pub fn new(policy: Policy, jwks_uri: impl Into<String>) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap_or_default();
        Self {
            policy,
            jwks_uri: jwks_uri.into(),
            http,
            keys: RwLock::new(None),
            last_miss_fetch: Default::default(),
            seen_proofs: Default::default(),
        }
    }

    /// Checks a request's `Authorization` header (and its `DPoP` header, for `method` and the
    /// URL `htu` the client sent it to, without query): a bearer token, or a DPoP-bound one with
    /// a proof of its key. A bound token is never taken as a bearer token (RFC 9449 §7.1).
    pub async fn verify_request(
        &self,
        authorization: &str,
        dpop: Option<&str>,
        method: &str,
        htu: &str,
    ) -> Result<Verified, Rejection> {
        let (scheme, token) = authorization.split_once(' ').ok_or(Rejection::WrongScheme)?;
        let who = self.verify(token).await?;
        match (scheme, &who.jkt) {
            ("Bearer", None) => Ok(who),
            ("DPoP", Some(jkt)) => {
                self.check_proof(dpop.ok_or(Rejection::BadProof)?, jkt, token, method, htu)?;
                Ok(who)
            }
            _ => Err(Rejection::WrongScheme),
        }
    }

    /// RFC 9449 §4.3: the proof is a `dpop+jwt` signed (ES256) by the key in its header, that
    /// key is the token's (`jkt`), and it is for this request and this token, once.
    fn check_proof(&self, proof: &str, jkt: &str, token: &str, method: &str, htu: &str) -> Result<(), Rejection> {
        use base64::Engine as _;
        use sha2::Digest as _;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let header = josekit::jwt::decode_header(proof).map_err(|_| Rejection::BadProof)?;
        if header.claim("typ").and_then(Value::as_str) != Some("dpop+jwt")
            || header.claim("alg").and_then(Value::as_str) != Some("ES256")
        {
            return Err(Rejection::BadProof);
        }
        let jwk = header.claim("jwk").and_then(Value::as_object).ok_or(Rejection::BadProof)?;
        let member = |name: &str| jwk.get(name).and_then(Value::as_str).ok_or(Rejection::BadProof);
        let (kty, crv, x, y) = (member("kty")?, member("crv")?, member("x")?, member("y")?);
        if kty != "EC" || crv != "P-256" || jwk.contains_key("d") {
            return Err(Rejection::BadProof);
        }
        // RFC 7638: the required members, in lexicographic order, without spaces.
        let thumbprint = format!(r#"{{"crv":"{crv}","kty":"{kty}","x":"{x}","y":"{y}"}}"#);
        if b64(&sha2::Sha256::digest(thumbprint.as_bytes())) != jkt {
            return Err(Rejection::BadProof);
        }
        let key = josekit::jwk::Jwk::from_map(jwk.clone()).map_err(|_| Rejection::BadProof)?;
        let verifier = ES256.verifier_from_jwk(&key).map_err(|_| Rejection::BadProof)?;
        let (claims, _) = josekit::jwt::decode_with_verifier(proof, &verifier).map_err(|_| Rejection::BadProof)?;
        let text = |name: &str| claims.claim(name).and_then(Value::as_str);
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let iat = claims.claim("iat").and_then(Value::as_i64).ok_or(Rejection::BadProof)?;
        if text("htm") != Some(method)
            || text("htu") != Some(htu)
            || text("ath") != Some(b64(&sha2::Sha256::digest(token.as_bytes())).as_str())
            || iat < now - PROOF_AGE_SECS
            || iat > now + PROOF_AHEAD_SECS
        {
            return Err(Rejection::BadProof);
        }
        let jti = text("jti").filter(|j| !j.is_empty() && j.len() <= 128).ok_or(Rejection::BadProof)?;
        let mut seen = self.seen_proofs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.retain(|_, until| *until > Instant::now());
        let keep = Instant::now() + Duration::from_secs((PROOF_AGE_SECS + PROOF_AHEAD_SECS) as u64);
        if seen.insert(jti.to_owned(), keep).is_some() {
            return Err(Rejection::BadProof);
        }
        Ok(())
    }

    /// Checks `token` as the policy says.
    pub async fn verify(&self, token: &str) -> Result<Verified, Rejection> {
        let header = josekit::jwt::decode_header(token).map_err(|_| Rejection::BadSignature)?;
        // RFC 9068 §4: an access token says so in its header; an ID token does not.
        if header.claim("typ").and_then(Value::as_str) != Some("at+jwt") {
            return Err(Rejection::NotAnAccessToken);
        }
        let kid = header.claim("kid").and_then(Value::as_str).ok_or(Rejection::UnknownKey)?.to_owned();
        if self.stale().await {
            self.fetch().await?;
        }
        let payload = match self.check_signature(token, &kid).await {
            Err(Rejection::UnknownKey) if self.may_fetch_on_miss() => {
                self.fetch().await?;
                self.check_signature(token, &kid).await?
            }
            other => other?,
        };
        self.check_claims(&payload)
    }

    async fn stale(&self) -> bool {
        self.keys.read().await.as_ref().is_none_or(|k| k.fetched.elapsed() > JWKS_MAX_AGE)
    }

    fn may_fetch_on_miss(&self) -> bool {
        let mut last = self.last_miss_fetch.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|at| at.elapsed() < MISS_REFETCH_SPACING) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    async fn fetch(&self) -> Result<(), Rejection> {
        let body = async { self.http.get(&self.jwks_uri).send().await?.error_for_status()?.bytes().await };
        let body = body.await.map_err(|_| Rejection::JwksUnavailable)?;
        let set = JwkSet::from_bytes(&body).map_err(|_| Rejection::JwksUnavailable)?;
        let mut by_kid: HashMap<String, Box<dyn JwsVerifier>> = HashMap::new();
        for jwk in set.keys() {
            let verifier: Option<Box<dyn JwsVerifier>> = match jwk.algorithm() {
                Some("RS256") => RS256.verifier_from_jwk(jwk).ok().map(|v| Box::new(v) as Box<dyn JwsVerifier>),
                Some("ES256") => ES256.verifier_from_jwk(jwk).ok().map(|v| Box::new(v) as Box<dyn JwsVerifier>),
                Some("EdDSA") => EdDSA.verifier_from_jwk(jwk).ok().map(|v| Box::new(v) as Box<dyn JwsVerifier>),
                _ => None,
            };
            if let (Some(kid), Some(verifier)) = (jwk.key_id(), verifier) {
                by_kid.insert(kid.to_owned(), verifier);
            }
        }
        *self.keys.write().await = Some(Keys { by_kid, fetched: Instant::now() });
        Ok(())
    }

    async fn check_signature(&self, token: &str, kid: &str) -> Result<josekit::jwt::JwtPayload, Rejection> {
        let keys = self.keys.read().await;
        let verifier = keys.as_ref().and_then(|k| k.by_kid.get(kid)).ok_or(Rejection::UnknownKey)?;
        // josekit also refuses a header whose `alg` is not the key's.
        let (payload, _) =
            josekit::jwt::decode_with_verifier(token, verifier.as_ref()).map_err(|_| Rejection::BadSignature)?;
        Ok(payload)
    }

    fn check_claims(&self, payload: &josekit::jwt::JwtPayload) -> Result<Verified, Rejection> {
        let p = &self.policy;
        if payload.issuer() != Some(p.issuer.as_str()) {
            return Err(Rejection::WrongIssuer);
        }
        let aud = payload.audience().unwrap_or_default();
        if !aud.iter().any(|a| p.audiences.iter().any(|want| want == a)) {
            return Err(Rejection::WrongAudience);
        }
        match payload.expires_at() {
            Some(exp) if exp + LEEWAY > SystemTime::now() => {}
            _ => return Err(Rejection::Expired),
        }
        let text = |name: &str| payload.claim(name).and_then(Value::as_str).map(str::to_owned);
        let tid = text("tid").ok_or(Rejection::WrongTenant)?;
        if p.tenant_id.as_ref().is_some_and(|want| *want != tid) {
            return Err(Rejection::WrongTenant);
        }
        let roles: Vec<String> = payload
            .claim("roles")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        if !roles.contains(&p.role) {
            return Err(Rejection::MissingRole);
        }
        Ok(Verified {
            sub: text("sub").unwrap_or_default(),
            tid,
            roles,
            client_id: text("client_id").unwrap_or_default(),
            scope: text("scope").unwrap_or_default(),
            jkt: payload.claim("cnf").and_then(|c| c.get("jkt")).and_then(Value::as_str).map(str::to_owned),
        })
    }
}
