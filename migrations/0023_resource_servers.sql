-- Resource servers: the tenant's own APIs, for resource indicators (RFC 8707; README,
-- "Resource indicators"; ARCHITECTURE.md, "Resource indicators").
--
-- A tenant registers an API by its identifier (an absolute URI without a fragment), the scopes
-- it defines and the clients of the tenant that may ask for tokens meant for it. A `resource`
-- on an authorization or token request names one; the access token's `aud` is then the
-- identifier, so the API can check that a token was meant for it. Tenant data: Row Level
-- Security, and the lookup is always in the requesting client's own tenant.
CREATE TABLE resource_servers (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id         uuid NOT NULL,
    identifier text NOT NULL CHECK (length(identifier) BETWEEN 1 AND 255),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    scopes     text[] NOT NULL DEFAULT '{}' CHECK (cardinality(scopes) <= 50),
    client_ids text[] NOT NULL DEFAULT '{}' CHECK (cardinality(client_ids) <= 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, identifier)
);
ALTER TABLE resource_servers ENABLE ROW LEVEL SECURITY;
ALTER TABLE resource_servers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON resource_servers
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE (name, scopes, client_ids), DELETE ON resource_servers TO lca_runtime;

-- The resources an authorization was granted for: a code keeps them until it is redeemed,
-- then the family it begins, so a refresh can ask for a token for any one of them.
ALTER TABLE authorization_codes ADD COLUMN resources text[] NOT NULL DEFAULT '{}'
    CHECK (cardinality(resources) <= 10);
ALTER TABLE token_families ADD COLUMN resources text[] NOT NULL DEFAULT '{}'
    CHECK (cardinality(resources) <= 10);
