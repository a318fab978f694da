//! The fixed-window request counters of `rate_limits`, for unauthenticated endpoints that
//! write rows (`POST /device_authorization`): shared by every server instance, swept by the
//! janitor once their window has ended (ARCHITECTURE.md, "Client address, throttles and rate
//! limits").

use super::Tx;

/// Counts one request on a fixed-window counter of `rate_limits` (a new window of
/// `window_seconds` once the last one ended). `Ok(None)`: within `limit`; `Ok(Some(secs))`:
/// over it, retry after `secs` (the rest of the window, at least 1). Refused requests count
/// too, so hammering does not shorten the wait.
pub async fn hit(tx: &mut Tx, key_hash: &[u8], limit: i32, window_seconds: i64) -> Result<Option<u64>, sqlx::Error> {
    let (hits, left): (i32, i64) = sqlx::query_as(
        "INSERT INTO rate_limits AS r (key_hash, hits, window_end) \
         VALUES ($1, 1, now() + make_interval(secs => $2)) \
         ON CONFLICT (key_hash) DO UPDATE SET \
           hits = CASE WHEN r.window_end <= now() THEN 1 ELSE least(r.hits, 2147483646) + 1 END, \
           window_end = CASE WHEN r.window_end <= now() THEN now() + make_interval(secs => $2) \
                        ELSE r.window_end END \
         RETURNING hits, ceil(extract(epoch FROM r.window_end - now()))::bigint",
    )
    .bind(key_hash)
    .bind(window_seconds as f64)
    .fetch_one(tx.conn())
    .await?;
    Ok((hits > limit).then(|| u64::try_from(left).unwrap_or(0).max(1)))
}
