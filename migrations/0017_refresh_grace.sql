-- The lost-response grace window of refresh rotation (ARCHITECTURE.md, "Tokens"). A client may
-- allow a just-rotated refresh token to be presented again for a few seconds, for devices on
-- flaky networks that lose the reply: the retry gets the same successor pair, not a new one.
-- Only hashes of tokens are stored, so the pair a rotation issued is kept sealed (AES-256-GCM
-- under the master key, bound to the used token's hash) on the used token's row, beside the
-- hash of the successor refresh token; once the successor has been used, or the window has
-- passed, the retry is reuse again and ends the family. A family holds at most one sealed pair:
-- each rotation that seals one wipes the one before.
ALTER TABLE clients
    ADD COLUMN refresh_grace_secs integer NOT NULL DEFAULT 0
        CONSTRAINT clients_refresh_grace_bounded CHECK (refresh_grace_secs BETWEEN 0 AND 300);

ALTER TABLE refresh_tokens
    ADD COLUMN successor_hash bytea,
    ADD COLUMN successor_sealed bytea
        CONSTRAINT refresh_tokens_successor_sealed_bounded CHECK (octet_length(successor_sealed) <= 16384),
    ADD CONSTRAINT refresh_tokens_successor_named CHECK (successor_sealed IS NULL OR length(successor_hash) = 32);
