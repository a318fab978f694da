//! Password hashing and rules.
//!
//! bcrypt at cost 12 takes about 270 ms of one core. Hashing runs on tokio's blocking pool,
//! with at most one hash per core at a time, so a burst of logins queues here instead of
//! stalling the async workers that serve every other endpoint. The queue is bounded, and so
//! is each client IP's share of it (issue #9, item 5):
//! - at most [`QUEUE_PER_CORE`] hashes per core wait; past that a caller gets
//!   [`ServiceError::Busy`] (503 with `Retry-After`) at once, instead of waiting until the
//!   request times out while holding a connection;
//! - one client IP (an IPv6 /64, `throttle::ip_key`) has at most half the cores' worth of
//!   places in that queue. More of its requests (up to [`PER_IP_WAITING`]) wait up to
//!   [`PER_IP_WAIT`] for one (people behind one NAT signing in at once all get in); beyond
//!   that, or after that wait, [`ServiceError::TooManyAtOnce`] (429). A flood from one address then holds at most
//!   that share of the CPU, and sign-ins from everywhere else keep the rest. Waiting for its
//!   share costs a request no place in the shared queue, so one address cannot fill it.
//!
//! Both limits are in process: they bound the CPU of *this* instance, which is what they are
//! for (the brute-force counters, which must hold across instances, are in PostgreSQL).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::service_error::ServiceError;
use crate::telemetry::metrics;

/// bcrypt cost for user passwords (ARCHITECTURE.md, "Single-use things": only passwords use bcrypt).
pub const BCRYPT_COST: u32 = 12;
/// Shortest password accepted.
pub const MIN_CHARS: usize = 12;
/// bcrypt reads at most 72 bytes; a longer password would be silently cut, so it is refused.
pub const MAX_BYTES: usize = 72;
/// Hashes that may wait per core: at about 270 ms each, the last in a full queue starts within
/// about 2 s, well inside the request timeout.
pub const QUEUE_PER_CORE: usize = 8;
/// About how long one cost-12 hash takes, for `Retry-After`.
const HASH_MILLIS: u64 = 270;
/// How long a request waits for its IP's share of the hasher before a 429.
pub const PER_IP_WAIT: Duration = Duration::from_secs(2);
/// Requests of one IP that may wait for its share at once; more get a 429 straight away.
/// Waiting is cheap (a parked task, no CPU, no place in the shared queue), and a flood that
/// waits sends far fewer requests than one answered with instant 429s: measured with
/// `benches/login_flood.rs`, instant 429s let one address send 20 000 requests a second and
/// take the CPU from everyone else's sign-ins.
pub const PER_IP_WAITING: usize = 64;

/// Runs bcrypt on a bounded share of the blocking pool.
#[derive(Clone, Debug)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
    cost: u32,
}

#[derive(Debug)]
struct Inner {
    permits: Semaphore,
    cores: usize,
    /// Hashes running or waiting, and the most allowed.
    in_flight: AtomicUsize,
    max_in_flight: usize,
    /// Each client IP key's share, while it has requests; and its size.
    per_ip: Mutex<HashMap<String, IpShare>>,
    max_per_ip: usize,
    ip_waiting: usize,
    ip_wait: Duration,
    /// bcrypt runs started since start-up (tests and metrics read it).
    runs: AtomicU64,
}

/// One client IP key's share of the queue: `max_per_ip` permits, and how many requests hold
/// or wait for one (the entry goes when that is zero).
#[derive(Debug)]
struct IpShare {
    permits: Arc<Semaphore>,
    users: usize,
}

/// A place in the hash queue, held from before the throttle check to the end of the hash;
/// dropping it gives the place (and the IP's share) back.
#[derive(Debug)]
pub struct Ticket {
    // Field order: the queue place goes first, then the IP's share.
    queued: Queued,
    cost: u32,
    _share: Option<IpPlace>,
}

/// Counted in `in_flight`.
#[derive(Debug)]
struct Queued(Arc<Inner>);

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counted as a user of an IP's share; holds one of its permits once it has one.
#[derive(Debug)]
struct IpPlace {
    inner: Arc<Inner>,
    key: String,
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for IpPlace {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut map = self.inner.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(share) = map.get_mut(&self.key) {
            share.users -= 1;
            if share.users == 0 {
                map.remove(&self.key);
            }
        }
    }
}

