//! What the janitor deletes: one [`Sweep`] per kind of expired row, each a batched `DELETE`.
//!
//! To clean up a new table, add one entry to [`SWEEPS`]. A sweep's statement
//! - takes the batch size as `$1` and deletes at most that many rows, chosen by a
//!   `... IN (SELECT <key> ... LIMIT $1)` subquery, so every batch is a short transaction;
//! - returns the number of rows it deleted as one `bigint` (`WITH gone AS (DELETE ...
//!   RETURNING 1) SELECT count(*) FROM gone`);
//! - deletes only what nothing needs any more, and is safe to run at any moment, twice.
//!
//! Row Level Security: tenant tables are `FORCE`d, and the janitor runs as the runtime role
//! like everything else. A [`Scope::PerTenant`] sweep runs in a transaction opened for each
//! tenant in turn (the policy adds the tenant to the statement), rather than through a
//! `SECURITY DEFINER` function that could delete across tenants: no new power, and a new sweep
//! is one Rust entry, not a migration. The cost is a few cheap statements per tenant per run.
//! Global tables ([`Scope::Global`]) run in a transaction without a tenant.
//!
//! The audit log is never swept: it is append-only, and its triggers would refuse anyway.

use super::Tx;

/// Where a sweep runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A table without a tenant (browser sessions, signing keys).
    Global,
    /// A tenant table: once per tenant, in that tenant's transaction.
    PerTenant,
}

/// One kind of expired row and the statement that deletes a batch of them.
#[derive(Debug, Clone, Copy)]
pub struct Sweep {
    /// The name the report and the log use (usually the table).
    pub name: &'static str,
    pub scope: Scope,
    /// `$1`: the batch size. Returns the number of rows deleted.
    pub sql: &'static str,
}

