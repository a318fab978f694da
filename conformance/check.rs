//! What every module shares: the provisioned world, verdicts, and the checks the suite makes of
//! every token response and ID token.

use std::fmt;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use base64::Engine as _;
use futures::FutureExt as _;
use serde_json::Value;
use sha2::Digest as _;

use crate::plans::Module;
use crate::server::Scheme;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Status {
    Pass,
    Warning,
    Fail,
    Skipped,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Pass => "PASS",
            Status::Warning => "WARNING",
            Status::Fail => "FAIL",
            Status::Skipped => "SKIPPED",
        })
    }
}

/// A module's result and why.
#[derive(Debug)]
pub struct Verdict {
    pub status: Status,
    pub reason: String,
}

impl Verdict {
    pub fn pass(reason: impl Into<String>) -> Self {
        Self { status: Status::Pass, reason: reason.into() }
    }
    pub fn warning(reason: impl Into<String>) -> Self {
        Self { status: Status::Warning, reason: reason.into() }
    }
    pub fn skipped(reason: impl Into<String>) -> Self {
        Self { status: Status::Skipped, reason: reason.into() }
    }
}

/// A module's time limit: the slowest waits 30 s on purpose.
const MODULE_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs one module: an error or a panic is a FAIL with its message.
pub async fn run_module(ctx: &Ctx, module: &Module) -> Verdict {
    let run = std::panic::AssertUnwindSafe((module.run)(ctx, module.mode)).catch_unwind();
    match tokio::time::timeout(MODULE_TIMEOUT, run).await {
        Ok(Ok(Ok(verdict))) => verdict,
        Ok(Ok(Err(e))) => Verdict { status: Status::Fail, reason: format!("{e:#}") },
        Ok(Err(panic)) => {
            let msg =
                panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
            Verdict { status: Status::Fail, reason: format!("panicked: {}", msg.unwrap_or_default()) }
        }
        Err(_) => Verdict { status: Status::Fail, reason: format!("did not finish within {MODULE_TIMEOUT:?}") },
    }
}

/// A user of the conformance tenant.
pub struct User {
    pub email: String,
    pub password: String,
    pub sub: String,
}

/// A registered client.
pub struct Client {
    pub id: String,
    pub secret: Option<String>,
    /// `client_secret_basic`, `client_secret_post` or `none`.
    pub method: String,
}

impl Client {
    /// A request to one of the provider's endpoints, authenticated as this client.
    pub fn authenticate(
        &self,
        req: reqwest::RequestBuilder,
        form: &mut Vec<(String, String)>,
    ) -> reqwest::RequestBuilder {
        match (self.method.as_str(), &self.secret) {
            ("client_secret_basic", Some(secret)) => {
                // RFC 6749 §2.3.1: both are form-encoded before they are joined.
                let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let basic =
                    base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(&self.id), enc(secret)));
                req.header("authorization", format!("Basic {basic}"))
            }
            ("client_secret_post", Some(secret)) => {
                form.push(("client_id".into(), self.id.clone()));
                form.push(("client_secret".into(), secret.clone()));
                req
            }
            _ => {
                form.push(("client_id".into(), self.id.clone()));
                req
            }
        }
    }
}

/// The provisioned world every module runs in.
pub struct Ctx {
    pub scheme: Scheme,
    pub issuer: String,
    /// No redirects followed, no cookies.
    pub http: reqwest::Client,
    pub builder: Box<dyn Fn() -> reqwest::ClientBuilder + Send + Sync>,
    pub discovery: Value,
    pub user: User,
    /// `client_secret_basic`.
    pub client: Client,
    pub client2: Client,
    pub client_post: Client,
    /// A public web client (PKCE).
    pub public: Client,
    /// A public client with the device grant.
    pub device: Client,
    /// `client_credentials`, a viewer service account.
    pub service: Client,
    /// A service account of another tenant.
    pub foreign: Client,
    /// The one redirect URI of the web clients.
    pub callback: String,
    /// The one post-logout redirect URI of the web clients.
    pub post_logout: String,
}

