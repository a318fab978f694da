//! Secrets at rest: AES-256-GCM under the master key.
//!
//! A sealed value is `nonce (96 random bits) || ciphertext || tag (128 bits)`. The associated
//! data is `purpose \0 id` (for a signing key: the column and the kid), so a ciphertext copied
//! into another row, or into another kind of secret, does not open. Random 96-bit nonces are
//! safe far beyond the number of values we will ever seal under one key (NIST SP 800-38D §8.3:
//! stay under 2^32 encryptions).
//!
//! Errors never carry plaintext, and [`OpenError`] says nothing about why opening failed
//! (AEAD gives no more than "not authentic" anyway).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::anyhow;

use crate::master_key::MasterKey;

const NONCE_LEN: usize = 12;

/// The sealed value does not open under this key, purpose and id.
#[derive(Debug, thiserror::Error)]
#[error("the sealed value is not authentic under this master key")]
pub struct OpenError;

fn associated_data(purpose: &str, id: &str) -> Vec<u8> {
    [purpose.as_bytes(), b"\0", id.as_bytes()].concat()
}

/// Encrypts `plaintext` for the row `id` of `purpose`.
pub fn seal(master_key: &MasterKey, purpose: &str, id: &str, plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
    let cipher = Aes256Gcm::new(master_key.bytes().into());
    let nonce = crate::secrets::random_bytes::<NONCE_LEN>();
    let aad = associated_data(purpose, id);
    let ciphertext = cipher
        .encrypt(&Nonce::from(nonce), Payload { msg: plaintext, aad: &aad })
        .map_err(|_| anyhow!("AES-GCM refused to encrypt (value too large)"))?;
    Ok([nonce.as_slice(), &ciphertext].concat())
}

/// Decrypts a value made by [`seal`] with the same key, purpose and id.
pub fn open(master_key: &MasterKey, purpose: &str, id: &str, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
    let Some((nonce, ciphertext)) = sealed.split_first_chunk::<NONCE_LEN>() else {
        return Err(OpenError);
    };
    let cipher = Aes256Gcm::new(master_key.bytes().into());
    let aad = associated_data(purpose, id);
    cipher.decrypt(&Nonce::from(*nonce), Payload { msg: ciphertext, aad: &aad }).map_err(|_| OpenError)
}

/// A master key of 32 copies of `byte`, for unit tests (the real one comes from
/// configuration).
#[cfg(test)]
pub(crate) fn master_key_for_tests(byte: u8) -> MasterKey {
    use base64::Engine as _;
    use clap::Parser as _;
    #[derive(clap::Parser)]
    struct Args {
        #[command(flatten)]
        config: crate::config::ConfigArgs,
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode([byte; 32]);
    let args = Args::try_parse_from(["test", &format!("--master-key={encoded}")]).expect("test arguments parse");
    let config = crate::config::Config::from_args(args.config).expect("test configuration");
    MasterKey::load(&config).expect("test master key")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sealed value opens with its key, purpose and id, and with nothing else.
    #[test]
    fn opens_only_in_its_own_context() {
        let key = master_key_for_tests(1);
        let sealed = seal(&key, "p", "id-1", b"secret").unwrap();
        assert_eq!(open(&key, "p", "id-1", &sealed).unwrap(), b"secret");
        assert!(open(&key, "p", "id-2", &sealed).is_err());
        assert!(open(&key, "q", "id-1", &sealed).is_err());
        assert!(open(&master_key_for_tests(2), "p", "id-1", &sealed).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(open(&key, "p", "id-1", &tampered).is_err());
        assert!(open(&key, "p", "id-1", &sealed[..5]).is_err());
    }

    /// Two seals of one value differ (fresh nonce) and do not contain the plaintext.
    #[test]
    fn nonces_are_fresh() {
        let key = master_key_for_tests(1);
        let a = seal(&key, "p", "id", b"the same plaintext").unwrap();
        let b = seal(&key, "p", "id", b"the same plaintext").unwrap();
        assert_ne!(a[..NONCE_LEN], b[..NONCE_LEN]);
        assert_eq!(a.len(), NONCE_LEN + 18 + 16);
        assert!(!a.windows(5).any(|w| w == b"plain"));
    }
}
