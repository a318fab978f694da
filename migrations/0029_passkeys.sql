-- Passkeys (WebAuthn): several per user, each with the name its owner gave it and its last
-- use; a second factor after the password, or the whole sign-in where the tenant allows it.
-- Users are global, and so are their passkeys: the wall is the user's own transaction, as for
-- backup codes (0008).
CREATE TABLE passkeys (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The id the authenticator gave the credential: one account only (WebAuthn §7.1, step
    -- 22), so unique across users.
    credential_id bytea NOT NULL UNIQUE CHECK (length(credential_id) BETWEEN 1 AND 1023),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    -- The credential as webauthn-rs keeps it: public key, algorithm, signature counter,
    -- backup flags. Nothing in it is secret.
    credential    jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz
);
CREATE INDEX passkeys_user_idx ON passkeys (user_id, created_at);
ALTER TABLE passkeys ENABLE ROW LEVEL SECURITY;
ALTER TABLE passkeys FORCE ROW LEVEL SECURITY;
CREATE POLICY own_passkeys ON passkeys
    USING (user_id = NULLIF(current_setting('app.user_id', true), '')::uuid)
    WITH CHECK (user_id = NULLIF(current_setting('app.user_id', true), '')::uuid);
-- A tenant transaction reads its members' passkeys, as it reads their user rows (0002): the
-- admin surface says who has a second factor.
CREATE POLICY tenant_members ON passkeys FOR SELECT
    USING (EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = passkeys.user_id));
GRANT SELECT, INSERT, UPDATE, DELETE ON passkeys TO lca_runtime;

-- Whether the login page of the tenant's clients offers signing in with a passkey alone
-- (no password). Off until an operator turns it on.
ALTER TABLE tenants ADD COLUMN passkey_sign_in boolean NOT NULL DEFAULT false;
GRANT UPDATE (passkey_sign_in) ON tenants TO lca_operator;
