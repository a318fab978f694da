-- Email verification and invitations (README, "Mail"; ARCHITECTURE.md, "Mail").
--
-- email_verifications: one-time links that prove a user receives mail at their address. Like
-- password_resets (0021) they belong to a global identity: no tenant_id and no Row Level
-- Security (tests/it/schema.rs lists the table, with why). A row is found only by the
-- SHA-256 of a 256-bit random token and names the address it was sent to, so a link does
-- nothing once the account's address is another. The janitor removes expired rows.
CREATE TABLE email_verifications (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email      text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX email_verifications_user_idx ON email_verifications (user_id) WHERE used_at IS NULL;
CREATE INDEX email_verifications_expires_idx ON email_verifications (expires_at);
GRANT SELECT, INSERT, UPDATE (used_at), DELETE ON email_verifications TO lca_runtime;

-- invitations: an administrator asks someone, by address, to join their tenant with a role.
-- The mailed link (only its SHA-256 is stored) creates the account or links the existing one,
-- adds the membership and verifies the address, once. Tenant data, so Row Level Security.
CREATE TABLE invitations (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          uuid NOT NULL,
    token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    email       text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    role        text NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    invited_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    accepted_at timestamptz,
    accepted_by uuid REFERENCES users (id) ON DELETE SET NULL,
    revoked_at  timestamptz,
    PRIMARY KEY (tenant_id, id)
);
-- One open invitation per address and tenant: inviting again replaces the open one.
CREATE UNIQUE INDEX invitations_open_email_idx ON invitations (tenant_id, lower(email))
    WHERE accepted_at IS NULL AND revoked_at IS NULL;
CREATE INDEX invitations_expires_idx ON invitations (expires_at);
ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invitations
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE (accepted_at, accepted_by, revoked_at), DELETE ON invitations TO lca_runtime;

-- The invitation page knows only the token: it finds the tenant through the hash, of an
-- invitation still open.
GRANT SELECT (tenant_id, token_hash, accepted_at, revoked_at, expires_at) ON invitations TO lca_lookup;
CREATE POLICY lookup_read ON invitations FOR SELECT TO lca_lookup USING (true);
CREATE FUNCTION lca_invitation_tenant(p_token_hash bytea)
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT i.tenant_id FROM public.invitations i
    WHERE i.token_hash = p_token_hash AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now()
$$;
GRANT CREATE ON SCHEMA public TO lca_lookup;
ALTER FUNCTION lca_invitation_tenant(bytea) OWNER TO lca_lookup;
REVOKE CREATE ON SCHEMA public FROM lca_lookup;
REVOKE ALL ON FUNCTION lca_invitation_tenant(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lca_invitation_tenant(bytea) TO lca_runtime;
