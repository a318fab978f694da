-- The lookups on every protocol request's path, from LANGUAGE sql to LANGUAGE plpgsql.
--
-- A SECURITY DEFINER function written in SQL cannot be inlined, and PostgreSQL 15 plans a SQL
-- function's body again on every call; PL/pgSQL prepares its queries once per connection and
-- reuses the plans. Under load (`cargo bench --bench load`, issue #13) planning these bodies
-- was a tenth of all CPU time: every client-authenticated request calls lca_client_tenant,
-- every refresh lca_refresh_token_tenant, every code redemption lca_code_tenant, every device
-- poll lca_device_code_tenant, every request with a browser session lca_identities_current,
-- every refresh and authorization of a user without a second factor lca_memberships_of.
-- Same arguments, same results, same owner (lca_lookup), grants and SET search_path:
-- CREATE OR REPLACE keeps owner and grants.

CREATE OR REPLACE FUNCTION lca_client_tenant(p_client_id text)
RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    RETURN (SELECT c.tenant_id FROM public.clients c JOIN public.tenants t ON t.id = c.tenant_id
            WHERE c.client_id = p_client_id AND t.status = 'active');
END
$$;

CREATE OR REPLACE FUNCTION lca_code_tenant(p_code_hash bytea)
RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    RETURN (SELECT c.tenant_id FROM public.authorization_codes c WHERE c.code_hash = p_code_hash);
END
$$;

CREATE OR REPLACE FUNCTION lca_refresh_token_tenant(p_token_hash bytea)
RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    RETURN (SELECT r.tenant_id FROM public.refresh_tokens r WHERE r.token_hash = p_token_hash);
END
$$;

CREATE OR REPLACE FUNCTION lca_device_code_tenant(p_code_hash bytea)
RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    RETURN (SELECT d.tenant_id FROM public.device_grants d WHERE d.device_code_hash = p_code_hash);
END
$$;

CREATE OR REPLACE FUNCTION lca_identities_current(p_users uuid[], p_stamps uuid[])
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    RETURN coalesce(cardinality(p_users), 0) = coalesce(cardinality(p_stamps), 0) AND NOT EXISTS (
        SELECT 1 FROM unnest(p_users, p_stamps) AS i (user_id, stamp)
        WHERE NOT EXISTS (
            SELECT 1 FROM public.users u
            WHERE u.id = i.user_id AND u.security_stamp = i.stamp AND u.status = 'active'
        )
    );
END
$$;

CREATE OR REPLACE FUNCTION lca_memberships_of(p_user_id uuid)
RETURNS TABLE (tenant_id uuid, slug text, name text, role text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    RETURN QUERY
    SELECT t.id, t.slug, t.name, m.role
    FROM public.memberships m JOIN public.tenants t ON t.id = m.tenant_id
    WHERE m.user_id = p_user_id AND t.status = 'active'
    ORDER BY t.slug;
END
$$;
