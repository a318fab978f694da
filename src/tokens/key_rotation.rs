//! Creating the first signing keys and rotating them (`laventecare-auth keys rotate`).
//!
//! Both take the keys advisory lock in their transaction, so any number of server instances
//! and CLI runs may call them at once; the unique index on the active key of each algorithm is
//! the backstop. Keys are generated before the transaction opens: an RSA key takes tens of
//! milliseconds, and no lock should wait on that.

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::audit::{self, Actor};
use crate::db::{Database, signing_keys, tenants};
use crate::master_key::MasterKey;
use crate::tokens::keys::{PrivateKey, SigningAlg};

/// How long a retired key stays in the JWKS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRotationPolicy {
    /// The longest lifetime of any token a key signs. 24 hours by default: longer than access
    /// tokens (10 minutes) and ID tokens, including ID tokens issued on a refresh.
    pub max_token_lifetime: Duration,
    /// How long other server instances may go on signing with a retired key: until their next
    /// [`KeyStore::reload`](super::KeyStore::reload) (every `LCA_KEY_RELOAD_SECS`, a minute by
    /// default and at most 4), plus clock skew.
    /// 5 minutes by default.
    pub reload_lag: Duration,
}

impl Default for KeyRotationPolicy {
    fn default() -> Self {
        Self { max_token_lifetime: Duration::from_secs(24 * 3600), reload_lag: Duration::from_secs(5 * 60) }
    }
}

impl KeyRotationPolicy {
    /// From retirement to leaving the JWKS: the last token a retired key signed is expired by
    /// then (ARCHITECTURE.md, "Tokens": "until every token they signed has expired").
    pub fn publish_for(&self) -> Duration {
        self.max_token_lifetime.saturating_add(self.reload_lag)
    }
}

/// What a rotation did; `keys rotate --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct KeyRotationReport {
    /// The new signing keys, one per algorithm.
    pub created: Vec<CreatedKey>,
    /// The keys they replace, still published until `publish_until`.
    pub retired: Vec<RetiredKey>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CreatedKey {
    pub kid: String,
    pub alg: SigningAlg,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RetiredKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub publish_until: DateTime<Utc>,
}

/// A generated key, ready for its row.
struct NewKey {
    alg: SigningAlg,
    kid: String,
    public_jwk: serde_json::Value,
    sealed: Vec<u8>,
}

/// Retires every active key and creates a new one per algorithm, in one transaction. A
/// retired key no longer signs once a server reloads, and leaves the JWKS after
/// `policy.publish_for()`.
///
/// As the system; see [`rotate_signing_keys_by`].
pub async fn rotate_signing_keys(
    db: &Database,
    master_key: &MasterKey,
    policy: &KeyRotationPolicy,
) -> anyhow::Result<KeyRotationReport> {
    rotate_signing_keys_by(db, &Actor::system(), master_key, policy).await
}

