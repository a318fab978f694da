-- Pushed authorization requests (RFC 9126; README, "Pushed authorization requests";
-- ARCHITECTURE.md, "Pushed authorization requests").
--
-- A client posts its authorization request to /par over the back channel, authenticated; the
-- request is checked as /authorize would, kept here, and named by a `request_uri` the browser
-- then carries to /authorize with the client_id. Only the SHA-256 of the random part is
-- stored; a request is used once, within 60 seconds. Tenant data (the client's tenant): Row
-- Level Security, found through the client named beside the request_uri.
CREATE TABLE pushed_authorization_requests (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    uri_hash   bytea NOT NULL CHECK (length(uri_hash) = 32),
    client_id  text NOT NULL,
    params     jsonb NOT NULL CHECK (pg_column_size(params) <= 65536),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    PRIMARY KEY (tenant_id, uri_hash)
);
CREATE INDEX pushed_authorization_requests_expires_idx ON pushed_authorization_requests (expires_at);
ALTER TABLE pushed_authorization_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE pushed_authorization_requests FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON pushed_authorization_requests
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE (used_at), DELETE ON pushed_authorization_requests TO lca_runtime;

-- A client whose authorization requests must arrive through /par
-- (`require_pushed_authorization_requests`, RFC 9126 §6).
ALTER TABLE clients ADD COLUMN require_par boolean NOT NULL DEFAULT false;
