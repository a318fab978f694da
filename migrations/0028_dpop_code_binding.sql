-- DPoP binding of the authorization code (RFC 9449 §10): the key an authorization request
-- named (`dpop_jkt`, or the proof of its pushed request); the code is redeemed only with a
-- proof of that key.
ALTER TABLE authorization_codes ADD COLUMN dpop_jkt text CHECK (length(dpop_jkt) BETWEEN 1 AND 128);