impl PasswordHasher {
    /// One concurrent hash per available core, [`QUEUE_PER_CORE`] waiting per core, and half
    /// the cores (at least one) per client IP.
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Self::with_limits(cores, cores * QUEUE_PER_CORE, (cores / 2).max(1))
    }

    /// `cores` hashes at once, `queue` more waiting, `per_ip` running or waiting per client IP.
    pub fn with_limits(cores: usize, queue: usize, per_ip: usize) -> Self {
        Self::with_cost(cores, queue, per_ip, BCRYPT_COST)
    }

    fn with_cost(cores: usize, queue: usize, per_ip: usize, cost: u32) -> Self {
        Self::with_all(cores, queue, per_ip, PER_IP_WAITING, PER_IP_WAIT, cost)
    }

    fn with_all(cores: usize, queue: usize, per_ip: usize, ip_waiting: usize, ip_wait: Duration, cost: u32) -> Self {
        let cores = cores.max(1);
        let inner = Inner {
            permits: Semaphore::new(cores),
            cores,
            in_flight: AtomicUsize::new(0),
            max_in_flight: cores + queue,
            per_ip: Mutex::new(HashMap::new()),
            max_per_ip: per_ip.max(1),
            ip_waiting,
            ip_wait,
            runs: AtomicU64::new(0),
        };
        Self { inner: Arc::new(inner), cost }
    }

    /// bcrypt runs started so far.
    pub fn runs(&self) -> u64 {
        self.inner.runs.load(Ordering::Acquire)
    }

    /// Hashes running or waiting now, and the most there may be before a 503 (for metrics).
    pub fn queue(&self) -> (usize, usize) {
        (self.inner.in_flight.load(Ordering::Acquire), self.inner.max_in_flight)
    }

    /// Takes a place in the queue for a hash on behalf of `ip` (`None`: not a client's, e.g.
    /// the CLI), waiting at most [`PER_IP_WAIT`] for the IP's share, or says why not: this IP
    /// has its share and enough waiting (`TooManyAtOnce`), or the queue is full (`Busy`, at
    /// once: waiting for it is what the bound is there to prevent).
    pub async fn ticket(&self, ip: Option<IpAddr>) -> Result<Ticket, ServiceError> {
        let share = match ip {
            Some(ip) => Some(self.ip_place(super::throttle::ip_key(ip)).await?),
            None => None,
        };
        let inner = &self.inner;
        let before = inner.in_flight.fetch_add(1, Ordering::AcqRel);
        let queued = Queued(inner.clone());
        if before >= inner.max_in_flight {
            let waiting = u64::try_from(before.saturating_sub(inner.cores)).unwrap_or(u64::MAX);
            let cores = u64::try_from(inner.cores).unwrap_or(1);
            let retry_after = (waiting.saturating_mul(HASH_MILLIS) / cores).div_ceil(1000).clamp(1, 30);
            drop(queued);
            metrics::hasher_refused("queue_full");
            return Err(ServiceError::Busy { retry_after });
        }
        Ok(Ticket { queued, cost: self.cost, _share: share })
    }

    /// One of the IP key's permits, after at most `ip_wait`.
    async fn ip_place(&self, key: String) -> Result<IpPlace, ServiceError> {
        let inner = &self.inner;
        // Its own hashes end within about one hash time.
        let too_many = ServiceError::TooManyAtOnce { retry_after: 1 };
        let permits = {
            let mut map = inner.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let share = map
                .entry(key.clone())
                .or_insert_with(|| IpShare { permits: Arc::new(Semaphore::new(inner.max_per_ip)), users: 0 });
            if share.users >= inner.max_per_ip + inner.ip_waiting {
                metrics::hasher_refused("ip_share");
                return Err(too_many);
            }
            share.users += 1;
            share.permits.clone()
        };
        // From here on, dropping the place undoes the count.
        let mut place = IpPlace { inner: inner.clone(), key, permit: None };
        match tokio::time::timeout(inner.ip_wait, permits.acquire_owned()).await {
            Ok(Ok(permit)) => {
                place.permit = Some(permit);
                Ok(place)
            }
            _ => {
                metrics::hasher_refused("ip_share");
                Err(too_many)
            }
        }
    }

    /// Hashes a password.
    pub async fn hash(&self, password: &str) -> Result<String, ServiceError> {
        self.ticket(None).await?.hash(password).await
    }

    /// Checks a password against a stored hash; see [`Ticket::verify`].
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool, ServiceError> {
        self.ticket(None).await?.verify(password, stored).await
    }
}

impl Ticket {
    /// Hashes a password.
    pub async fn hash(self, password: &str) -> Result<String, ServiceError> {
        let cost = self.cost;
        let password = password.to_owned();
        self.run(move || bcrypt::hash(password, cost)).await
    }

    /// Checks a password against a stored hash. With no stored hash (an unknown email), it
    /// still does the work of one comparison, so the answer takes the same time either way.
    pub async fn verify(self, password: &str, stored: Option<&str>) -> Result<bool, ServiceError> {
        let password = password.to_owned();
        let stored = stored.map(str::to_owned);
        self.run(move || match stored {
            Some(hash) => bcrypt::verify(password, &hash),
            None => bcrypt::verify(password, dummy_hash()).map(|_| false),
        })
        .await
    }

