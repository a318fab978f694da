//! Password hashing and rules.
//!
//! bcrypt at cost 12 takes about 270 ms of one core. Hashing runs on tokio's blocking pool,
//! with at most one hash per core at a time, so a burst of logins queues here instead of
//! stalling the async workers that serve every other endpoint.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::error::ServiceError;

/// bcrypt cost for user passwords (DESIGN.md).
pub const BCRYPT_COST: u32 = 12;
/// Shortest password accepted.
pub const MIN_CHARS: usize = 12;
/// bcrypt reads at most 72 bytes; a longer password would be silently cut, so it is refused.
pub const MAX_BYTES: usize = 72;

/// Runs bcrypt on a bounded share of the blocking pool.
#[derive(Clone, Debug)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    cost: u32,
}

impl PasswordHasher {
    /// One concurrent hash per available core.
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Self { permits: Arc::new(Semaphore::new(cores)), cost: BCRYPT_COST }
    }

    /// Hashes a password.
    pub async fn hash(&self, password: &str) -> Result<String, ServiceError> {
        let cost = self.cost;
        let password = password.to_owned();
        self.run(move || bcrypt::hash(password, cost)).await
    }

    /// Checks a password against a stored hash. With no stored hash (an unknown email), it
    /// still does the work of one comparison, so the answer takes the same time either way.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool, ServiceError> {
        let password = password.to_owned();
        let stored = stored.map(str::to_owned);
        self.run(move || match stored {
            Some(hash) => bcrypt::verify(password, &hash),
            None => bcrypt::verify(password, dummy_hash()).map(|_| false),
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, bcrypt::BcryptError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let _permit = self.permits.acquire().await.map_err(|e| ServiceError::Internal(e.into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| ServiceError::Internal(e.into()))?
            .map_err(|e| ServiceError::Internal(e.into()))
    }
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new()
    }
}

/// Makes the dummy hash now (call it at start-up on the blocking pool), so that the first
/// sign-in for an unknown account does not take one bcrypt longer than the others.
pub fn warm_up() {
    let _ = dummy_hash();
}

/// A cost-12 hash of a random password, to compare against when the account does not exist.
/// Made once: at start-up by [`warm_up`], else by the first such comparison.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let random = hex::encode(crate::secrets::random_bytes::<16>());
        bcrypt::hash(random, BCRYPT_COST).unwrap_or_default()
    });
    &DUMMY
}

/// Common long passwords (`common_passwords.txt`, shipped in the binary).
fn is_common(password: &str) -> bool {
    static LIST: std::sync::LazyLock<std::collections::HashSet<&'static str>> = std::sync::LazyLock::new(|| {
        include_str!("common_passwords.txt").lines().filter(|l| !l.is_empty() && !l.starts_with('#')).collect()
    });
    let lower = password.to_lowercase();
    // Spaces do not make a common phrase uncommon ("correct horse battery staple").
    let squeezed: String = lower.chars().filter(|c| !c.is_whitespace()).collect();
    LIST.contains(lower.as_str()) || LIST.contains(squeezed.as_str())
}

/// Checks a new password against the rules: at least 12 characters, at most 72 bytes, more
/// than three different characters, and not on the list of common passwords.
pub fn check_rules(password: &str) -> Result<(), ServiceError> {
    if password.chars().count() < MIN_CHARS {
        return Err(ServiceError::Invalid(format!("the password must have at least {MIN_CHARS} characters")));
    }
    if password.len() > MAX_BYTES {
        return Err(ServiceError::Invalid(format!("the password must have at most {MAX_BYTES} bytes")));
    }
    let distinct: std::collections::HashSet<char> = password.chars().collect();
    if distinct.len() <= 3 || is_common(password) {
        return Err(ServiceError::Invalid("this password is too common; choose another".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Too short and too long passwords are refused; others pass.
    #[test]
    fn rules() {
        assert!(check_rules("short").is_err());
        assert!(check_rules("eleven char").is_err());
        assert!(check_rules("twelve chars").is_ok());
        assert!(check_rules(&"xyz!".repeat(18)).is_ok());
        assert!(check_rules(&"xyz!".repeat(18).replacen('x', "xx", 1)).is_err(), "73 bytes");
        for common in [
            "password1234",
            "Password1234",
            "QWERTY123456",
            "aaaaaaaaaaaaaaa",
            "abababababab",
            "Correct Horse Battery Staple",
        ] {
            assert!(check_rules(common).is_err(), "{common}");
        }
    }

    /// A hash verifies its password only; an unknown account never verifies.
    #[tokio::test]
    async fn hash_and_verify() {
        let hasher = PasswordHasher { permits: Arc::new(Semaphore::new(2)), cost: 4 };
        let hash = hasher.hash("correct horse battery").await.unwrap();
        assert!(hasher.verify("correct horse battery", Some(&hash)).await.unwrap());
        assert!(!hasher.verify("wrong horse battery", Some(&hash)).await.unwrap());
        assert!(!hasher.verify("correct horse battery", None).await.unwrap());
        assert!(dummy_hash().starts_with("$2b$12$"), "the dummy hash must be a cost-12 bcrypt hash");
    }
}
