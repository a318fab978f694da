-- Signing keys for ID and access tokens (DESIGN.md, "Token contracts").
--
-- Global, not tenant-scoped: every tenant's tokens are signed by the issuer's keys and
-- published in one JWKS, so this table has no tenant_id and no Row Level Security (it is on
-- the allowlist of tests/it/schema.rs). The runtime role may read, add and retire keys; it may
-- not delete them.
--
-- * kid: the RFC 7638 JWK thumbprint (SHA-256, base64url: 43 characters) of the public key.
-- * public_jwk: the published JWK (with kid, alg and "use": "sig").
-- * private_enc: the private JWK sealed with AES-256-GCM under the master key:
--   96-bit random nonce || ciphertext || 128-bit tag, with the kid in the associated data, so
--   a ciphertext moved to another row does not decrypt.
-- * retired_at: NULL while the key signs. A retired key no longer signs but stays in the JWKS
--   until publish_until = retired_at + the longest token lifetime (+ the time other server
--   instances may take to notice the rotation), so every token it signed can still be
--   verified until it expires.
CREATE TABLE signing_keys (
    kid           text PRIMARY KEY CHECK (kid ~ '^[A-Za-z0-9_-]{43}$'),
    alg           text NOT NULL CHECK (alg IN ('RS256', 'ES256', 'EdDSA')),
    public_jwk    jsonb NOT NULL CHECK (jsonb_typeof(public_jwk) = 'object' AND public_jwk->>'kid' = kid),
    -- 12-byte nonce + 16-byte tag, and some ciphertext.
    private_enc   bytea NOT NULL CHECK (length(private_enc) > 28),
    created_at    timestamptz NOT NULL DEFAULT now(),
    retired_at    timestamptz,
    publish_until timestamptz,
    CHECK ((retired_at IS NULL) = (publish_until IS NULL)),
    CHECK (publish_until >= retired_at)
);
-- At most one signing key per algorithm: two processes creating the first keys at once (or a
-- rotation racing them) cannot both succeed.
CREATE UNIQUE INDEX signing_keys_active_alg_key ON signing_keys (alg) WHERE retired_at IS NULL;

GRANT SELECT, INSERT, UPDATE ON signing_keys TO lca_runtime;
