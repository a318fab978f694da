-- Audit events of operator actions, suspended tenants that stop working, and the janitor.

-- CLI commands are recorded with actor_kind 'operator' (actor_id: the OS user who ran them).
ALTER TABLE audit_events DROP CONSTRAINT audit_events_actor_kind_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_actor_kind_check
    CHECK (actor_kind IN ('user', 'client', 'system', 'operator'));

-- A suspended tenant stops working at the lowest level: its clients are not found by the
-- protocol (no authorization, no token of any grant, no introspection or revocation), and
-- lca_memberships_of (0003) already leaves it out of a multi-tenant client's choice.
-- CREATE OR REPLACE keeps the owner (lca_lookup) and the grants.
CREATE OR REPLACE FUNCTION lca_client_tenant(p_client_id text)
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT c.tenant_id FROM public.clients c JOIN public.tenants t ON t.id = c.tenant_id
    WHERE c.client_id = p_client_id AND t.status = 'active'
$$;

-- The tenant that owns a client whatever the tenant's status: for operator commands (update,
-- rotate the secret of or delete a suspended tenant's client) and for signing out.
CREATE FUNCTION lca_client_owner(p_client_id text)
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT c.tenant_id FROM public.clients c WHERE c.client_id = p_client_id
$$;

GRANT CREATE ON SCHEMA public TO lca_lookup;
ALTER FUNCTION lca_client_owner(text) OWNER TO lca_lookup;
REVOKE CREATE ON SCHEMA public FROM lca_lookup;
REVOKE ALL ON FUNCTION lca_client_owner(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lca_client_owner(text) TO lca_runtime;

-- The janitor (src/janitor.rs) sweeps tenant tables in transactions for each tenant, as the
-- runtime role, so Row Level Security holds for it as for everything else. Signing keys are
-- global and the runtime role may not delete them (0004): keys whose publish window has ended
-- go through this one function instead, owned by lca_janitor, a role that cannot log in and
-- may only read two columns of signing_keys and delete rows.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lca_janitor') THEN
        BEGIN
            CREATE ROLE lca_janitor NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created by a concurrent migration of another database
        END;
    END IF;
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT lca_janitor TO %I', current_user);
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO lca_janitor;
GRANT SELECT (kid, publish_until), DELETE ON signing_keys TO lca_janitor;

-- Deletes up to p_limit retired keys that have left the JWKS (publish_until passed: every
-- token they signed has expired); returns how many.
CREATE FUNCTION lca_sweep_signing_keys(p_limit integer)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    WITH gone AS (
        DELETE FROM public.signing_keys WHERE kid IN (
            SELECT k.kid FROM public.signing_keys k
            WHERE k.publish_until < now() ORDER BY k.publish_until LIMIT p_limit)
        RETURNING 1)
    SELECT count(*) FROM gone
$$;

GRANT CREATE ON SCHEMA public TO lca_janitor;
ALTER FUNCTION lca_sweep_signing_keys(integer) OWNER TO lca_janitor;
REVOKE CREATE ON SCHEMA public FROM lca_janitor;
REVOKE ALL ON FUNCTION lca_sweep_signing_keys(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lca_sweep_signing_keys(integer) TO lca_runtime;

-- The janitor finds revoked families without a scan of the live ones.
CREATE INDEX token_families_revoked_idx ON token_families (revoked_at) WHERE revoked_at IS NOT NULL;