/// [`rotate_signing_keys`], recorded as `keys.rotated` in the platform tenant's audit chain in the same
/// transaction. Keys are global (no tenant of their own); the platform tenant's chain is the
/// issuer's. Before bootstrap has created the platform tenant there is no chain to write to,
/// and the rotation is only logged.
pub async fn rotate_signing_keys_by(
    db: &Database,
    actor: &Actor,
    master_key: &MasterKey,
    policy: &KeyRotationPolicy,
) -> anyhow::Result<KeyRotationReport> {
    let new_keys = generate(SigningAlg::ALL.to_vec(), master_key).await?;
    let mut tx = db.unscoped().await?;
    let platform = tenants::platform(&mut tx).await?;
    tx.commit().await?;
    // signing_keys has no Row Level Security, so a transaction for the platform tenant writes
    // the keys and the event together. Request connections may not write keys
    // (migrations/0010): this is an owner-pool transaction stepped down to lca_operator.
    let mut tx = match platform {
        Some(id) => db.operator(id).await?,
        None => db.operator_unscoped().await?,
    };
    signing_keys::lock(&mut tx).await?;
    let retired = signing_keys::retire_active(&mut tx, policy.publish_for()).await?;
    for key in &new_keys {
        signing_keys::insert(&mut tx, &key.kid, key.alg.as_str(), &key.public_jwk, &key.sealed).await?;
    }
    if platform.is_some() {
        let details = serde_json::json!({
            "created": new_keys.iter().map(|k| serde_json::json!({ "alg": k.alg.as_str(), "kid": k.kid })).collect::<Vec<_>>(),
            "retired": retired.iter().map(|k| serde_json::json!({ "alg": k.alg, "kid": k.kid, "publish_until": k.publish_until })).collect::<Vec<_>>(),
        });
        audit::append(&mut tx, &actor.event("keys.rotated", ("signing_keys", None), details)).await?;
    } else {
        tracing::warn!("no platform tenant yet: the key rotation is not in the audit log");
    }
    tx.commit().await?;
    let retired = retired
        .into_iter()
        .map(|r| {
            let alg =
                SigningAlg::from_name(&r.alg).with_context(|| format!("signing key {} has an unknown alg", r.kid))?;
            Ok(RetiredKey { kid: r.kid, alg, publish_until: r.publish_until })
        })
        .collect::<anyhow::Result<_>>()?;
    tracing::info!(
        created = ?new_keys.iter().map(|k| &k.kid).collect::<Vec<_>>(),
        "rotated the signing keys"
    );
    Ok(KeyRotationReport { created: new_keys.into_iter().map(summary).collect(), retired })
}

/// Creates an active key for each algorithm that has none (the first start). Returns what it
/// created: nothing when another process got there first.
pub async fn ensure_signing_keys(db: &Database, master_key: &MasterKey) -> anyhow::Result<Vec<CreatedKey>> {
    let missing = missing_algs(db).await?;
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let new_keys = generate(missing, master_key).await?;
    // Owner rights, stepped down to lca_operator (request connections may not add keys).
    let mut tx = db.operator_unscoped().await?;
    signing_keys::lock(&mut tx).await?;
    // Under the lock: a concurrent start may have created some of them meanwhile; its keys
    // win and ours are dropped unused.
    let present = signing_keys::active_algs(&mut tx).await?;
    let mut created = Vec::new();
    for key in new_keys {
        if present.iter().any(|alg| alg == key.alg.as_str()) {
            continue;
        }
        signing_keys::insert(&mut tx, &key.kid, key.alg.as_str(), &key.public_jwk, &key.sealed).await?;
        created.push(summary(key));
    }
    tx.commit().await?;
    if !created.is_empty() {
        tracing::info!(created = ?created.iter().map(|k| &k.kid).collect::<Vec<_>>(), "created signing keys");
    }
    Ok(created)
}

async fn missing_algs(db: &Database) -> anyhow::Result<Vec<SigningAlg>> {
    let mut tx = db.unscoped().await?;
    let present = signing_keys::active_algs(&mut tx).await?;
    Ok(SigningAlg::ALL.into_iter().filter(|alg| !present.iter().any(|p| p == alg.as_str())).collect())
}

/// Generates and seals keys off the async threads.
async fn generate(algs: Vec<SigningAlg>, master_key: &MasterKey) -> anyhow::Result<Vec<NewKey>> {
    let master_key = master_key.clone();
    tokio::task::spawn_blocking(move || {
        algs.into_iter()
            .map(|alg| {
                let key = PrivateKey::generate(alg).with_context(|| format!("cannot generate an {alg} key"))?;
                Ok(NewKey {
                    alg,
                    kid: key.kid().to_owned(),
                    public_jwk: serde_json::Value::Object(key.public_jwk()?),
                    sealed: key.seal(&master_key)?,
                })
            })
            .collect()
    })
    .await
    .context("key generation panicked")?
}

fn summary(key: NewKey) -> CreatedKey {
    CreatedKey { kid: key.kid, alg: key.alg }
}
