-- The profile a user keeps (OIDC Core §5.1 standard claims): edited on the account page, by an
-- administrator through the admin API, or by an operator at the command line, all through
-- `identity::profile`, which validates the values; these checks hold the same bounds and shapes
-- against any other writer. `name` exists since 0005; it gains the control-character check.
ALTER TABLE users
    ADD CONSTRAINT users_name_printable CHECK (name !~ '[[:cntrl:]]'),
    ADD COLUMN given_name text
        CHECK (length(given_name) BETWEEN 1 AND 200 AND given_name !~ '[[:cntrl:]]'),
    ADD COLUMN family_name text
        CHECK (length(family_name) BETWEEN 1 AND 200 AND family_name !~ '[[:cntrl:]]'),
    ADD COLUMN preferred_username text
        CHECK (length(preferred_username) BETWEEN 1 AND 100 AND preferred_username !~ '[[:cntrl:][:space:]]'),
    -- A BCP 47 language tag (RFC 5646 §2.1: subtags of 1-8 letters and digits).
    ADD COLUMN locale text
        CHECK (length(locale) BETWEEN 2 AND 35 AND locale ~ '^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$'),
    -- An IANA time zone name, `Area/City` (OIDC Core §5.1 `zoneinfo`).
    ADD COLUMN zoneinfo text
        CHECK (length(zoneinfo) BETWEEN 3 AND 64 AND zoneinfo ~ '^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)+$'),
    -- Set by an operator or an administrator who checked the address; nothing here sends mail.
    ADD COLUMN email_verified boolean NOT NULL DEFAULT false;
