//! The in-memory key store: every published key decrypted once, at load or reload, so no
//! request touches the database or the master key to sign or verify.
//!
//! A background task ([`spawn_reloader`]) re-reads the table every `LCA_KEY_RELOAD_SECS` (a
//! minute by default), which is how a `keys rotate` run by the CLI in another process, or a
//! rotation seen by another instance, reaches a running server.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use axum::body::Bytes;
use chrono::{DateTime, Utc};
use josekit::jws::{JwsSigner, JwsVerifier};
use serde_json::{Map, Value};
use tokio::time::MissedTickBehavior;

use crate::db::{Database, signing_keys};
use crate::master_key::MasterKey;
use crate::tokens::jwt::{self, TokenType, VerifyError};
use crate::tokens::key_rotation::ensure_signing_keys;
use crate::tokens::keys::{PrivateKey, SigningAlg, thumbprint};

/// The least time between two reloads caused by tokens naming an unknown kid, so garbage
/// tokens cannot turn into database load.
const MISS_RELOAD_SPACING: Duration = Duration::from_secs(10);

/// Signing and verification keys, cheap to clone (one `Arc`). `Debug` shows kids only.
#[derive(Clone)]
pub struct KeyStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    master_key: Arc<MasterKey>,
    /// Swapped whole on reload; readers hold the lock only to clone the `Arc`.
    loaded: RwLock<Arc<Loaded>>,
    last_miss_reload: Mutex<Option<Instant>>,
}

/// One reading of the table.
struct Loaded {
    /// The active key of each algorithm.
    signing: HashMap<SigningAlg, (String, Box<dyn JwsSigner>)>,
    /// Every published key, by kid.
    verifying: HashMap<String, (SigningAlg, Box<dyn JwsVerifier>)>,
    /// The JWKS document (RFC 7517 §5) of exactly the keys in `verifying`.
    jwks: Bytes,
    /// When each active key was made.
    signing_since: Vec<(SigningAlg, DateTime<Utc>)>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let loaded = self.loaded();
        let mut signing: Vec<_> = loaded.signing.iter().map(|(a, (k, _))| (a, k)).collect();
        signing.sort();
        let mut published: Vec<_> = loaded.verifying.keys().collect();
        published.sort();
        f.debug_struct("KeyStore").field("signing", &signing).field("published", &published).finish_non_exhaustive()
    }
}

impl KeyStore {
    /// Loads the keys, first creating one per algorithm if the table has none (safe when
    /// several processes start at once). Fails if a key does not decrypt under `master_key`.
    pub async fn load(db: Database, master_key: Arc<MasterKey>) -> anyhow::Result<Self> {
        ensure_signing_keys(&db, &master_key).await?;
        let loaded = read(&db, &master_key).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                master_key,
                loaded: RwLock::new(Arc::new(loaded)),
                last_miss_reload: Mutex::new(None),
            }),
        })
    }

    /// Re-reads the table: picks up rotations and drops keys whose publication has ended. On
    /// failure the keys loaded before stay in use.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let loaded = read(&self.inner.db, &self.inner.master_key).await?;
        *self.inner.loaded.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(loaded);
        Ok(())
    }

    fn loaded(&self) -> Arc<Loaded> {
        self.inner.loaded.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The JWKS JSON (`{"keys": [...]}`): active keys, then retired ones still published.
    pub fn jwks(&self) -> Bytes {
        self.loaded().jwks.clone()
    }

    /// How old each algorithm's active key is, as loaded here (metrics: an instance that
    /// missed a rotation shows an old key).
    pub fn signing_key_ages(&self) -> Vec<(SigningAlg, chrono::Duration)> {
        let now = Utc::now();
        self.loaded().signing_since.iter().map(|(alg, since)| (*alg, now - *since)).collect()
    }

    /// The kid that signs with `alg` now.
    pub fn active_kid(&self, alg: SigningAlg) -> Option<String> {
        self.loaded().signing.get(&alg).map(|(kid, _)| kid.clone())
    }

    /// Signs `claims` with the active key of `alg`; the header carries `alg`, its `kid` and
    /// `typ` (`JWT` for ID tokens, `at+jwt` for access tokens).
    pub fn sign(&self, alg: SigningAlg, typ: TokenType, claims: &Map<String, Value>) -> anyhow::Result<String> {
        let loaded = self.loaded();
        let (_, signer) = loaded.signing.get(&alg).with_context(|| format!("no active {alg} signing key"))?;
        jwt::sign(signer.as_ref(), typ, claims)
    }

    /// Checks the signature of a token we issued and returns its claims. The key is the one
    /// its `kid` names, and the header's `alg` must be that key's (RFC 8725 §3.1: never let the
    /// token choose); `none` and every algorithm we do not sign with are refused. Claims
    /// (`exp`, `iss`, `aud`…) are the caller's: see [`jwt::check_claims`].
    pub fn verify(&self, token: &str) -> Result<Map<String, Value>, VerifyError> {
        self.verify_as(token, None)
    }

    /// [`verify`](Self::verify), also requiring the header's `typ` to be `typ` (RFC 9068 §4:
    /// an ID token is not an access token).
    pub fn verify_typ(&self, token: &str, typ: TokenType) -> Result<Map<String, Value>, VerifyError> {
        self.verify_as(token, Some(typ))
    }

    /// [`verify_typ`](Self::verify_typ), reloading once if the kid is unknown: another
    /// instance may have rotated and signed with a key this one has not read yet. Such reloads
    /// are at least ten seconds apart.
    pub async fn verify_fresh(&self, token: &str, typ: TokenType) -> Result<Map<String, Value>, VerifyError> {
        match self.verify_as(token, Some(typ)) {
            Err(VerifyError::UnknownKey) if self.may_reload_on_miss() => {
                if let Err(e) = self.reload().await {
                    tracing::warn!(error = %format!("{e:#}"), "reloading the signing keys failed");
                }
                self.verify_as(token, Some(typ))
            }
            other => other,
        }
    }

    fn may_reload_on_miss(&self) -> bool {
        let mut last = self.inner.last_miss_reload.lock().unwrap_or_else(PoisonError::into_inner);
        match *last {
            Some(at) if at.elapsed() < MISS_RELOAD_SPACING => false,
            _ => {
                *last = Some(Instant::now());
                true
            }
        }
    }

    fn verify_as(&self, token: &str, typ: Option<TokenType>) -> Result<Map<String, Value>, VerifyError> {
        let header = jwt::decode_header(token)?;
        let alg = SigningAlg::from_name(&header.alg).ok_or(VerifyError::UnsupportedAlgorithm)?;
        if let Some(typ) = typ {
            jwt::check_type(&header, typ)?;
        }
        let kid = header.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
        let loaded = self.loaded();
        let (key_alg, verifier) = loaded.verifying.get(kid).ok_or(VerifyError::UnknownKey)?;
        if *key_alg != alg {
            return Err(VerifyError::AlgorithmMismatch);
        }
        jwt::verify_signature(token, verifier.as_ref())
    }
}

