-- The claims a request named in its `claims` parameter (OIDC Core §5.5), by location: those for
-- the ID token and those for UserInfo. A code keeps them from the authorization request to its
-- redemption; the family its redemption begins keeps them for the refreshed ID token (OIDC Core
-- §12.2) and for UserInfo, which finds the family through the access token's jti. Only names of
-- user claims we know are written (`protocol::issue::requested_user_claims`); these checks hold
-- the same bound against any other writer: at most 40 names, each 1-64 characters of
-- [A-Za-z0-9_.:-], no NULL element.
ALTER TABLE authorization_codes
    ADD COLUMN id_token_claims text[] NOT NULL DEFAULT '{}'
        CONSTRAINT authorization_codes_id_token_claims_bounded CHECK (
            cardinality(id_token_claims) <= 40 AND array_position(id_token_claims, NULL) IS NULL
            AND (cardinality(id_token_claims) = 0
                 OR array_to_string(id_token_claims, ',') ~ '^[A-Za-z0-9_.:-]{1,64}(,[A-Za-z0-9_.:-]{1,64})*$')),
    ADD COLUMN userinfo_claims text[] NOT NULL DEFAULT '{}'
        CONSTRAINT authorization_codes_userinfo_claims_bounded CHECK (
            cardinality(userinfo_claims) <= 40 AND array_position(userinfo_claims, NULL) IS NULL
            AND (cardinality(userinfo_claims) = 0
                 OR array_to_string(userinfo_claims, ',') ~ '^[A-Za-z0-9_.:-]{1,64}(,[A-Za-z0-9_.:-]{1,64})*$'));

ALTER TABLE token_families
    ADD COLUMN id_token_claims text[] NOT NULL DEFAULT '{}'
        CONSTRAINT token_families_id_token_claims_bounded CHECK (
            cardinality(id_token_claims) <= 40 AND array_position(id_token_claims, NULL) IS NULL
            AND (cardinality(id_token_claims) = 0
                 OR array_to_string(id_token_claims, ',') ~ '^[A-Za-z0-9_.:-]{1,64}(,[A-Za-z0-9_.:-]{1,64})*$')),
    ADD COLUMN userinfo_claims text[] NOT NULL DEFAULT '{}'
        CONSTRAINT token_families_userinfo_claims_bounded CHECK (
            cardinality(userinfo_claims) <= 40 AND array_position(userinfo_claims, NULL) IS NULL
            AND (cardinality(userinfo_claims) = 0
                 OR array_to_string(userinfo_claims, ',') ~ '^[A-Za-z0-9_.:-]{1,64}(,[A-Za-z0-9_.:-]{1,64})*$'));
