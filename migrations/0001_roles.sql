-- The database roles of DESIGN.md ("Storage and Row Level Security").
--
-- * lca_runtime: what every request runs as (the pool does `SET ROLE lca_runtime` on each new
--   connection). Not the owner of anything, no BYPASSRLS: Row Level Security holds for it.
-- * lca_lookup: owns the few SECURITY DEFINER functions that find things before a tenant is
--   known (migrations/0003_lookups.sql). It cannot log in, nobody is granted it, and the only
--   policies that let it read across tenants are SELECT policies on the columns those
--   functions return.
--
-- Roles belong to the whole cluster, and several databases may share one (a deployment and its
-- staging copy, or one database per test), so creating them is idempotent and race-safe.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['lca_runtime', 'lca_lookup'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- created by a concurrent migration of another database
            END;
        END IF;
    END LOOP;
    -- SET ROLE needs membership, except for a superuser owner (the embedded cluster's).
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT lca_runtime, lca_lookup TO %I', current_user);
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO lca_runtime, lca_lookup;
