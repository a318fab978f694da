-- The audit chain becomes keyed: each row's `hash` is an HMAC-SHA-256 under a key derived from
-- the master key, which is never in the database, so a superuser who edits rows cannot
-- recompute a chain that `audit verify` accepts (issue #9, item 3).
--
-- `mac_version` says how `hash` was computed:
--   0  plain SHA-256, the rows written before this migration ("legacy"). `audit verify`
--      accepts them only as the first rows of a chain, before its first keyed row, and
--      reports how many there are;
--   1  HMAC-SHA-256 under the audit key (`src/db/audit/chain.rs`).
-- Adding the column with a default fills the existing rows without an UPDATE, so the
-- append-only triggers are not touched. The default is then dropped: a binary from before
-- this migration (which does not name the column) fails to append instead of writing an
-- unkeyed row into a keyed chain, which would break the chain for good.
ALTER TABLE audit_events ADD COLUMN mac_version smallint NOT NULL DEFAULT 0
    CONSTRAINT audit_events_mac_version_check CHECK (mac_version IN (0, 1));
ALTER TABLE audit_events ALTER COLUMN mac_version DROP DEFAULT;
