//! Brute-force defence for sign-in: failed passwords and second-factor codes are counted per
//! account and per client IP in PostgreSQL (so every server instance sees the same counts).
//! After a few failures each attempt must wait (1 s, doubling, up to a cap); at the limit the
//! account is locked for a while. An attempt made while waiting or locked is refused without
//! looking at the password, but only after the same bcrypt work, and with the same page as a
//! wrong password, so a caller cannot tell a lock from a typo or an unknown address.
//!
//! The account key is the lower-cased email as typed, whether or not such an account exists:
//! an unknown address is delayed and locked exactly like a real one.

use std::net::IpAddr;

use crate::config::ThrottleConfig;
use crate::db::Database;
use crate::db::throttle;
use crate::secrets::sha256;

/// The counter keys of one attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    account: [u8; 32],
    ip: Option<[u8; 32]>,
}

impl Attempt {
    pub fn new(email: &str, ip: Option<IpAddr>) -> Self {
        let account = sha256(format!("account:{}", email.trim().to_lowercase()).as_bytes());
        Self { account, ip: ip.map(|ip| sha256(format!("ip:{ip}").as_bytes())) }
    }

    /// Guesses of something other than a password (user codes at the device page): counted
    /// per `kind` and `who` (e.g. the signed-in user) and per client IP, apart from sign-in's
    /// counters, with the same limits.
    pub fn guesses(kind: &str, who: &str, ip: Option<IpAddr>) -> Self {
        Self {
            account: sha256(format!("{kind}:{who}").as_bytes()),
            ip: ip.map(|ip| sha256(format!("{kind}-ip:{ip}").as_bytes())),
        }
    }
}

/// What a failure led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub failures: i32,
    /// This failure locked the account.
    pub locked_account: bool,
    /// This failure locked the client IP.
    pub locked_ip: bool,
}

/// An attempt that may be checked: it has been counted already.
#[derive(Debug, Clone, Copy)]
pub struct Reserved {
    failures: i32,
}

/// Counts the attempt on the account key if neither key is waiting or locked; `None` means
/// refuse it unchecked (after the same work as a check).
pub async fn reserve(
    db: &Database,
    limits: &ThrottleConfig,
    attempt: &Attempt,
) -> Result<Option<Reserved>, sqlx::Error> {
    let mut tx = db.unscoped().await?;
    if let Some(ip) = &attempt.ip
        && throttle::locked(&mut tx, ip).await?
    {
        tx.commit().await?;
        return Ok(None);
    }
    let failures = throttle::reserve(&mut tx, &attempt.account, &limits.account).await?;
    tx.commit().await?;
    Ok(failures.map(|failures| Reserved { failures }))
}

/// A reserved attempt failed: the account locks at the limit, and the client IP counts it.
pub async fn failed(
    db: &Database,
    limits: &ThrottleConfig,
    attempt: &Attempt,
    reserved: Reserved,
) -> Result<Failure, sqlx::Error> {
    let mut tx = db.unscoped().await?;
    let locked_account = throttle::lock_if_due(&mut tx, &attempt.account, reserved.failures, &limits.account).await?;
    let locked_ip = match &attempt.ip {
        Some(ip) => throttle::record_failure(&mut tx, ip, &limits.ip).await?,
        None => false,
    };
    tx.commit().await?;
    Ok(Failure { failures: reserved.failures, locked_account, locked_ip })
}

/// Gives back the one attempt a right answer reserved (user codes: a right code must neither
/// count as a guess nor clear the guesses before it).
pub async fn refund(db: &Database, attempt: &Attempt) -> Result<(), sqlx::Error> {
    let mut tx = db.unscoped().await?;
    throttle::refund(&mut tx, &attempt.account).await?;
    tx.commit().await
}

/// Forgets the account's attempts after a complete sign-in.
pub async fn succeeded(db: &Database, attempt: &Attempt) -> Result<(), sqlx::Error> {
    let mut tx = db.unscoped().await?;
    throttle::clear(&mut tx, &attempt.account).await?;
    tx.commit().await
}
