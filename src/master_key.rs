//! The master key that encrypts secrets at rest (signing keys, TOTP secrets): 32 bytes, from
//! `LCA_MASTER_KEY` (base64) or generated once into `<data dir>/master.key` (mode 0600).

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
        if let Some(encoded) = &config.master_key {
            return Self::decode(encoded).context("LCA_MASTER_KEY");
        }
        let path = config.data_dir.join("master.key");
        match std::fs::read_to_string(&path) {
            Ok(encoded) => Self::decode(encoded.trim()).with_context(|| path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::generate_into(&path),
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
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}
