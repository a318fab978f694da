//! Tokens: signing keys, JWT signing and verification (ARCHITECTURE.md, "Tokens").
//!
//! - [`keys`]: one key — algorithm, RFC 7638 `kid`, published JWK, sealed private part;
//! - [`seal`]: AES-256-GCM under the master key, bound to the row it belongs to;
//! - `key_store`: [`KeyStore`], the decrypted signing keys in memory; signs, verifies, serves
//!   the JWKS (it stores keys, not tokens);
//! - `key_rotation`: creating the first signing keys ([`ensure_signing_keys`]) and rotating
//!   them ([`rotate_signing_keys`]: new keys, retired ones kept published until their tokens
//!   have expired). Not the rotation of refresh tokens, which `protocol::token` does on every
//!   refresh;
//! - [`jwt`]: compact JWS encoding, `typ` values, and the claim checks after verification;
//! - [`dpop`]: DPoP proofs (RFC 9449) and the server nonces.
//!
//! Wiring: `serve` calls [`KeyStore::load`] once (it creates the first keys on an empty
//! database) and [`spawn_reloader`] every `LCA_KEY_RELOAD_SECS` (a minute by default, at most
//! 4 minutes: inside [`KeyRotationPolicy::reload_lag`]); `keys rotate` calls
//! [`rotate_signing_keys_by`] with [`KeyRotationPolicy::default`] and prints the
//! [`KeyRotationReport`].
//!
//! Errors are `anyhow` (startup, CLI, signing) and [`VerifyError`] for refused tokens; none
//! of them carries key material.

pub mod dpop;
pub mod jwt;
mod key_rotation;
mod key_store;
pub mod keys;
pub mod seal;

pub use jwt::{Expected, TokenType, VerifyError, check_claims};
pub use key_rotation::{
    CreatedKey, KeyRotationPolicy, KeyRotationReport, RetiredKey, ensure_signing_keys, rotate_signing_keys,
    rotate_signing_keys_by,
};
pub use key_store::{KeyStore, spawn_reloader};
pub use keys::SigningAlg;
