-- Dynamic client registration (RFC 7591, RFC 7592; README, "Dynamic client registration";
-- ARCHITECTURE.md, "Dynamic client registration"). Off unless a tenant turns it on.
--
-- registration_tokens: initial access tokens a tenant's administrator issues (RFC 7591 §3);
-- only the SHA-256 of each is kept, with how many registrations it has left and its expiry.
-- Found by hash through lca_registration_token_tenant, open ones only.
CREATE TABLE registration_tokens (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id         uuid NOT NULL,
    token_hash bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    uses_left  integer NOT NULL CHECK (uses_left >= 0 AND uses_left <= 1000),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX registration_tokens_expires_idx ON registration_tokens (expires_at);
ALTER TABLE registration_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE registration_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON registration_tokens
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE (uses_left), DELETE ON registration_tokens TO lca_runtime;

GRANT SELECT (tenant_id, token_hash, expires_at, uses_left) ON registration_tokens TO lca_lookup;
CREATE POLICY lookup_read ON registration_tokens FOR SELECT TO lca_lookup USING (true);
CREATE FUNCTION lca_registration_token_tenant(p_token_hash bytea)
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT r.tenant_id FROM public.registration_tokens r
    WHERE r.token_hash = p_token_hash AND r.uses_left > 0 AND r.expires_at > now()
$$;
GRANT CREATE ON SCHEMA public TO lca_lookup;
ALTER FUNCTION lca_registration_token_tenant(bytea) OWNER TO lca_lookup;
REVOKE CREATE ON SCHEMA public FROM lca_lookup;

-- A tenant may let anyone register a public client with loopback or private-use redirect
-- URIs, without an initial access token (native apps and MCP-style clients, RFC 8252).
ALTER TABLE tenants ADD COLUMN open_registration boolean NOT NULL DEFAULT false;
GRANT UPDATE (open_registration) ON tenants TO lca_operator;

-- The registration access token of a dynamically registered client (RFC 7592 §3), hashed.
ALTER TABLE clients ADD COLUMN registration_token_hash bytea CHECK (length(registration_token_hash) = 32);
