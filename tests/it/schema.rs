//! The schema keeps its promises: RLS on every table outside an explicit allowlist, tenant
//! keys first, and a runtime role that owns nothing and cannot bypass RLS.

use sqlx::PgConnection;

use crate::support::TestDb;

/// Tables that may go without Row Level Security, each for a stated reason.
const NO_RLS_ALLOWLIST: &[&str] = &[
    // sqlx's migration bookkeeping; the runtime role has no grant on it.
    "_sqlx_migrations",
    // The issuer's signing keys are global (one JWKS for every tenant); no tenant column.
    "signing_keys",
    // Browser sessions exist before any tenant is chosen; rows are found only by the SHA-256
    // of a 128-bit random cookie value.
    "browser_sessions",
    // Failed sign-in counters exist before anyone is identified; keys are SHA-256 of an email
    // or IP, and no tenant data is in them.
    "login_throttle",
    // Request counters of unauthenticated endpoints (migrations/0012): keys are SHA-256 of a
    // client_id or an IP, counted before any tenant is known; no tenant data.
    "rate_limits",
    // Password reset links (migrations/0021): like an identity, global; found only by the
    // SHA-256 of a 256-bit random token; no tenant data.
    "password_resets",
    // Email verification links (migrations/0022): like password_resets, global and found only
    // by the SHA-256 of a random token; no tenant data.
    "email_verifications",
    // The DPoP replay cache (migrations/0026): SHA-256 of a key thumbprint and a proof's jti,
    // checked before any tenant is known; no tenant data.
    "dpop_proofs",
];

/// Everything wrong with RLS in the `public` schema, one line per problem.
async fn rls_problems(conn: &mut PgConnection) -> Vec<String> {
    let rows: Vec<(String, bool, bool, i64)> = sqlx::query_as(
        "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity, \
                (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let mut problems = Vec::new();
    for (table, enabled, forced, policies) in rows {
        if NO_RLS_ALLOWLIST.contains(&table.as_str()) {
            continue;
        }
        if !enabled {
            problems.push(format!("{table}: row level security not enabled"));
        }
        if !forced {
            problems.push(format!("{table}: row level security not forced"));
        }
        if policies == 0 {
            problems.push(format!("{table}: no policy"));
        }
    }
    // Tenant tables: tenant_id NOT NULL and first in the primary key.
    let keys: Vec<(String, bool, Option<String>)> = sqlx::query_as(
        "SELECT c.relname::text, a.attnotnull, \
                (SELECT pa.attname::text FROM pg_index i JOIN pg_attribute pa \
                   ON pa.attrelid = i.indrelid AND pa.attnum = i.indkey[0] \
                 WHERE i.indrelid = c.oid AND i.indisprimary) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped \
         WHERE n.nspname = 'public' AND c.relkind = 'r'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    for (table, not_null, first_key) in keys {
        if !not_null {
            problems.push(format!("{table}: tenant_id is nullable"));
        }
        if first_key.as_deref() != Some("tenant_id") {
            problems.push(format!("{table}: primary key does not start with tenant_id"));
        }
    }
    // The runtime role: no superuser, no BYPASSRLS, owns nothing.
    let (superuser, bypass): (bool, bool) =
        sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = 'lca_runtime'")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    if superuser || bypass {
        problems.push("lca_runtime is a superuser or has BYPASSRLS".into());
    }
    let owned: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relowner = 'lca_runtime'::regrole",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    for table in owned {
        problems.push(format!("{table}: owned by lca_runtime"));
    }
    problems
}

/// The migrated schema has no RLS problem.
#[tokio::test]
async fn every_table_has_forced_rls_or_is_allowlisted() {
    let t = TestDb::new().await;
    let mut conn = t.owner().await;
    assert_eq!(rls_problems(&mut conn).await, Vec::<String>::new());
    // The tables of the foundation are all there to be checked.
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class WHERE relname IN ('tenants', 'users', 'memberships', 'clients') AND relforcerowsecurity",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(n, 4);
}

/// The check itself catches each kind of mistake.
#[tokio::test]
async fn the_check_catches_mistakes() {
    let t = TestDb::new().await;
    let mut conn = t.owner().await;
    sqlx::raw_sql(
        "CREATE TABLE rogue (id int PRIMARY KEY); \
         CREATE TABLE half (tenant_id uuid, id int, PRIMARY KEY (id)); \
         ALTER TABLE half ENABLE ROW LEVEL SECURITY; \
         CREATE TABLE runtime_owned (tenant_id uuid NOT NULL, PRIMARY KEY (tenant_id)); \
         ALTER TABLE runtime_owned ENABLE ROW LEVEL SECURITY; ALTER TABLE runtime_owned FORCE ROW LEVEL SECURITY; \
         CREATE POLICY p ON runtime_owned USING (true); \
         ALTER TABLE runtime_owned OWNER TO lca_runtime;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let problems = rls_problems(&mut conn).await;
    for expected in [
        "rogue: row level security not enabled",
        "rogue: row level security not forced",
        "rogue: no policy",
        "half: row level security not forced",
        "half: no policy",
        "half: tenant_id is nullable",
        "half: primary key does not start with tenant_id",
        "runtime_owned: owned by lca_runtime",
    ] {
        assert!(problems.iter().any(|p| p == expected), "missing {expected:?} in {problems:?}");
    }
}

/// The words a column's own CHECK constraint allows, read from the catalog
/// (`CHECK ((status = ANY (ARRAY['active'::text, …])))` → `["active", …]`), sorted.
async fn checked_words(conn: &mut PgConnection, table: &str, column: &str) -> Vec<String> {
    let defs: Vec<String> = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c \
           JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) \
         WHERE c.contype = 'c' AND c.conrelid = $1::regclass AND a.attname = $2 AND cardinality(c.conkey) = 1",
    )
    .bind(table)
    .bind(column)
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert_eq!(defs.len(), 1, "one single-column CHECK on {table}.{column}: {defs:?}");
    let mut words: Vec<String> = defs[0].split('\'').skip(1).step_by(2).map(str::to_owned).collect();
    words.sort();
    words
}

/// Every enum of `vocabulary` lists exactly the words its column's CHECK constraint allows, so
/// any stored value decodes and every value the code writes is accepted.
#[tokio::test]
async fn the_enums_match_the_check_constraints() {
    use laventecare_auth::vocabulary::{ClientType, DeviceGrantStatus, Role, TenantStatus, UserStatus};
    fn sorted(words: impl IntoIterator<Item = &'static str>) -> Vec<String> {
        let mut v: Vec<String> = words.into_iter().map(str::to_owned).collect();
        v.sort();
        v
    }
    let t = TestDb::new().await;
    let mut conn = t.owner().await;
    let roles = sorted(Role::ALL.iter().map(|r| r.as_str()));
    assert_eq!(checked_words(&mut conn, "memberships", "role").await, roles);
    assert_eq!(checked_words(&mut conn, "clients", "service_role").await, roles);
    assert_eq!(
        checked_words(&mut conn, "tenants", "status").await,
        sorted(TenantStatus::ALL.iter().map(|s| s.as_str()))
    );
    assert_eq!(checked_words(&mut conn, "users", "status").await, sorted(UserStatus::ALL.iter().map(|s| s.as_str())));
    assert_eq!(
        checked_words(&mut conn, "clients", "client_type").await,
        sorted(ClientType::ALL.iter().map(|c| c.as_str()))
    );
    assert_eq!(
        checked_words(&mut conn, "device_grants", "status").await,
        sorted(DeviceGrantStatus::ALL.iter().map(|s| s.as_str()))
    );
}
