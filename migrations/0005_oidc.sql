-- State of the OpenID Connect flows: browser sessions, authorization codes, token families,
-- refresh and access tokens, consents; and the audit log they write to.
--
-- Codes and tokens are high-entropy secrets stored only as SHA-256 hashes. Single-use things
-- are consumed with one atomic UPDATE ... WHERE consumed IS NULL RETURNING (never
-- read-then-write), so of two concurrent redemptions exactly one wins.

-- Browser sessions (tower-sessions records). Global: a browser has a session before any tenant
-- is chosen. Keyed by the SHA-256 of the session id, so a copy of the table hijacks nobody.
CREATE TABLE browser_sessions (
    id_hash    bytea PRIMARY KEY CHECK (length(id_hash) = 32),
    data       jsonb NOT NULL,
    -- The signed-in user, when there is one (to end a user's sessions).
    user_id    uuid,
    expires_at timestamptz NOT NULL
);
CREATE INDEX browser_sessions_user_idx ON browser_sessions (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX browser_sessions_expiry_idx ON browser_sessions (expires_at);
GRANT SELECT, INSERT, UPDATE, DELETE ON browser_sessions TO lca_runtime;

-- Authorization codes (RFC 6749 §4.1.2: short-lived, single use). family_id is set by the
-- redemption that consumes the code: a second redemption revokes that family (§4.1.2).
CREATE TABLE authorization_codes (
    tenant_id             uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    code_hash             bytea NOT NULL CHECK (length(code_hash) = 32),
    client_id             text NOT NULL,
    user_id               uuid NOT NULL,
    redirect_uri          text NOT NULL,
    scope                 text NOT NULL,
    nonce                 text,
    code_challenge        text,
    auth_time             timestamptz NOT NULL,
    amr                   text[] NOT NULL,
    acr                   text NOT NULL,
    sid                   text NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    expires_at            timestamptz NOT NULL,
    consumed_at           timestamptz,
    family_id             uuid,
    PRIMARY KEY (tenant_id, code_hash)
);
CREATE INDEX authorization_codes_expiry_idx ON authorization_codes (expires_at);
-- The token endpoint finds a code by its hash alone (lca_code_tenant).
CREATE INDEX authorization_codes_hash_idx ON authorization_codes (code_hash);

-- A token family: everything one authorization (code or device grant) issued, rotated refresh
-- tokens included. Revoking the family ends them all.
CREATE TABLE token_families (
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    family_id      uuid NOT NULL,
    client_id      text NOT NULL,
    user_id        uuid,
    scope          text NOT NULL,
    auth_time      timestamptz,
    amr            text[] NOT NULL DEFAULT '{}',
    acr            text,
    sid            text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- Absolute end of the family: refreshing never extends it.
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoked_reason text,
    PRIMARY KEY (tenant_id, family_id)
);
CREATE INDEX token_families_user_idx ON token_families (tenant_id, user_id);
CREATE INDEX token_families_expiry_idx ON token_families (expires_at);

-- Refresh tokens: rotated on every use (used_at set atomically). Presenting a used one is
-- reuse: the family is revoked.
CREATE TABLE refresh_tokens (
    tenant_id  uuid NOT NULL,
    token_hash bytea NOT NULL CHECK (length(token_hash) = 32),
    family_id  uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, family_id) REFERENCES token_families (tenant_id, family_id) ON DELETE CASCADE
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (tenant_id, family_id);
CREATE INDEX refresh_tokens_hash_idx ON refresh_tokens (token_hash);

-- Issued access tokens (JWTs) by jti, so introspection and userinfo reflect revocation.
CREATE TABLE access_tokens (
    tenant_id  uuid NOT NULL,
    jti        uuid NOT NULL,
    family_id  uuid,
    client_id  text NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    PRIMARY KEY (tenant_id, jti),
    FOREIGN KEY (tenant_id, family_id) REFERENCES token_families (tenant_id, family_id) ON DELETE CASCADE
);
CREATE INDEX access_tokens_family_idx ON access_tokens (tenant_id, family_id);
CREATE INDEX access_tokens_expiry_idx ON access_tokens (expires_at);

-- Consent remembered per user, client and scope set (a superset covers a later request).
CREATE TABLE consents (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL,
    client_id  text NOT NULL,
    scopes     text[] NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id, client_id)
);

-- The audit log: append-only, one hash chain per tenant (DESIGN.md, "Audit log").
CREATE TABLE audit_events (
    tenant_id    uuid NOT NULL,
    seq          bigint NOT NULL,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    actor_kind   text NOT NULL CHECK (actor_kind IN ('user', 'client', 'system')),
    actor_id     text,
    target_kind  text,
    target_id    text,
    action       text NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('success', 'failure')),
    ip           inet,
    user_agent   text,
    request_id   text,
    details      jsonb NOT NULL DEFAULT '{}',
    prev_hash    bytea NOT NULL,
    hash         bytea NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

CREATE FUNCTION lca_audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION lca_audit_is_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION lca_audit_is_append_only();

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['authorization_codes', 'token_families', 'refresh_tokens', 'access_tokens',
                             'consents', 'audit_events'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I '
            'USING (tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid) '
            'WITH CHECK (tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid)', t);
    END LOOP;
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON authorization_codes, token_families, refresh_tokens, access_tokens,
    consents TO lca_runtime;
GRANT SELECT, INSERT ON audit_events TO lca_runtime;

-- Lookups for the token endpoint: a code or refresh token names its tenant only through its
-- row (a multi-tenant client's tokens are for the tenant the user chose, not the client's).
CREATE POLICY lookup_read ON authorization_codes FOR SELECT TO lca_lookup USING (true);
CREATE POLICY lookup_read ON refresh_tokens FOR SELECT TO lca_lookup USING (true);
GRANT SELECT (tenant_id, code_hash) ON authorization_codes TO lca_lookup;
GRANT SELECT (tenant_id, token_hash) ON refresh_tokens TO lca_lookup;

CREATE FUNCTION lca_code_tenant(p_code_hash bytea)
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT c.tenant_id FROM public.authorization_codes c WHERE c.code_hash = p_code_hash
$$;

CREATE FUNCTION lca_refresh_token_tenant(p_token_hash bytea)
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT r.tenant_id FROM public.refresh_tokens r WHERE r.token_hash = p_token_hash
$$;

GRANT CREATE ON SCHEMA public TO lca_lookup;
ALTER FUNCTION lca_code_tenant(bytea) OWNER TO lca_lookup;
ALTER FUNCTION lca_refresh_token_tenant(bytea) OWNER TO lca_lookup;
REVOKE CREATE ON SCHEMA public FROM lca_lookup;
REVOKE ALL ON FUNCTION lca_code_tenant(bytea), lca_refresh_token_tenant(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lca_code_tenant(bytea), lca_refresh_token_tenant(bytea) TO lca_runtime;

-- PKCE is on by default for confidential clients too (OAuth 2.1 §4.1.1); public clients always
-- need it, whatever this says.
ALTER TABLE clients ADD COLUMN require_pkce boolean NOT NULL DEFAULT true;
-- The profile scope's `name` claim.
ALTER TABLE users ADD COLUMN name text CHECK (name IS NULL OR length(name) BETWEEN 1 AND 200);
GRANT SELECT (name) ON users TO lca_lookup;
