-- `audit verify` walks every tenant's chain: it needs the list of tenants before it can open
-- a transaction for each. Ids and slugs only.
CREATE FUNCTION lca_tenant_list()
RETURNS TABLE (id uuid, slug text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT t.id, t.slug FROM public.tenants t ORDER BY t.slug
$$;

GRANT CREATE ON SCHEMA public TO lca_lookup;
ALTER FUNCTION lca_tenant_list() OWNER TO lca_lookup;
REVOKE CREATE ON SCHEMA public FROM lca_lookup;
REVOKE ALL ON FUNCTION lca_tenant_list() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lca_tenant_list() TO lca_runtime;
