-- DPoP (RFC 9449; README, "DPoP"; ARCHITECTURE.md, "DPoP").
--
-- dpop_proofs: the replay cache. Each accepted proof's (key thumbprint, jti) is kept, as a
-- SHA-256, until its iat has left the acceptance window; a second use of one is refused. A
-- proof belongs to a key, not to a tenant (it is checked before the grant's tenant is known),
-- so the table is global and holds no tenant data (tests/it/schema.rs lists it, with why).
CREATE TABLE dpop_proofs (
    key_hash   bytea PRIMARY KEY CHECK (length(key_hash) = 32),
    expires_at timestamptz NOT NULL
);
CREATE INDEX dpop_proofs_expires_idx ON dpop_proofs (expires_at);
GRANT SELECT, INSERT, DELETE ON dpop_proofs TO lca_runtime;

-- The key a family's refresh tokens are bound to (the JWK thumbprint, RFC 7638): each refresh
-- must prove possession of it.
ALTER TABLE token_families ADD COLUMN dpop_jkt text CHECK (length(dpop_jkt) BETWEEN 1 AND 128);
