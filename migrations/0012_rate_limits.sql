-- Unauthenticated requests that write rows are bounded (issue #9, item 6).
--
-- 1. Throttled sign-in and user-code attempts are audited once per lock window, not once per
--    attempt: the first refusal of a block (a wait or a lock) sets `refusal_noted_until` to
--    the block's end in one atomic UPDATE, and refusals until then write no audit row.
ALTER TABLE login_throttle ADD COLUMN refusal_noted_until timestamptz;

-- 2. Fixed-window request counters (`POST /device_authorization` per client and per client
--    IP). Keys are SHA-256 of a purpose prefix and the client_id or the IP (an IPv6 /64);
--    no tenant data is here, and the counters exist before any tenant is known, so the table
--    is on the schema test's allowlist of tables without RLS. Shared by every instance; the
--    janitor deletes windows that have ended.
CREATE TABLE rate_limits (
    key_hash   bytea PRIMARY KEY CHECK (length(key_hash) = 32),
    hits       integer NOT NULL CHECK (hits > 0),
    window_end timestamptz NOT NULL
);
CREATE INDEX rate_limits_window_end_idx ON rate_limits (window_end);
GRANT SELECT, INSERT, UPDATE, DELETE ON rate_limits TO lca_runtime;
