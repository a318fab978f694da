-- Request connections log in as lca_runtime itself (ARCHITECTURE.md, "Storage and Row Level
-- Security"). Until now the pool logged in as the owner and ran `SET ROLE lca_runtime`, which
-- any SQL on that connection could undo with `RESET ROLE`. A session whose *session user* is
-- lca_runtime cannot climb: `RESET ROLE` returns to lca_runtime, and `SET ROLE x` needs
-- membership in x, of which lca_runtime has none (src/db/mod.rs checks this on every new
-- request connection and refuses the connection otherwise).
--
-- Roles belong to the whole cluster and many databases may share one (a deployment and its
-- staging copy, one database per test), so everything here is idempotent, and a role is only
-- altered when it is not yet as wanted: the owner of a second database may lack the right to
-- alter a role it did not create (PostgreSQL 16 asks for ADMIN OPTION on it; PostgreSQL 15
-- lets any CREATEROLE owner alter a non-superuser role).
--
-- * lca_runtime becomes LOGIN NOINHERIT. It gets no password here: the embedded cluster reaches
--   it over its private socket (src/db/embedded.rs), and an external deployment gives it one
--   (README, "An external PostgreSQL") and names it in DATABASE_RUNTIME_URL.
-- * lca_operator (new, NOLOGIN) holds the writes the request path does not need: creating
--   tenants and changing their status or MFA policy, adding and retiring signing keys. Only
--   owner-pool transactions step down to it (`Database::operator_*`), so Row Level Security
--   holds for those writes too, even when the owner is a superuser. It is a member of
--   lca_runtime (it inherits everything a request may do), never the other way round.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lca_runtime' AND (NOT rolcanlogin OR rolinherit)) THEN
        ALTER ROLE lca_runtime LOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lca_operator') THEN
        BEGIN
            CREATE ROLE lca_operator NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created by a concurrent migration of another database
        END;
    END IF;
    IF NOT pg_has_role('lca_operator', 'lca_runtime', 'MEMBER') THEN
        GRANT lca_runtime TO lca_operator;
    END IF;
    -- SET ROLE needs membership, except for a superuser owner (the embedded cluster's).
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, 'lca_operator', 'MEMBER') THEN
        EXECUTE format('GRANT lca_operator TO %I', current_user);
    END IF;
END
$$;

-- Narrow the runtime grants (issue #9, item 8). Every query of the request path on these tables
-- reads (tenants: the transaction's own row, the status join of grants.rs; signing_keys: the
-- JWKS and the signing keys); only bootstrap, `tenant create|suspend|reactivate|require-mfa`,
-- the first start's keys and `keys rotate` write them, and they run on the owner pool.
-- Nothing deletes a tenant or a signing key this way (the janitor's key sweep is a definer
-- function of lca_janitor, 0007).
REVOKE INSERT, UPDATE, DELETE ON tenants FROM lca_runtime;
REVOKE INSERT, UPDATE ON signing_keys FROM lca_runtime;
GRANT INSERT ON tenants TO lca_operator;
GRANT UPDATE (status, require_mfa) ON tenants TO lca_operator;
GRANT INSERT ON signing_keys TO lca_operator;
GRANT UPDATE (retired_at, publish_until) ON signing_keys TO lca_operator;
