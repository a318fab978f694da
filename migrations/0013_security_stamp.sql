-- The security stamp (ARCHITECTURE.md, "Security stamp").
--
-- Each user has a random stamp that a password change, an MFA reset, a recovery and "sign out
-- everywhere" replace. Everything that stands for a past authentication records the stamp it
-- was made under and is refused once the user's stamp differs: browser sessions (signed-in and
-- half signed-in identities alike), unredeemed authorization codes and approved device
-- requests. Ending those rows one by one stays the first line; the stamp makes a row that was
-- missed die anyway.

ALTER TABLE users ADD COLUMN security_stamp uuid NOT NULL DEFAULT gen_random_uuid();
GRANT SELECT (security_stamp) ON users TO lca_lookup;

-- Login needs the stamp of the user it finds by email, to record it in the half sign-in or the
-- session. The return type changes, so the function is made anew.
DROP FUNCTION lca_user_by_email(text);
CREATE FUNCTION lca_user_by_email(p_email text)
RETURNS TABLE (id uuid, password_hash text, status text, security_stamp uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT u.id, u.password_hash, u.status, u.security_stamp FROM public.users u WHERE lower(u.email) = lower(p_email)
$$;

-- Whether every (user, stamp) pair a session holds is still current: the user exists, is
-- active, and has that stamp. A session that holds no identity is current. Arrays of unequal
-- length are never current. Returns only a boolean.
CREATE FUNCTION lca_identities_current(p_users uuid[], p_stamps uuid[])
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT coalesce(cardinality(p_users), 0) = coalesce(cardinality(p_stamps), 0) AND NOT EXISTS (
        SELECT 1 FROM unnest(p_users, p_stamps) AS i (user_id, stamp)
        WHERE NOT EXISTS (
            SELECT 1 FROM public.users u
            WHERE u.id = i.user_id AND u.security_stamp = i.stamp AND u.status = 'active'
        )
    )
$$;

GRANT CREATE ON SCHEMA public TO lca_lookup;
ALTER FUNCTION lca_user_by_email(text) OWNER TO lca_lookup;
ALTER FUNCTION lca_identities_current(uuid[], uuid[]) OWNER TO lca_lookup;
REVOKE CREATE ON SCHEMA public FROM lca_lookup;
REVOKE ALL ON FUNCTION lca_user_by_email(text), lca_identities_current(uuid[], uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lca_user_by_email(text), lca_identities_current(uuid[], uuid[]) TO lca_runtime;

-- A session records every identity it holds (the signed-in user and a half sign-in), with the
-- stamp of each, so ending a user's sessions finds every session that holds them, and a stale
-- one is refused when it is loaded. Sessions from before this migration hold no stamps and so
-- end: their users sign in again once.
ALTER TABLE browser_sessions
    ADD COLUMN user_ids uuid[] NOT NULL DEFAULT '{}',
    ADD COLUMN stamps uuid[] NOT NULL DEFAULT '{}',
    -- When the session id was issued: the absolute lifetime (LCA_SESSION_MAX_SECS) counts from
    -- here. A sign-in issues a new id, so it counts from the last sign-in.
    ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
UPDATE browser_sessions SET user_ids = ARRAY[user_id] WHERE user_id IS NOT NULL;
DROP INDEX browser_sessions_user_idx;
ALTER TABLE browser_sessions DROP COLUMN user_id;
CREATE INDEX browser_sessions_users_idx ON browser_sessions USING gin (user_ids);

-- A code records the stamp of the session that got it; redemption refuses a code whose user's
-- stamp has changed since. NULL (codes from before this migration) never matches.
ALTER TABLE authorization_codes ADD COLUMN security_stamp uuid;

-- An approved device request records the stamp of the approving session likewise.
ALTER TABLE device_grants ADD COLUMN security_stamp uuid;