impl Ctx {
    /// A discovery entry that must be a string.
    pub fn endpoint(&self, name: &str) -> anyhow::Result<String> {
        self.discovery[name].as_str().map(str::to_owned).with_context(|| format!("discovery has no {name}"))
    }

    /// POSTs a form to the token endpoint as `client`: (status, headers, JSON body).
    pub async fn token(&self, client: &Client, form: &[(&str, &str)]) -> anyhow::Result<Answer> {
        self.post_as(client, &self.endpoint("token_endpoint")?, form).await
    }

    pub async fn post_as(&self, client: &Client, url: &str, form: &[(&str, &str)]) -> anyhow::Result<Answer> {
        let mut fields: Vec<(String, String)> = form.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let req = client.authenticate(self.http.post(url), &mut fields);
        Answer::of(req.form(&fields).send().await?).await
    }

    /// The code grant for `code`, as `client`.
    pub async fn redeem(
        &self,
        client: &Client,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&str>,
    ) -> anyhow::Result<Answer> {
        let mut form = vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri)];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        self.token(client, &form).await
    }

    /// The signing keys, fetched now (a key may have been added since discovery).
    pub async fn jwks(&self) -> anyhow::Result<Value> {
        Ok(self.http.get(self.endpoint("jwks_uri")?).send().await?.error_for_status()?.json().await?)
    }

    /// `GET` userinfo with the token in the `Authorization` header.
    pub async fn userinfo(&self, access_token: &str) -> anyhow::Result<Answer> {
        let res = self.http.get(self.endpoint("userinfo_endpoint")?).bearer_auth(access_token).send().await?;
        Answer::of(res).await
    }
}

/// A JSON answer of an endpoint.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub async fn of(res: reqwest::Response) -> anyhow::Result<Self> {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).with_context(|| format!("{status}: not JSON: {text:.200}"))?
        };
        Ok(Self { status, headers, body })
    }

    /// A success, or an error naming what came back.
    pub fn ok(self) -> anyhow::Result<Self> {
        ensure!(self.status == 200, "expected 200, got {}: {}", self.status, self.body);
        Ok(self)
    }

    /// An OAuth error answer (RFC 6749 §5.2) with one of `errors`.
    pub fn error(&self, status: u16, errors: &[&str]) -> anyhow::Result<()> {
        ensure!(self.status == status, "expected {status} with {errors:?}, got {}: {}", self.status, self.body);
        let error = self.body["error"].as_str().unwrap_or_default();
        ensure!(errors.contains(&error), "expected error {errors:?}, got {}", self.body);
        Ok(())
    }

    pub fn str(&self, name: &str) -> anyhow::Result<String> {
        self.body[name].as_str().map(str::to_owned).with_context(|| format!("no {name} in {}", self.body))
    }
}

/// The checks of a successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
pub fn token_response(answer: &Answer, want_id_token: bool) -> anyhow::Result<()> {
    let body = &answer.body;
    ensure!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()), "no access_token in {body}");
    ensure!(
        body["token_type"].as_str().is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
        "token_type is not Bearer: {body}"
    );
    ensure!(body["expires_in"].as_u64().is_some_and(|e| e > 0), "expires_in is not a positive number: {body}");
    if want_id_token {
        ensure!(body["id_token"].is_string(), "no id_token in {body}");
    }
    let cache = answer.headers.get("cache-control").and_then(|v| v.to_str().ok()).unwrap_or("");
    ensure!(cache.contains("no-store"), "the token response is not Cache-Control: no-store ({cache:?})");
    Ok(())
}

/// What the ID token must satisfy besides its signature.
pub struct Expect<'a> {
    pub client_id: &'a str,
    pub nonce: Option<&'a str>,
    pub access_token: Option<&'a str>,
    pub auth_time_required: bool,
}

