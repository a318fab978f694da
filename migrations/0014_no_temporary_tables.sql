-- Request connections may not create temporary tables (ARCHITECTURE.md, "Database logins and
-- Row Level Security"). A temporary table is found before the schema's table of the same name
-- (pg_temp comes first in every search path), so SQL that once ran on a pooled connection
-- could leave a fake `tenants` or `clients` behind for the requests that use the connection
-- next. Nothing here uses temporary tables.
--
-- Privileges on a database belong to that database and are not copied by
-- CREATE DATABASE … TEMPLATE; a database made that way from a migrated one needs this line run
-- on it by its owner (the test harness does so).
DO $$
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'could not revoke TEMPORARY on database % from PUBLIC: run it as the database owner',
        current_database();
END
$$;
