-- Back-channel logout (OpenID Connect Back-Channel Logout 1.0; README, "Back-channel logout";
-- ARCHITECTURE.md, "Back-channel logout").
--
-- A client may register a backchannel_logout_uri. When a user signs out, changes their
-- password, is recovered or is signed out everywhere, each client they have a live token
-- family with gets a logout token POSTed there. The notices are written in the transaction of
-- what caused them (an outbox), and a background worker delivers them with retries, so a slow
-- or dead relying party never holds up the user's request. Tenant data (the family's tenant):
-- Row Level Security; the worker finds the tenants with notices due through a lookup.
ALTER TABLE clients
    ADD COLUMN backchannel_logout_uri text CHECK (length(backchannel_logout_uri) BETWEEN 1 AND 2000),
    ADD COLUMN backchannel_logout_session_required boolean NOT NULL DEFAULT false;

CREATE TABLE logout_notices (
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id              uuid NOT NULL,
    client_id       text NOT NULL,
    uri             text NOT NULL,
    user_id         uuid NOT NULL,
    sid             text,
    reason          text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    abandoned_at    timestamptz,
    last_error      text,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX logout_notices_due_idx ON logout_notices (next_attempt_at)
    WHERE delivered_at IS NULL AND abandoned_at IS NULL;
ALTER TABLE logout_notices ENABLE ROW LEVEL SECURITY;
ALTER TABLE logout_notices FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON logout_notices
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE (attempts, next_attempt_at, delivered_at, abandoned_at, last_error), DELETE
    ON logout_notices TO lca_runtime;

-- The tenants with a notice due now, for the delivery worker.
GRANT SELECT (tenant_id, next_attempt_at, delivered_at, abandoned_at) ON logout_notices TO lca_lookup;
CREATE POLICY lookup_read ON logout_notices FOR SELECT TO lca_lookup USING (true);
CREATE FUNCTION lca_logout_notice_tenants()
RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT DISTINCT n.tenant_id FROM public.logout_notices n
    WHERE n.delivered_at IS NULL AND n.abandoned_at IS NULL AND n.next_attempt_at <= now()
    LIMIT 1000
$$;
GRANT CREATE ON SCHEMA public TO lca_lookup;
ALTER FUNCTION lca_logout_notice_tenants() OWNER TO lca_lookup;
REVOKE CREATE ON SCHEMA public FROM lca_lookup;
