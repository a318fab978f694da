//! Tokens: signing keys, JWT signing and verification (DESIGN.md, "Token contracts").
//!
//! - [`keys`]: one key — algorithm, RFC 7638 `kid`, published JWK, sealed private part;
//! - [`seal`]: AES-256-GCM under the master key, bound to the row it belongs to;
//! - [`KeyStore`]: the decrypted keys in memory; signs, verifies, serves the JWKS;
//! - [`rotate()`]: new keys, retired ones kept published until their tokens have expired;
//! - [`jwt`]: compact JWS encoding, `typ` values, and the claim checks after verification.
//!
//! Wiring: `serve` calls [`KeyStore::load`] once (it creates the first keys on an empty
//! database) and [`spawn_reloader`] with [`DEFAULT_RELOAD_INTERVAL`]; `keys rotate` calls
//! [`rotate()`] with [`RotationPolicy::default`] and prints the [`RotationReport`].
//!
//! Errors are `anyhow` (startup, CLI, signing) and [`VerifyError`] for refused tokens; none
//! of them carries key material.

pub mod jwt;
pub mod keys;
mod rotate;
pub mod seal;
mod store;

pub use jwt::{Expected, TokenType, VerifyError, check_claims};
pub use keys::SigningAlg;
pub use rotate::{CreatedKey, RetiredKey, RotationPolicy, RotationReport, ensure_keys, rotate, rotate_by};
pub use store::{DEFAULT_RELOAD_INTERVAL, KeyStore, spawn_reloader};
