-- Tenants, users, memberships and clients (DESIGN.md, "Tenancy model").
--
-- Every tenant-scoped table has tenant_id NOT NULL first in its primary key (so it can later be
-- distributed by tenant), ENABLE + FORCE ROW LEVEL SECURITY, and the policy
--     tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
-- for reads and writes. NULLIF: after a transaction-local set_config ends, a pooled connection
-- reads the setting back as '' rather than NULL. No tenant set → no rows.

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    slug        text NOT NULL CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    is_platform boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX tenants_slug_key ON tenants (slug);
-- At most one platform tenant.
CREATE UNIQUE INDEX tenants_platform_key ON tenants (is_platform) WHERE is_platform;

-- One global identity per person; email unique without regard to case.
CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    -- bcrypt (cost 12); NULL while a user has no password yet.
    password_hash text,
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE memberships (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id);

CREATE TABLE clients (
    tenant_id                  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    client_id                  text NOT NULL CHECK (length(client_id) BETWEEN 1 AND 128),
    name                       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    client_type                text NOT NULL CHECK (client_type IN ('confidential', 'public')),
    -- SHA-256 of the secret (high-entropy, so a fast hash suffices); never the secret itself.
    secret_hash                bytea CHECK (secret_hash IS NULL OR length(secret_hash) = 32),
    token_endpoint_auth_method text NOT NULL
        CHECK (token_endpoint_auth_method IN ('client_secret_basic', 'client_secret_post', 'none')),
    grant_types                text[] NOT NULL,
    redirect_uris              text[] NOT NULL DEFAULT '{}',
    post_logout_redirect_uris  text[] NOT NULL DEFAULT '{}',
    scopes                     text[] NOT NULL DEFAULT '{openid,profile,email,offline_access}',
    -- Role of a service account (client credentials) in its tenant.
    service_role               text CHECK (service_role IN ('admin', 'editor', 'viewer')),
    multi_tenant               boolean NOT NULL DEFAULT false,
    signing_alg                text NOT NULL DEFAULT 'RS256' CHECK (signing_alg IN ('RS256', 'ES256', 'EdDSA')),
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, client_id),
    CHECK ((client_type = 'confidential') = (secret_hash IS NOT NULL)),
    CHECK ((client_type = 'public') = (token_endpoint_auth_method = 'none'))
);
-- client_id is globally unique: the token endpoint finds the client before it knows the tenant.
CREATE UNIQUE INDEX clients_client_id_key ON clients (client_id);

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE memberships FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON memberships
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE clients ENABLE ROW LEVEL SECURITY;
ALTER TABLE clients FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON clients
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- Users are global, so their wall is different: a transaction acting for a user
-- (app.user_id) reads and writes that user's own row, and a tenant transaction reads the users
-- who are members of that tenant (the memberships subquery is itself filtered by tenant).
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY own_record ON users
    USING (id = NULLIF(current_setting('app.user_id', true), '')::uuid)
    WITH CHECK (id = NULLIF(current_setting('app.user_id', true), '')::uuid);
CREATE POLICY tenant_members ON users FOR SELECT
    USING (EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = users.id));

GRANT SELECT, INSERT, UPDATE, DELETE ON tenants, users, memberships, clients TO lca_runtime;