/// Reads and decrypts every published key. Each private key is opened (authenticating the
/// row: its ciphertext is bound to its kid) and the published JWK is rebuilt from it, so a
/// row whose public part was edited is refused rather than published.
async fn read(db: &Database, master_key: &MasterKey) -> anyhow::Result<Loaded> {
    let rows = {
        let mut tx = db.unscoped().await?;
        signing_keys::published(&mut tx).await.context("cannot read the signing keys")?
    };
    let mut signing = HashMap::new();
    let mut verifying = HashMap::new();
    let mut jwks = Vec::with_capacity(rows.len());
    let mut signing_since = Vec::new();
    for row in rows {
        let alg =
            SigningAlg::from_name(&row.alg).with_context(|| format!("signing key {} has an unknown alg", row.kid))?;
        let key = PrivateKey::unseal(master_key, alg, &row.kid, &row.private_enc)?;
        let stored = row
            .public_jwk
            .as_object()
            .with_context(|| format!("signing key {}: public_jwk is not an object", row.kid))?;
        if thumbprint(stored).ok().as_deref() != Some(key.kid()) {
            bail!("signing key {}: public_jwk does not match the private key", row.kid);
        }
        if row.retired_at.is_none() {
            signing.insert(alg, (row.kid.clone(), key.signer()?));
            signing_since.push((alg, row.created_at));
        }
        verifying.insert(row.kid.clone(), (alg, key.verifier()?));
        jwks.push(Value::Object(key.public_jwk()?));
    }
    for alg in SigningAlg::ALL {
        if !signing.contains_key(&alg) {
            bail!("there is no active {alg} signing key");
        }
    }
    let jwks = serde_json::to_vec(&serde_json::json!({ "keys": jwks }))?;
    Ok(Loaded { signing, verifying, jwks: Bytes::from(jwks), signing_since })
}

/// Reloads `store` every `every` until `shutdown` resolves. A failed reload is logged and the
/// previous keys stay in use. Ticks missed while a reload was slow are not made up for
/// (`MissedTickBehavior::Delay`).
pub fn spawn_reloader<F>(store: KeyStore, every: Duration, shutdown: F) -> tokio::task::JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The first tick is immediate; the store was just loaded.
        ticks.tick().await;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = ticks.tick() => {
                    if let Err(e) = store.reload().await {
                        tracing::warn!(error = %format!("{e:#}"), "reloading the signing keys failed; keeping the loaded ones");
                    }
                }
            }
        }
    })
}
