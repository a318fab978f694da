-- Self-service password reset (README, "Forgot your password"): one-time links a user asks
-- for at /forgot and receives by mail. An identity is global (users has no tenant), and so
-- are these rows: no tenant_id, and no Row Level Security (tests/it/schema.rs lists the table,
-- with why). A row is found only by the SHA-256 of a 256-bit random token; nothing in it is
-- tenant data. The janitor removes expired rows.
CREATE TABLE password_resets (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX password_resets_user_idx ON password_resets (user_id) WHERE used_at IS NULL;
CREATE INDEX password_resets_expires_idx ON password_resets (expires_at);
GRANT SELECT, INSERT, UPDATE (used_at), DELETE ON password_resets TO lca_runtime;
