-- The OAuth 2.0 Device Authorization Grant (RFC 8628): one row per device authorization
-- request, from `POST /device_authorization` to the token it ends in.
--
-- The device code (256 random bits) and the user code (8 letters, stored normalised) are kept
-- only as SHA-256 hashes. Every state change is one atomic UPDATE on the row: approval and
-- denial only of a pending, unexpired grant; the poll that redeems an approved grant sets it
-- consumed, so of any number of concurrent polls exactly one gets tokens.
CREATE TABLE device_grants (
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    device_code_hash bytea NOT NULL CHECK (length(device_code_hash) = 32),
    user_code_hash   bytea NOT NULL CHECK (length(user_code_hash) = 32),
    client_id        text NOT NULL,
    scope            text NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'approved', 'denied', 'consumed')),
    -- The approving (or denying) user and their sign-in, copied from the browser session.
    user_id          uuid,
    auth_time        timestamptz,
    amr              text[] NOT NULL DEFAULT '{}',
    acr              text,
    sid              text,
    -- RFC 8628 §3.5: the polling interval, raised by 5 s on every slow_down.
    interval_secs    integer NOT NULL DEFAULT 5,
    last_polled_at   timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    decided_at       timestamptz,
    consumed_at      timestamptz,
    -- Set by the redemption: a second redemption revokes this family.
    family_id        uuid,
    PRIMARY KEY (tenant_id, device_code_hash)
);
-- The token endpoint finds a device code by its hash alone (lca_device_code_tenant), the
-- device page a user code (lca_user_code_tenant). User codes are unique while stored.
CREATE INDEX device_grants_code_idx ON device_grants (device_code_hash);
CREATE UNIQUE INDEX device_grants_user_code_idx ON device_grants (user_code_hash);
CREATE INDEX device_grants_expiry_idx ON device_grants (expires_at);

ALTER TABLE device_grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE device_grants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON device_grants
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE, DELETE ON device_grants TO lca_runtime;

-- Which grant began a token family: the account page lists the device families
-- ('device_code'); NULL for the families of the code grant.
ALTER TABLE token_families ADD COLUMN origin_grant text;

-- The lookups: a device code or a user code names its tenant only through its row.
GRANT SELECT (tenant_id, device_code_hash, user_code_hash, status, expires_at) ON device_grants TO lca_lookup;
CREATE POLICY lookup_read ON device_grants FOR SELECT TO lca_lookup USING (true);

CREATE FUNCTION lca_device_code_tenant(p_code_hash bytea)
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT d.tenant_id FROM public.device_grants d WHERE d.device_code_hash = p_code_hash
$$;

-- Only a pending, unexpired grant is found by its user code: a used or expired one is as
-- unknown as a mistyped one.
CREATE FUNCTION lca_user_code_tenant(p_user_code_hash bytea)
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT d.tenant_id FROM public.device_grants d
    WHERE d.user_code_hash = p_user_code_hash AND d.status = 'pending' AND d.expires_at > now()
$$;

GRANT CREATE ON SCHEMA public TO lca_lookup;
ALTER FUNCTION lca_device_code_tenant(bytea) OWNER TO lca_lookup;
ALTER FUNCTION lca_user_code_tenant(bytea) OWNER TO lca_lookup;
REVOKE CREATE ON SCHEMA public FROM lca_lookup;
REVOKE ALL ON FUNCTION lca_device_code_tenant(bytea), lca_user_code_tenant(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lca_device_code_tenant(bytea), lca_user_code_tenant(bytea) TO lca_runtime;

-- A password change, MFA reset or recovery ends a user's token families in every tenant
-- where they have some; an approved device request not yet redeemed would become one, so
-- those tenants count too (the request is then refused, see identity::security).
GRANT SELECT (user_id) ON device_grants TO lca_lookup;
CREATE OR REPLACE FUNCTION lca_user_family_tenants(p_user_id uuid)
RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT f.tenant_id FROM public.token_families f
    WHERE f.user_id = p_user_id AND f.revoked_at IS NULL AND f.expires_at > now()
    UNION
    SELECT d.tenant_id FROM public.device_grants d
    WHERE d.user_id = p_user_id AND d.status = 'approved' AND d.expires_at > now()
$$;