    async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce() -> Result<T, bcrypt::BcryptError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let inner = &self.queued.0;
        let _permit = inner.permits.acquire().await.map_err(|e| ServiceError::Internal(e.into()))?;
        inner.runs.fetch_add(1, Ordering::AcqRel);
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

/// What the rules find wrong with a new password ([`problem`]); a page says it in its own
/// language, the command line and the API with `Display`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// Fewer than [`MIN_CHARS`] characters.
    TooShort,
    /// More than [`MAX_BYTES`] bytes (bcrypt's limit).
    TooLong,
    /// Three different characters or fewer, or on the list of common passwords.
    TooCommon,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::TooShort => write!(f, "the password must have at least {MIN_CHARS} characters"),
            Problem::TooLong => write!(f, "the password must have at most {MAX_BYTES} bytes"),
            Problem::TooCommon => f.write_str("this password is too common; choose another"),
        }
    }
}

/// Checks a new password against the rules: at least 12 characters, at most 72 bytes, more
/// than three different characters, and not on the list of common passwords.
pub fn problem(password: &str) -> Option<Problem> {
    if password.chars().count() < MIN_CHARS {
        return Some(Problem::TooShort);
    }
    if password.len() > MAX_BYTES {
        return Some(Problem::TooLong);
    }
    let distinct: std::collections::HashSet<char> = password.chars().collect();
    (distinct.len() <= 3 || is_common(password)).then_some(Problem::TooCommon)
}

/// [`problem`] as the domain's error.
pub fn check_rules(password: &str) -> Result<(), ServiceError> {
    problem(password).map_or(Ok(()), |p| Err(ServiceError::Invalid(p.to_string())))
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
        let hasher = PasswordHasher::with_cost(2, 4, 1, 4);
        let hash = hasher.hash("correct horse battery").await.unwrap();
        assert!(hasher.verify("correct horse battery", Some(&hash)).await.unwrap());
        assert!(!hasher.verify("wrong horse battery", Some(&hash)).await.unwrap());
        assert!(!hasher.verify("correct horse battery", None).await.unwrap());
        assert!(dummy_hash().starts_with("$2b$12$"), "the dummy hash must be a cost-12 bcrypt hash");
        assert_eq!(hasher.runs(), 4);
    }

    /// The queue and each IP's share are bounded, a request waits a little for its IP's
    /// share but never for the queue, and a ticket gives everything back when it is dropped,
    /// used or not.
    #[tokio::test]
    async fn tickets_are_bounded() {
        let wait = Duration::from_millis(300);
        let at_once = Duration::from_millis(100);
        let hasher = PasswordHasher::with_all(1, 2, 2, 1, wait, 4);
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        let a1 = hasher.ticket(a).await.unwrap();
        let a2 = hasher.ticket(a).await.unwrap();
        // A third of a's waits (one may), then gives up; a fourth is refused at once.
        let waiting = tokio::spawn({
            let h = hasher.clone();
            async move { h.ticket(a).await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        let started = tokio::time::Instant::now();
        assert!(matches!(hasher.ticket(a).await, Err(ServiceError::TooManyAtOnce { retry_after: 1 })));
        assert!(started.elapsed() < at_once, "refused at once");
        assert!(matches!(waiting.await.unwrap(), Err(ServiceError::TooManyAtOnce { .. })), "after the wait");
        assert!(started.elapsed() >= wait - at_once);
        // One /64 is one client; the queue (1 running + 2 waiting) is full now.
        let c1 = hasher.ticket(ip("2001:db8:1:2::1")).await.unwrap();
        let started = tokio::time::Instant::now();
        assert!(matches!(hasher.ticket(None).await, Err(ServiceError::Busy { .. })));
        assert!(matches!(hasher.ticket(b).await, Err(ServiceError::Busy { .. })));
        assert!(started.elapsed() < at_once, "a full queue answers at once");
        // A waiter gets the share as soon as one of a's tickets ends.
        let waiting = tokio::spawn({
            let h = hasher.clone();
            async move { h.ticket(a).await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        drop(a1);
        assert!(waiting.await.unwrap().is_ok());
        let b1 = hasher.ticket(b).await.unwrap();
        drop((a2, b1));
        let c2 = hasher.ticket(ip("2001:db8:1:2:ffff::9")).await.unwrap();
        let started = tokio::time::Instant::now();
        assert!(matches!(hasher.ticket(ip("2001:db8:1:2::77")).await, Err(ServiceError::TooManyAtOnce { .. })));
        assert!(started.elapsed() >= wait, "waited for its share, then gave up");
        assert!(hasher.ticket(ip("2001:db8:1:3::1")).await.is_ok(), "the next /64 is someone else");
        drop((c1, c2));
        assert_eq!(hasher.inner.in_flight.load(Ordering::Acquire), 0);
        assert!(hasher.inner.per_ip.lock().unwrap().is_empty(), "no key is kept once its hashes end");
    }
}
