//! Failed sign-in counters (`login_throttle`), per account and per client IP.
//!
//! An account key counts every attempt before it is checked ([`reserve`]), so concurrent
//! attempts never slip past one open check; the client IP key counts failures and only locks.

use super::Tx;
use crate::config::ThrottleLimits;

/// Whether a key is locked now.
pub async fn locked(tx: &mut Tx, key_hash: &[u8]) -> Result<bool, sqlx::Error> {
    let locked: Option<bool> =
        sqlx::query_scalar("SELECT coalesce(locked_until > now(), false) FROM login_throttle WHERE key_hash = $1")
            .bind(key_hash)
            .fetch_optional(tx.conn())
            .await?;
    Ok(locked.unwrap_or(false))
}

/// Adds one to a key's count in its window (a new window once the old one is over), and
/// returns the count. With `only_when_open`, nothing is counted (`None`) while the key must
/// wait or is locked.
async fn count(
    tx: &mut Tx,
    key_hash: &[u8],
    limits: &ThrottleLimits,
    only_when_open: bool,
) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO login_throttle AS t (key_hash, failures, window_start, next_allowed_at, updated_at) \
         VALUES ($1, 1, now(), now(), now()) \
         ON CONFLICT (key_hash) DO UPDATE SET \
           failures = CASE WHEN t.window_start < now() - make_interval(secs => $2) THEN 1 ELSE t.failures + 1 END, \
           window_start = CASE WHEN t.window_start < now() - make_interval(secs => $2) THEN now() \
                          ELSE t.window_start END, \
           updated_at = now() \
         WHERE NOT $3 OR (t.next_allowed_at <= now() AND coalesce(t.locked_until <= now(), true)) \
         RETURNING failures",
    )
    .bind(key_hash)
    .bind(limits.window_seconds as f64)
    .bind(only_when_open)
    .fetch_optional(tx.conn())
    .await
}

/// Counts an attempt *before* it is checked, if the key is open: one upsert that adds the
/// attempt only when no delay or lock holds, then sets the delay the next attempt must wait.
/// Returns the attempts in the window, or `None` when the key must wait or is locked (the
/// attempt must then be refused unchecked). Counting first means parallel requests cannot all
/// pass one open check: after the free attempts, each one sets the delay for the next.
pub async fn reserve(tx: &mut Tx, key_hash: &[u8], limits: &ThrottleLimits) -> Result<Option<i32>, sqlx::Error> {
    // The upsert locks the row, so the update below sees this count and no other.
    let failures = count(tx, key_hash, limits, true).await?;
    let Some(failures) = failures else { return Ok(None) };
    sqlx::query("UPDATE login_throttle SET next_allowed_at = now() + make_interval(secs => $2) WHERE key_hash = $1")
        .bind(key_hash)
        .bind(delay_after(failures, limits) as f64)
        .execute(tx.conn())
        .await?;
    Ok(Some(failures))
}

/// After a reserved attempt failed: locks the key if it reached the limit. True if this
/// failure locked it.
pub async fn lock_if_due(
    tx: &mut Tx,
    key_hash: &[u8],
    failures: i32,
    limits: &ThrottleLimits,
) -> Result<bool, sqlx::Error> {
    if failures < limits.lock_after {
        return Ok(false);
    }
    Ok(sqlx::query(
        "UPDATE login_throttle SET locked_until = now() + make_interval(secs => $2) \
         WHERE key_hash = $1 AND coalesce(locked_until <= now(), true)",
    )
    .bind(key_hash)
    .bind(limits.lock_seconds as f64)
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1)
}

/// Counts a failure of a key that only locks (the client IP): no delay, a lock at the limit.
/// True if this failure locked it.
pub async fn record_failure(tx: &mut Tx, key_hash: &[u8], limits: &ThrottleLimits) -> Result<bool, sqlx::Error> {
    let failures = count(tx, key_hash, limits, false).await?.unwrap_or(0);
    lock_if_due(tx, key_hash, failures, limits).await
}

/// A refused attempt on a waiting or locked key: true for the first refusal of the current
/// block (it is audited), false for every later one until the block ends. One UPDATE, so of
/// concurrent refusals exactly one is the first.
pub async fn note_refusal(tx: &mut Tx, key_hash: &[u8]) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE login_throttle SET refusal_noted_until = \
           CASE WHEN locked_until > now() THEN locked_until ELSE greatest(next_allowed_at, now()) END \
         WHERE key_hash = $1 AND coalesce(refusal_noted_until <= now(), true)",
    )
    .bind(key_hash)
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1)
}

/// Seconds to wait after `failures` failures: none for the free ones, then 1, 2, 4, ... up to
/// the maximum.
pub fn delay_after(failures: i32, limits: &ThrottleLimits) -> i64 {
    if failures < limits.free {
        return 0;
    }
    let exponent = u32::try_from(failures - limits.free).unwrap_or(0).min(20);
    (1i64 << exponent).min(limits.max_delay_seconds)
}

/// Takes one attempt back (the delay it set stays: it lapses by itself).
pub async fn refund(tx: &mut Tx, key_hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE login_throttle SET failures = greatest(failures - 1, 0) WHERE key_hash = $1")
        .bind(key_hash)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Forgets an account's attempts after a successful sign-in (a locked key is never reserved,
/// so a success cannot end a lock).
pub async fn clear(tx: &mut Tx, key_hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_throttle WHERE key_hash = $1 AND coalesce(locked_until <= now(), true)")
        .bind(key_hash)
        .execute(tx.conn())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No delay for the free failures, then doubling delays up to the cap.
    #[test]
    fn delays_grow_to_the_cap() {
        let l =
            ThrottleLimits { free: 3, lock_after: 10, lock_seconds: 900, max_delay_seconds: 30, window_seconds: 900 };
        let delays: Vec<i64> = (1..=10).map(|f| delay_after(f, &l)).collect();
        assert_eq!(delays, [0, 0, 1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
