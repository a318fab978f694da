-- The head of a tenant's audit chain, read after taking the chain's lock, in one round trip
-- (ARCHITECTURE.md, "Audit log"). Appends to one tenant's chain are serialised, so every round
-- trip between taking the lock and committing is time every other writer of that tenant
-- waits; this one was two (the lock, then the head).
--
-- PL/pgSQL and VOLATILE: under READ COMMITTED each query of the function takes its own
-- snapshot, so the head is read after the lock is held and sees the row the previous holder
-- committed (a single `SELECT lock(), (subquery)` would read with a snapshot taken before
-- it waited). SECURITY INVOKER: Row Level Security applies as to the caller's own query. No
-- `SET search_path` (every name is qualified): a function with a SET clause is called through
-- PostgreSQL's GUC save-and-restore wrapper on every call.
CREATE FUNCTION lca_audit_chain_head(p_tenant_id uuid, OUT seq bigint, OUT hash bytea)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('audit:' || p_tenant_id::text, 0));
    SELECT e.seq, e.hash INTO seq, hash
    FROM public.audit_events e
    WHERE e.tenant_id = p_tenant_id
    ORDER BY e.seq DESC
    LIMIT 1;
END
$$;
