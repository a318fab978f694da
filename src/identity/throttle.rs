//! Brute-force defence for sign-in: failed passwords and second-factor codes are counted per
//! account and per client IP in PostgreSQL (so every server instance sees the same counts).
//! After a few failures each attempt must wait (1 s, doubling, up to a cap); at the limit the
//! account is locked for a while. An attempt made while waiting or locked is refused without
//! looking at the password, with the same page as a wrong password, and without bcrypt: a
//! flood that has locked itself out costs one indexed statement per attempt, not 270 ms of a
//! core (issue #9, item 5). Skipping bcrypt there tells nothing about whether the account
//! exists, because whether a key is waiting or locked does not depend on it (next paragraph):
//! the fast answer says only "this key is blocked", which follows from the attempts made on
//! it, for a real address and a made-up one alike. (One thing a prober could notice: a real
//! owner's successful sign-in clears a key that is not locked, so a lock that comes later than
//! the prober counted means the owner signed in meanwhile. That needs the right password
//! during the probing and tells only "in use"; we accept that for refusals that cost no CPU.
//! Timing that would tell a wrong password for a real account from an unknown address is
//! unchanged: every attempt that is checked does exactly one bcrypt.)
//!
//! The account key is the lower-cased email as typed, whether or not such an account exists:
//! an unknown address is delayed and locked exactly like a real one.
//!
//! The client IP key is the address for IPv4 and its /64 for IPv6: one subscriber gets a
//! whole /64 (RFC 6177) and can walk through it at no cost, so a single address means
//! nothing there.

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

/// What a client IP is counted under: the IPv4 address, or the IPv6 /64 (an IPv4-mapped
/// IPv6 address counts as its IPv4 address).
pub fn ip_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let net = ipnet::Ipv6Net::new(v6, 64).map(|n| n.trunc()).unwrap_or_default();
            net.to_string()
        }
    }
}

impl Attempt {
    pub fn new(email: &str, ip: Option<IpAddr>) -> Self {
        let account = sha256(format!("account:{}", email.trim().to_lowercase()).as_bytes());
        Self { account, ip: ip.map(|ip| sha256(format!("ip:{}", ip_key(ip)).as_bytes())) }
    }

    /// Guesses of something other than a password (user codes at the device page): counted
    /// per `kind` and `who` (e.g. the signed-in user) and per client IP, apart from sign-in's
    /// counters, with the same limits.
    pub fn guesses(kind: &str, who: &str, ip: Option<IpAddr>) -> Self {
        Self {
            account: sha256(format!("{kind}:{who}").as_bytes()),
            ip: ip.map(|ip| sha256(format!("{kind}-ip:{}", ip_key(ip)).as_bytes())),
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

/// What [`admit`] decided about an attempt.
#[derive(Debug, Clone, Copy)]
pub enum Admission {
    /// Counted: check it, then report [`failed`] or [`succeeded`].
    Check(Reserved),
    /// Refused unchecked: the client IP is locked, or the account key must wait or is locked.
    /// `audit` is true for the first refusal of that lock window only: one audit row per
    /// window, however many attempts a flood makes (ARCHITECTURE.md, "Client address, throttles and rate limits").
    Refused { audit: bool },
}

impl Admission {
    pub fn reserved(self) -> Option<Reserved> {
        match self {
            Admission::Check(r) => Some(r),
            Admission::Refused { .. } => None,
        }
    }
}

/// Counts the attempt on the account key if neither key is waiting or locked; `None` means
/// refuse it unchecked.
pub async fn reserve(
    db: &Database,
    limits: &ThrottleConfig,
    attempt: &Attempt,
) -> Result<Option<Reserved>, sqlx::Error> {
    Ok(decide(db, limits, attempt, false).await?.reserved())
}

/// As [`reserve`], and for a refusal also whether it is the first of its lock window (the
/// one to audit).
pub async fn admit(db: &Database, limits: &ThrottleConfig, attempt: &Attempt) -> Result<Admission, sqlx::Error> {
    decide(db, limits, attempt, true).await
}

async fn decide(
    db: &Database,
    limits: &ThrottleConfig,
    attempt: &Attempt,
    note: bool,
) -> Result<Admission, sqlx::Error> {
    let mut tx = db.unscoped().await?;
    if let Some(ip) = &attempt.ip
        && throttle::locked(&mut tx, ip).await?
    {
        let audit = note && throttle::note_refusal(&mut tx, ip).await?;
        tx.commit().await?;
        return Ok(Admission::Refused { audit });
    }
    let failures = throttle::reserve(&mut tx, &attempt.account, &limits.account).await?;
    let admission = match failures {
        Some(failures) => Admission::Check(Reserved { failures }),
        None => Admission::Refused { audit: note && throttle::note_refusal(&mut tx, &attempt.account).await? },
    };
    tx.commit().await?;
    Ok(admission)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// IPv4 counts per address, IPv6 per /64, and a mapped IPv4 address as itself.
    #[test]
    fn ip_keys() {
        let key = |s: &str| ip_key(s.parse().unwrap());
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        let a = Attempt::new("Ann@Example.com ", Some("2001:db8:1:2::1".parse().unwrap()));
        let b = Attempt::new("ann@example.com", Some("2001:db8:1:2:aaaa::2".parse().unwrap()));
        assert_eq!((a.account, a.ip), (b.account, b.ip), "one account, one /64");
        let c = Attempt::new("ann@example.com", Some("2001:db8:1:9::1".parse().unwrap()));
        assert_ne!(a.ip, c.ip);
    }
}