/// Every sweep, in the order they run (rows that reference others go first).
pub const SWEEPS: &[Sweep] = &[
    // Sessions past their expiry (load() already ignores them).
    Sweep {
        name: "browser_sessions",
        scope: Scope::Global,
        sql: "WITH gone AS (DELETE FROM browser_sessions WHERE id_hash IN \
              (SELECT id_hash FROM browser_sessions WHERE expires_at < now() LIMIT $1) RETURNING 1) \
              SELECT count(*) FROM gone",
    },
    // Codes past their expiry, consumed or not. A consumed code is kept until then so that a
    // replay within its lifetime still finds it and revokes what it issued (RFC 6749 §4.1.2).
    Sweep {
        name: "authorization_codes",
        scope: Scope::PerTenant,
        sql: "WITH gone AS (DELETE FROM authorization_codes WHERE (tenant_id, code_hash) IN \
              (SELECT tenant_id, code_hash FROM authorization_codes WHERE expires_at < now() LIMIT $1) RETURNING 1) \
              SELECT count(*) FROM gone",
    },
    // Device authorization requests past their expiry, whatever their state. A consumed one
    // is kept until then so that a replay of its device code still finds it and revokes what
    // it issued (RFC 8628 §3.5 with RFC 6749 §4.1.2).
    Sweep {
        name: "device_grants",
        scope: Scope::PerTenant,
        sql: "WITH gone AS (DELETE FROM device_grants WHERE (tenant_id, device_code_hash) IN \
              (SELECT tenant_id, device_code_hash FROM device_grants WHERE expires_at < now() LIMIT $1) RETURNING 1) \
              SELECT count(*) FROM gone",
    },
    // Access tokens are kept by jti for introspection; an expired one is inactive anyway.
    Sweep {
        name: "access_tokens",
        scope: Scope::PerTenant,
        sql: "WITH gone AS (DELETE FROM access_tokens WHERE (tenant_id, jti) IN \
              (SELECT tenant_id, jti FROM access_tokens WHERE expires_at < now() LIMIT $1) RETURNING 1) \
              SELECT count(*) FROM gone",
    },
    // Refresh tokens of families that have ended (revoked, or past their lifetime), and unused
    // ones that expired. A *used* token of a live family stays: presenting it again is reuse,
    // which must still end the family (RFC 9700 §4.14.2).
    Sweep {
        name: "refresh_tokens",
        scope: Scope::PerTenant,
        sql: "WITH gone AS (DELETE FROM refresh_tokens WHERE (tenant_id, token_hash) IN \
              (SELECT r.tenant_id, r.token_hash FROM refresh_tokens r \
                 JOIN token_families f ON f.tenant_id = r.tenant_id AND f.family_id = r.family_id \
               WHERE f.revoked_at IS NOT NULL OR f.expires_at < now() \
                  OR (r.used_at IS NULL AND r.expires_at < now()) \
               LIMIT $1) RETURNING 1) \
              SELECT count(*) FROM gone",
    },
    // Families that have ended. Their refresh tokens went in the sweep before; the few access
    // tokens still unexpired go with them (ON DELETE CASCADE), and were inactive already.
    Sweep {
        name: "token_families",
        scope: Scope::PerTenant,
        sql: "WITH gone AS (DELETE FROM token_families WHERE (tenant_id, family_id) IN \
              (SELECT tenant_id, family_id FROM token_families \
               WHERE revoked_at IS NOT NULL OR expires_at < now() LIMIT $1) RETURNING 1) \
              SELECT count(*) FROM gone",
    },
    // Recovery links once used or expired: the audit log keeps the record of both.
    Sweep {
        name: "recovery_links",
        scope: Scope::PerTenant,
        sql: "WITH gone AS (DELETE FROM recovery_links WHERE (tenant_id, token_hash) IN \
              (SELECT tenant_id, token_hash FROM recovery_links \
               WHERE used_at IS NOT NULL OR expires_at < now() LIMIT $1) RETURNING 1) \
              SELECT count(*) FROM gone",
    },
    // Sign-in failure counters not touched for a day and not holding a lock. The counting
    // window is the lock time or 15 minutes, whichever is longer; a lock time over a day would
    // forget failures older than a day here, which only ever favours the account's owner.
    Sweep {
        name: "login_throttle",
        scope: Scope::Global,
        sql: "WITH gone AS (DELETE FROM login_throttle WHERE key_hash IN \
              (SELECT key_hash FROM login_throttle WHERE updated_at < now() - interval '1 day' \
                 AND coalesce(locked_until < now(), true) LIMIT $1) RETURNING 1) \
              SELECT count(*) FROM gone",
    },
    // Request counters whose window has ended (migrations/0012): a new request starts a new
    // window anyway, so an ended one is worth nothing.
    Sweep {
        name: "rate_limits",
        scope: Scope::Global,
        sql: "WITH gone AS (DELETE FROM rate_limits WHERE key_hash IN \
              (SELECT key_hash FROM rate_limits WHERE window_end < now() LIMIT $1) RETURNING 1) \
              SELECT count(*) FROM gone",
    },
    // Password reset links past their expiry, used or not (a used one works no more either).
    Sweep {
        name: "password_resets",
        scope: Scope::Global,
        sql: "WITH gone AS (DELETE FROM password_resets WHERE token_hash IN \
              (SELECT token_hash FROM password_resets WHERE expires_at < now() LIMIT $1) RETURNING 1) \
              SELECT count(*) FROM gone",
    },
    // Email verification links past their expiry (migrations/0022).
    Sweep {
        name: "email_verifications",
        scope: Scope::Global,
        sql: "WITH gone AS (DELETE FROM email_verifications WHERE token_hash IN \
              (SELECT token_hash FROM email_verifications WHERE expires_at < now() LIMIT $1) RETURNING 1) \
              SELECT count(*) FROM gone",
    },
    // Invitations accepted, revoked or expired (the audit log keeps their record).
    Sweep {
        name: "invitations",
        scope: Scope::PerTenant,
        sql: "WITH gone AS (DELETE FROM invitations WHERE (tenant_id, id) IN \
              (SELECT tenant_id, id FROM invitations \
               WHERE accepted_at IS NOT NULL OR revoked_at IS NOT NULL OR expires_at < now() LIMIT $1) \
               RETURNING 1) SELECT count(*) FROM gone",
    },
    // Pushed authorization requests used or past their minute (migrations/0024).
    Sweep {
        name: "pushed_authorization_requests",
        scope: Scope::PerTenant,
        sql: "WITH gone AS (DELETE FROM pushed_authorization_requests WHERE (tenant_id, uri_hash) IN \
              (SELECT tenant_id, uri_hash FROM pushed_authorization_requests \
               WHERE used_at IS NOT NULL OR expires_at < now() LIMIT $1) RETURNING 1) \
              SELECT count(*) FROM gone",
    },
    // Back-channel logout notices delivered or given up a day ago (migrations/0025; a given-up
    // one is in the audit log).
    Sweep {
        name: "logout_notices",
        scope: Scope::PerTenant,
        sql: "WITH gone AS (DELETE FROM logout_notices WHERE (tenant_id, id) IN \
              (SELECT tenant_id, id FROM logout_notices \
               WHERE coalesce(delivered_at, abandoned_at) < now() - interval '1 day' LIMIT $1) RETURNING 1) \
              SELECT count(*) FROM gone",
    },
    // DPoP proofs whose iat has left the acceptance window (migrations/0026): a replay of one
    // is refused by its age now.
    Sweep {
        name: "dpop_proofs",
        scope: Scope::Global,
        sql: "WITH gone AS (DELETE FROM dpop_proofs WHERE key_hash IN \
              (SELECT key_hash FROM dpop_proofs WHERE expires_at < now() LIMIT $1) RETURNING 1) \
              SELECT count(*) FROM gone",
    },
    // Initial access tokens expired or used up (migrations/0027; their issue is audited).
    Sweep {
        name: "registration_tokens",
        scope: Scope::PerTenant,
        sql: "WITH gone AS (DELETE FROM registration_tokens WHERE (tenant_id, id) IN \
              (SELECT tenant_id, id FROM registration_tokens WHERE uses_left = 0 OR expires_at < now() LIMIT $1) \
               RETURNING 1) SELECT count(*) FROM gone",
    },
    // Retired signing keys that have left the JWKS. The runtime role may not delete keys, so
    // this goes through lca_sweep_signing_keys (migrations/0007), which deletes only those.
    Sweep { name: "signing_keys", scope: Scope::Global, sql: "SELECT lca_sweep_signing_keys($1)" },
];

/// Runs one batch of `sweep` in `tx`; returns how many rows it deleted.
pub async fn sweep_batch(tx: &mut Tx, sweep: &Sweep, batch_size: u32) -> Result<u64, sqlx::Error> {
    let limit = i32::try_from(batch_size).unwrap_or(i32::MAX);
    let deleted: i64 = sqlx::query_scalar(sweep.sql).bind(limit).fetch_one(tx.conn()).await?;
    Ok(u64::try_from(deleted).unwrap_or(0))
}
