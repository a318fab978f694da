-- The second factor, account security and recovery: TOTP, backup codes, brute-force counters
-- and one-time recovery links.

-- A user's TOTP state. Secrets are sealed (AES-256-GCM) under the master key, bound to the
-- user's id, so a row copied onto another user does not open.
ALTER TABLE users
    -- The active secret; NULL when the user has no TOTP.
    ADD COLUMN totp_secret         bytea,
    ADD COLUMN totp_enabled_at     timestamptz,
    -- The last RFC 6238 time step accepted: a code (and any earlier one) works once.
    ADD COLUMN totp_last_step      bigint,
    -- A secret being enrolled: it becomes the active one only after a valid code.
    ADD COLUMN totp_pending        bytea,
    -- Set by a recovery or an MFA reset: the next sign-in must enrol TOTP again.
    ADD COLUMN mfa_enrol_required  boolean NOT NULL DEFAULT false,
    ADD COLUMN password_changed_at timestamptz;

-- A tenant may require MFA of every member; a client of every login through it.
ALTER TABLE tenants ADD COLUMN require_mfa boolean NOT NULL DEFAULT false;
ALTER TABLE clients ADD COLUMN require_mfa boolean NOT NULL DEFAULT false;

-- Backup codes: 80 random bits each, so SHA-256 suffices (like client secrets); single use.
-- Users are global, and so are their codes: the wall is the user's own transaction.
CREATE TABLE backup_codes (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  bytea NOT NULL CHECK (length(code_hash) = 32),
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, code_hash)
);
ALTER TABLE backup_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE backup_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY own_codes ON backup_codes
    USING (user_id = NULLIF(current_setting('app.user_id', true), '')::uuid)
    WITH CHECK (user_id = NULLIF(current_setting('app.user_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE, DELETE ON backup_codes TO lca_runtime;

-- Failed sign-in attempts, per account and per client IP. Keys are SHA-256 of "account:" plus
-- the lower-cased email (known or not, so an unknown address locks exactly like a real one)
-- or "ip:" plus the address. Counted before any tenant is known; no tenant data is here.
CREATE TABLE login_throttle (
    key_hash        bytea PRIMARY KEY CHECK (length(key_hash) = 32),
    failures        integer NOT NULL DEFAULT 0,
    window_start    timestamptz NOT NULL DEFAULT now(),
    -- No attempt is checked before this time (the growing delay).
    next_allowed_at timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_throttle_updated_idx ON login_throttle (updated_at);
GRANT SELECT, INSERT, UPDATE, DELETE ON login_throttle TO lca_runtime;

-- One-time recovery links an administrator issues for a member of their tenant. Only the
-- SHA-256 of the 256-bit token is stored; using it is one atomic UPDATE.
CREATE TABLE recovery_links (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL CHECK (length(token_hash) = 32),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issued_by  text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    PRIMARY KEY (tenant_id, token_hash)
);
CREATE INDEX recovery_links_hash_idx ON recovery_links (token_hash);
CREATE INDEX recovery_links_expiry_idx ON recovery_links (expires_at);
ALTER TABLE recovery_links ENABLE ROW LEVEL SECURITY;
ALTER TABLE recovery_links FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON recovery_links
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE, DELETE ON recovery_links TO lca_runtime;

-- The recovery page knows only the token: it finds the tenant through the hash.
GRANT SELECT (tenant_id, token_hash) ON recovery_links TO lca_lookup;
CREATE POLICY lookup_read ON recovery_links FOR SELECT TO lca_lookup USING (true);
CREATE FUNCTION lca_recovery_link_tenant(p_token_hash bytea)
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT r.tenant_id FROM public.recovery_links r WHERE r.token_hash = p_token_hash
$$;
GRANT CREATE ON SCHEMA public TO lca_lookup;
ALTER FUNCTION lca_recovery_link_tenant(bytea) OWNER TO lca_lookup;
REVOKE CREATE ON SCHEMA public FROM lca_lookup;
REVOKE ALL ON FUNCTION lca_recovery_link_tenant(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lca_recovery_link_tenant(bytea) TO lca_runtime;

-- Password change and MFA reset end every token family of the user, in whichever tenants it
-- has live ones (memberships may have ended or tenants been suspended since).
GRANT SELECT (tenant_id, user_id, revoked_at, expires_at) ON token_families TO lca_lookup;
CREATE POLICY lookup_read ON token_families FOR SELECT TO lca_lookup USING (true);
CREATE FUNCTION lca_user_family_tenants(p_user_id uuid)
RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT DISTINCT f.tenant_id FROM public.token_families f
    WHERE f.user_id = p_user_id AND f.revoked_at IS NULL AND f.expires_at > now()
$$;
GRANT CREATE ON SCHEMA public TO lca_lookup;
ALTER FUNCTION lca_user_family_tenants(uuid) OWNER TO lca_lookup;
REVOKE CREATE ON SCHEMA public FROM lca_lookup;
REVOKE ALL ON FUNCTION lca_user_family_tenants(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lca_user_family_tenants(uuid) TO lca_runtime;

-- Recovery's permission rule weighs every membership of the person to be recovered, in
-- suspended tenants too (a suspended tenant's admin is still that tenant's admin once it is
-- reactivated).
CREATE FUNCTION lca_memberships_any_status(p_user_id uuid)
RETURNS TABLE (tenant_id uuid, role text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT m.tenant_id, m.role FROM public.memberships m WHERE m.user_id = p_user_id ORDER BY m.tenant_id
$$;
GRANT CREATE ON SCHEMA public TO lca_lookup;
ALTER FUNCTION lca_memberships_any_status(uuid) OWNER TO lca_lookup;
REVOKE CREATE ON SCHEMA public FROM lca_lookup;
REVOKE ALL ON FUNCTION lca_memberships_any_status(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lca_memberships_any_status(uuid) TO lca_runtime;
