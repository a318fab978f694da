-- The lookups the protocol needs before it knows the tenant (DESIGN.md: "a few narrow
-- SECURITY DEFINER functions that return the minimum"). All of them are listed here, each is
-- tested on its own (tests/it/lookups.rs), and each returns only the columns its caller needs.
--
-- They run as lca_lookup, whose only power is the SELECT policies below; the runtime role may
-- execute them and nothing else may.

CREATE POLICY lookup_read ON tenants FOR SELECT TO lca_lookup USING (true);
CREATE POLICY lookup_read ON users FOR SELECT TO lca_lookup USING (true);
CREATE POLICY lookup_read ON memberships FOR SELECT TO lca_lookup USING (true);
CREATE POLICY lookup_read ON clients FOR SELECT TO lca_lookup USING (true);
GRANT SELECT (id, slug, name, status, is_platform) ON tenants TO lca_lookup;
GRANT SELECT (id, email, password_hash, status) ON users TO lca_lookup;
GRANT SELECT (tenant_id, user_id, role) ON memberships TO lca_lookup;
GRANT SELECT (tenant_id, client_id) ON clients TO lca_lookup;

-- A tenant by its slug (CLI, `tenant=` login hint).
CREATE FUNCTION lca_tenant_by_slug(p_slug text)
RETURNS TABLE (id uuid, status text, is_platform boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT t.id, t.status, t.is_platform FROM public.tenants t WHERE t.slug = p_slug
$$;

-- The platform tenant, if bootstrap has created it.
CREATE FUNCTION lca_platform_tenant()
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT t.id FROM public.tenants t WHERE t.is_platform
$$;

-- A user by email, case-insensitively (login, `member add`).
CREATE FUNCTION lca_user_by_email(p_email text)
RETURNS TABLE (id uuid, password_hash text, status text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT u.id, u.password_hash, u.status FROM public.users u WHERE lower(u.email) = lower(p_email)
$$;

-- The tenant a client belongs to (token endpoint, authorization endpoint). The client itself
-- is then read in a transaction for that tenant.
CREATE FUNCTION lca_client_tenant(p_client_id text)
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT c.tenant_id FROM public.clients c WHERE c.client_id = p_client_id
$$;

-- The tenants a user belongs to, for the tenant choice of multi-tenant clients.
CREATE FUNCTION lca_memberships_of(p_user_id uuid)
RETURNS TABLE (tenant_id uuid, slug text, name text, role text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT t.id, t.slug, t.name, m.role
    FROM public.memberships m JOIN public.tenants t ON t.id = m.tenant_id
    WHERE m.user_id = p_user_id AND t.status = 'active'
    ORDER BY t.slug
$$;

-- Hand the functions to lca_lookup (a non-superuser owner needs CREATE on the schema for the
-- change of owner; it is taken back right after).
GRANT CREATE ON SCHEMA public TO lca_lookup;
ALTER FUNCTION lca_tenant_by_slug(text) OWNER TO lca_lookup;
ALTER FUNCTION lca_platform_tenant() OWNER TO lca_lookup;
ALTER FUNCTION lca_user_by_email(text) OWNER TO lca_lookup;
ALTER FUNCTION lca_client_tenant(text) OWNER TO lca_lookup;
ALTER FUNCTION lca_memberships_of(uuid) OWNER TO lca_lookup;
REVOKE CREATE ON SCHEMA public FROM lca_lookup;

REVOKE ALL ON FUNCTION lca_tenant_by_slug(text), lca_platform_tenant(), lca_user_by_email(text),
    lca_client_tenant(text), lca_memberships_of(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lca_tenant_by_slug(text), lca_platform_tenant(), lca_user_by_email(text),
    lca_client_tenant(text), lca_memberships_of(uuid) TO lca_runtime;
