//! The master key that encrypts secrets at rest (signing keys, TOTP secrets): 32 bytes, from
//! `LCA_MASTER_KEY` (base64) or generated once into `<data dir>/master.key` (mode 0600).
//!
//! Other keys are derived from it, each under its own label, so no two uses share a key: the
//! audit chain's MAC key ([`MasterKey::audit_key`]) is not the key that seals secrets.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::config::Config;

/// The key. `Debug` never prints it.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl MasterKey {
    /// The key of this configuration: from the environment, else the data directory's file,
    /// which is created on first use.
    pub fn load(config: &Config) -> anyhow::Result<Self> {
        Self::find(config, true)
    }

    /// The key of this configuration, never a new one: for commands that check what an
    /// existing key made (`audit verify --file`), where a fresh key could only disagree.
    pub fn load_existing(config: &Config) -> anyhow::Result<Self> {
        Self::find(config, false)
    }

    fn find(config: &Config, create: bool) -> anyhow::Result<Self> {
        if let Some(encoded) = &config.master_key {
            return Self::decode(encoded).context("LCA_MASTER_KEY");
        }
        let path = config.data_dir.join("master.key");
        match std::fs::read_to_string(&path) {
            Ok(encoded) => Self::decode(encoded.trim()).with_context(|| path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => Self::generate_into(&path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("no master key: set LCA_MASTER_KEY, or LCA_DATA_DIR to the directory holding master.key")
            }
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    fn decode(encoded: &str) -> anyhow::Result<Self> {
        let bytes = STANDARD.decode(encoded.trim()).context("the master key is not valid base64")?;
        let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) else {
            bail!("the master key must be 32 bytes (44 base64 characters)");
        };
        Ok(Self(key))
    }

    /// Writes a new key with `create_new`, so two processes starting together cannot both
    /// write one: the loser reads the winner's.
    fn generate_into(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let key = crate::secrets::random_bytes::<32>();
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
            Ok(mut file) => {
                writeln!(file, "{}", STANDARD.encode(key))?;
                file.sync_all()?;
                tracing::info!(path = %path.display(), "generated a new master key");
                Ok(Self(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::decode(std::fs::read_to_string(path)?.trim())
            }
            Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
        }
    }

    /// A key from raw bytes (tests, tools).
    pub fn from_bytes(key: [u8; 32]) -> Self {
        Self(key)
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key of the audit chain's HMACs: HKDF-SHA-256 (RFC 5869) of the master key with a
    /// fixed, versioned label as `info` and no salt (the input is already a uniform random
    /// key, RFC 5869 §3.1). Derive it once at start; it is never stored anywhere.
    pub fn audit_key(&self) -> AuditKey {
        AuditKey(self.derive(AUDIT_KEY_LABEL))
    }

    /// HKDF-SHA-256 of the master key with `label` as `info`: one independent key per label.
    fn derive(&self, label: &[u8]) -> [u8; 32] {
        let mut key = [0u8; 32];
        // 32 bytes is far below HKDF's limit of 255 × 32, so expand cannot fail.
        hkdf::Hkdf::<sha2::Sha256>::new(None, &self.0)
            .expand(label, &mut key)
            .expect("HKDF-SHA-256 expands to 32 bytes");
        key
    }
}

impl MasterKey {
    /// The key of DPoP server nonces (`tokens::dpop::Nonces`): HKDF-SHA-256 like the audit
    /// key, under a label of its own, so the two are independent.
    pub fn dpop_nonce_key(&self) -> [u8; 32] {
        self.derive(b"laventecare-auth/dpop-nonce/hmac-sha256/v1")
    }
}

/// The HKDF `info` of the audit key. A new label (`…/v2`) would give a new, independent key.
const AUDIT_KEY_LABEL: &[u8] = b"laventecare-auth/audit-chain/hmac-sha256/v1";

/// The key of the audit chain's HMACs (see [`MasterKey::audit_key`]). `Debug` never prints it.
#[derive(Clone)]
pub struct AuditKey([u8; 32]);

impl AuditKey {
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey([redacted])")
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The audit key is a fixed function of the master key, differs from it (the sealing key),
    /// and differs between master keys; `Debug` prints neither.
    #[test]
    fn audit_key_is_derived_and_distinct() {
        let master = MasterKey::from_bytes([7; 32]);
        let audit = master.audit_key();
        assert_eq!(audit.bytes(), master.audit_key().bytes());
        assert_ne!(audit.bytes(), master.bytes());
        assert_ne!(audit.bytes(), MasterKey::from_bytes([8; 32]).audit_key().bytes());
        // RFC 5869 HKDF-SHA-256, recomputed by hand: PRK = HMAC(zeros, IKM); T(1) = HMAC(PRK, info || 0x01).
        use hmac::Mac as _;
        let mut extract = hmac::Hmac::<sha2::Sha256>::new_from_slice(&[0u8; 32]).unwrap();
        extract.update(master.bytes());
        let prk = extract.finalize().into_bytes();
        let mut expand = hmac::Hmac::<sha2::Sha256>::new_from_slice(&prk).unwrap();
        expand.update(AUDIT_KEY_LABEL);
        expand.update(&[1]);
        assert_eq!(&audit.bytes()[..], &expand.finalize().into_bytes()[..]);
        assert_eq!(format!("{audit:?}"), "AuditKey([redacted])");
    }
}
