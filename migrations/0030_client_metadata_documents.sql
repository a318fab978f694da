-- OAuth Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document; README,
-- "Client ID metadata documents"; ARCHITECTURE.md, "Client ID metadata documents"). A client
-- whose client_id is an https URL is described by the JSON document at that URL; the provider
-- fetches it at /authorize or /par and keeps it as a public, multi-tenant client of the
-- platform tenant until it expires. Off unless a tenant turns it on.

-- A tenant's users may sign in to such clients only when it allows them.
ALTER TABLE tenants ADD COLUMN allow_client_metadata_documents boolean NOT NULL DEFAULT false;
GRANT UPDATE (allow_client_metadata_documents) ON tenants TO lca_operator;
GRANT SELECT (allow_client_metadata_documents) ON tenants TO lca_lookup;

-- The URL is the client_id, and may be up to 2048 bytes long.
ALTER TABLE clients DROP CONSTRAINT clients_client_id_check;
ALTER TABLE clients ADD CONSTRAINT clients_client_id_check CHECK (length(client_id) BETWEEN 1 AND 2048);

-- The document as fetched (at most 5 KiB) and until when it may be used without fetching it
-- again; both set exactly for a client of a metadata document.
ALTER TABLE clients ADD COLUMN metadata_document jsonb
    CHECK (metadata_document IS NULL OR (jsonb_typeof(metadata_document) = 'object'
                                         AND octet_length(metadata_document::text) <= 16384));
ALTER TABLE clients ADD COLUMN metadata_expires_at timestamptz;
ALTER TABLE clients ADD CONSTRAINT clients_metadata_expiry_check
    CHECK ((metadata_document IS NULL) = (metadata_expires_at IS NULL));

-- Of the tenants given, those that are active and allow clients of metadata documents (the
-- tenant choice of such a client offers only these).
CREATE FUNCTION lca_client_metadata_tenants(p_tenants uuid[])
RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT t.id FROM public.tenants t
    WHERE t.id = ANY (p_tenants) AND t.status = 'active' AND t.allow_client_metadata_documents
$$;

-- Whether any active tenant allows them: until one does, no document is ever fetched.
CREATE FUNCTION lca_client_metadata_enabled()
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT EXISTS (SELECT 1 FROM public.tenants t
                   WHERE t.status = 'active' AND t.allow_client_metadata_documents)
$$;

GRANT CREATE ON SCHEMA public TO lca_lookup;
ALTER FUNCTION lca_client_metadata_tenants(uuid[]) OWNER TO lca_lookup;
ALTER FUNCTION lca_client_metadata_enabled() OWNER TO lca_lookup;
REVOKE CREATE ON SCHEMA public FROM lca_lookup;
REVOKE ALL ON FUNCTION lca_client_metadata_tenants(uuid[]), lca_client_metadata_enabled() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lca_client_metadata_tenants(uuid[]), lca_client_metadata_enabled() TO lca_runtime;