/// Validates an ID token as OIDC Core §3.1.3.7 has a relying party do, with the keys of
/// `jwks_uri`; returns its claims.
pub async fn id_token(ctx: &Ctx, jwt: &str, expect: Expect<'_>) -> anyhow::Result<Value> {
    let header = part(jwt, 0)?;
    let alg = header["alg"].as_str().context("the ID token has no alg")?;
    ensure!(alg != "none", "an unsigned ID token");
    let supported = ctx.discovery["id_token_signing_alg_values_supported"]
        .as_array()
        .context("no id_token_signing_alg_values_supported")?;
    ensure!(supported.iter().any(|a| a == alg), "alg {alg} is not advertised");
    let kid = header["kid"].as_str().context("the ID token has no kid")?;
    let jwks = ctx.jwks().await?;
    let key = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid))
        .with_context(|| format!("kid {kid} is not in the JWKS"))?;
    let map = key.as_object().context("a JWK is not an object")?.clone();
    let jwk = josekit::jwk::Jwk::from_map(map)?;
    let claims = verify_with(alg, &jwk, jwt)?;

    ensure!(claims["iss"] == ctx.issuer.as_str(), "iss {} is not the issuer {}", claims["iss"], ctx.issuer);
    let aud_ok = match &claims["aud"] {
        Value::String(a) => a == expect.client_id,
        Value::Array(list) => {
            let has = list.iter().any(|a| a == expect.client_id);
            has && (list.len() == 1 || claims["azp"] == expect.client_id)
        }
        _ => false,
    };
    ensure!(aud_ok, "aud {} (azp {}) is not for {}", claims["aud"], claims["azp"], expect.client_id);
    let now = chrono::Utc::now().timestamp();
    let exp = claims["exp"].as_i64().context("no exp")?;
    let iat = claims["iat"].as_i64().context("no iat")?;
    ensure!(exp > now, "the ID token has expired");
    ensure!((now - 300..=now + 60).contains(&iat), "iat {iat} is not about now ({now})");
    let sub = claims["sub"].as_str().context("no sub")?;
    ensure!(!sub.is_empty() && sub.len() <= 255 && sub.is_ascii(), "sub is not 1–255 ASCII characters");
    match expect.nonce {
        Some(nonce) => ensure!(claims["nonce"] == nonce, "nonce {} is not {nonce}", claims["nonce"]),
        None => ensure!(claims.get("nonce").is_none(), "a nonce that was not sent: {}", claims["nonce"]),
    }
    if expect.auth_time_required {
        ensure!(claims["auth_time"].is_i64(), "auth_time is required and missing");
    }
    if let Some(auth_time) = claims.get("auth_time") {
        let t = auth_time.as_i64().context("auth_time is not a number")?;
        ensure!(t <= now + 60, "auth_time is in the future");
    }
    if let (Some(at), Some(hash)) = (expect.access_token, claims.get("at_hash")) {
        let digest: Vec<u8> =
            if alg == "EdDSA" { sha2::Sha512::digest(at).to_vec() } else { sha2::Sha256::digest(at).to_vec() };
        let want = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2]);
        ensure!(hash == want.as_str(), "at_hash does not match the access token");
    }
    Ok(claims)
}

/// The claims of a JWS, if `jwk` signed it with `alg`.
pub fn verify_with(alg: &str, jwk: &josekit::jwk::Jwk, jwt: &str) -> anyhow::Result<Value> {
    use josekit::jws::{ES256, EdDSA, RS256};
    let verifier: Box<dyn josekit::jws::JwsVerifier> = match alg {
        "RS256" => Box::new(RS256.verifier_from_jwk(jwk)?),
        "ES256" => Box::new(ES256.verifier_from_jwk(jwk)?),
        "EdDSA" => Box::new(EdDSA.verifier_from_jwk(jwk)?),
        other => bail!("no verifier for alg {other}"),
    };
    let (payload, _) =
        josekit::jwt::decode_with_verifier(jwt, verifier.as_ref()).context("the signature does not verify")?;
    Ok(Value::Object(payload.claims_set().clone()))
}

/// One base64url JSON part of a JWT, unchecked.
pub fn part(jwt: &str, n: usize) -> anyhow::Result<Value> {
    let seg = jwt.split('.').nth(n).context("not a JWT")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(seg)?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// A fresh random value for state, nonce and PKCE.
pub fn random() -> String {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).expect("the OS random source");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A PKCE pair (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    let verifier = format!("{}{}", random(), random());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}
