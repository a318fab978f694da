//! Row Level Security as the last wall (issue #9, item 2): a request connection logs in as
//! `lca_runtime` itself, so SQL on it cannot switch to any other role, with the embedded
//! default and with an external database (`DATABASE_URL` + `DATABASE_RUNTIME_URL`); and the
//! runtime role may no longer write tenants or signing keys (item 8).

use laventecare_auth::db::{self, Database};
use laventecare_auth::{clients, tenancy};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::support::{TEST_MASTER_KEY, TestDb, binary, run_with_stdin, test_config};

/// Every way SQL on `conn` tried to become another role and got somewhere, as readable lines;
/// empty when every attempt failed. The attempts: `RESET ROLE`, `SET ROLE NONE` and the two
/// ways back to the session user (each must leave the connection as a plain lca_runtime),
/// then `SET ROLE` and `SET SESSION AUTHORIZATION` to every other role in `pg_roles` (each
/// must fail with 42501, insufficient privilege).
async fn escapes(conn: &mut PgConnection) -> Vec<String> {
    let mut found = Vec::new();
    for sql in ["RESET ROLE", "SET ROLE NONE", "RESET SESSION AUTHORIZATION", "SET SESSION AUTHORIZATION DEFAULT"] {
        if let Err(e) = sqlx::query(sql).execute(&mut *conn).await {
            found.push(format!("{sql}: unexpected error {e}"));
            continue;
        }
        let (who, superuser): (String, bool) =
            sqlx::query_as("SELECT current_user::text, rolsuper FROM pg_roles WHERE rolname = current_user")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        if who != "lca_runtime" || superuser {
            found.push(format!("{sql}: now {who} (superuser: {superuser})"));
        }
        back_to_runtime(conn).await;
    }
    let roles: Vec<String> =
        sqlx::query_scalar("SELECT rolname::text FROM pg_roles WHERE rolname <> 'lca_runtime' ORDER BY 1")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    for role in ["lca_lookup", "lca_janitor", "lca_operator", "pg_database_owner", "pg_read_all_data"] {
        assert!(roles.iter().any(|r| r == role), "{role} is among the roles tried");
    }
    for role in &roles {
        let quoted = format!("\"{}\"", role.replace('"', "\"\""));
        for sql in [format!("SET ROLE {quoted}"), format!("SET SESSION AUTHORIZATION {quoted}")] {
            match sqlx::query(sqlx::AssertSqlSafe(sql.clone())).execute(&mut *conn).await {
                Ok(_) => {
                    found.push(format!("{sql}: succeeded"));
                    back_to_runtime(conn).await;
                }
                Err(e) if db::sqlstate(&e).as_deref() == Some("42501") => {}
                Err(e) => found.push(format!("{sql}: failed with {:?} instead of 42501: {e}", db::sqlstate(&e))),
            }
        }
    }
    found
}

/// Brings a connection the probe lifted out back to lca_runtime (a no-op on a real runtime
/// login): first back to the login's own session user, then down.
async fn back_to_runtime(conn: &mut PgConnection) {
    sqlx::query("RESET SESSION AUTHORIZATION").execute(&mut *conn).await.unwrap();
    sqlx::query("SET ROLE lca_runtime").execute(&mut *conn).await.unwrap();
}

fn master_key() -> laventecare_auth::master_key::MasterKey {
    laventecare_auth::master_key::MasterKey::load(&test_config(&[("LCA_MASTER_KEY", TEST_MASTER_KEY)])).unwrap()
}

/// Two tenants, each with a client, made through the library.
async fn two_tenants(db: &Database) -> (Uuid, Uuid) {
    let mut ids = Vec::new();
    for slug in ["tenant-a", "tenant-b"] {
        ids.push(tenancy::create_tenant(db, slug, slug, false).await.unwrap().tenant_id);
        let request = clients::ClientRequest {
            tenant: slug.into(),
            name: format!("{slug} web"),
            grants: vec!["authorization_code".into()],
            redirect_uris: vec!["https://app.example.com/cb".into()],
            ..Default::default()
        };
        clients::create_client(db, request).await.unwrap();
    }
    (ids[0], ids[1])
}

async fn sqlstate_of(conn: &mut PgConnection, sql: &str) -> Option<String> {
    let result = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut *conn).await;
    db::sqlstate(&result.expect_err(sql))
}

/// In a transaction opened for tenant A (as the server opens them), raw SQL sets
/// `app.tenant_id` to B by hand. What it gets: B's rows, exactly as a transaction opened for
/// B would show them (the setting is not bound to the transaction: see ARCHITECTURE.md on why),
/// and still none of the writes a request connection may not do.
async fn forged_tenant(conn: &mut PgConnection, a: Uuid, b: Uuid) {
    sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)").bind(a.to_string()).execute(&mut *conn).await.unwrap();
    let seen: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM tenants").fetch_all(&mut *conn).await.unwrap();
    assert_eq!(seen, [a], "the server's own setting");
    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT set_config('app.tenant_id', '{b}', true)")))
        .execute(&mut *conn)
        .await
        .unwrap();
    let seen: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM tenants").fetch_all(&mut *conn).await.unwrap();
    assert_eq!(seen, [b], "a forged setting reads the other tenant's row");
    let clients: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT tenant_id, name FROM clients").fetch_all(&mut *conn).await.unwrap();
    assert_eq!(clients, [(b, "tenant-b web".to_owned())], "and only that tenant's rows");
    // Still lca_runtime: what needs more than a tenant stays refused (42501).
    for sql in [
        format!("UPDATE tenants SET status = 'suspended' WHERE id = '{b}'"),
        "UPDATE signing_keys SET retired_at = now(), publish_until = now()".to_owned(),
        "DELETE FROM audit_events".to_owned(),
    ] {
        sqlx::query("SAVEPOINT attempt").execute(&mut *conn).await.unwrap();
        assert_eq!(sqlstate_of(conn, &sql).await.as_deref(), Some("42501"), "{sql}");
        sqlx::query("ROLLBACK TO SAVEPOINT attempt").execute(&mut *conn).await.unwrap();
    }
    sqlx::query("ROLLBACK").execute(&mut *conn).await.unwrap();

    // A session-level forgery (is_local = false) outlives its transaction on this connection,
    // but a transaction opened for a tenant overrides it with its own transaction-local value.
    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT set_config('app.tenant_id', '{b}', false)")))
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)").bind(a.to_string()).execute(&mut *conn).await.unwrap();
    let seen: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM tenants").fetch_all(&mut *conn).await.unwrap();
    assert_eq!(seen, [a], "the tenant transaction's own setting wins");
    sqlx::query("COMMIT").execute(&mut *conn).await.unwrap();
    let seen: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM tenants").fetch_all(&mut *conn).await.unwrap();
    assert_eq!(seen, [b], "outside it, the forged session value is back");
    sqlx::query("RESET app.tenant_id").execute(&mut *conn).await.unwrap();
}

/// The probe as the request connection of a running `Database`, with its login checked.
async fn probe_request_connection(db: &Database) {
    db.verify_runtime_login().await.unwrap();
    let (a, b) = two_tenants(db).await;
    let mut conn = db.request_connection().await.unwrap();
    let who: (String, String) =
        sqlx::query_as("SELECT session_user::text, current_user::text").fetch_one(&mut *conn).await.unwrap();
    assert_eq!(who, ("lca_runtime".to_owned(), "lca_runtime".to_owned()));
    assert_eq!(escapes(&mut conn).await, Vec::<String>::new());
    // Nor leave a temporary table behind to shadow a real one for the next request.
    let err = sqlx::query("CREATE TEMP TABLE tenants (id uuid)").execute(&mut *conn).await.unwrap_err();
    assert_eq!(db::sqlstate(&err).as_deref(), Some("42501"), "{err}");
    forged_tenant(&mut conn, a, b).await;
}

/// The embedded default, opened as `serve` opens it (own cluster in a fresh data directory):
/// SQL on a request connection cannot become any other role.
#[tokio::test]
async fn embedded_request_connections_cannot_switch_role() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut config = test_config(&[("LCA_DATA_DIR", data.to_str().unwrap()), ("LCA_MASTER_KEY", TEST_MASTER_KEY)]);
    // The embedded default also when this run's own DATABASE_URL is in the environment.
    config.database = laventecare_auth::config::DatabaseConfig::Embedded;
    let (database, cluster) = db::open(&config).await.unwrap();
    let database = database.with_audit_key(std::sync::Arc::new(master_key().audit_key()));
    let mut cluster = cluster.expect("the embedded default runs its own cluster");
    database.migrate().await.unwrap();
    probe_request_connection(&database).await;
    database.close().await;
    cluster.stop().unwrap();
    // The cluster of a root process lives outside the data dir; remove it with the test.
    let root = std::fs::canonicalize(data.join("postgres")).unwrap();
    std::fs::remove_dir_all(root).unwrap();
}

/// An external database (`DATABASE_URL` for the owner, `DATABASE_RUNTIME_URL` for requests),
/// opened as `serve` opens it: the same.
#[tokio::test]
async fn database_url_request_connections_cannot_switch_role() {
    let t = TestDb::new().await;
    let (url, runtime_url) = (t.url(), t.runtime_url());
    let config = test_config(&[("DATABASE_URL", url.as_str()), ("DATABASE_RUNTIME_URL", runtime_url.as_str())]);
    let (database, cluster) = db::open(&config).await.unwrap();
    let database = database.with_audit_key(std::sync::Arc::new(master_key().audit_key()));
    assert!(cluster.is_none(), "no cluster of its own");
    database.migrate().await.unwrap();
    probe_request_connection(&database).await;
    database.close().await;
}

/// The probe is not vacuous: on a connection made as the request pool made them before
/// (owner login, then `SET ROLE lca_runtime`), it finds the ways out.
#[tokio::test]
async fn the_probe_catches_an_owner_login_with_set_role() {
    let t = TestDb::new().await;
    let mut conn = t.owner_stepped_down().await;
    let found = escapes(&mut conn).await;
    for expected in ["RESET ROLE: now", "SET ROLE \"lca_lookup\": succeeded", "SET ROLE \"lca_operator\": succeeded"] {
        assert!(found.iter().any(|f| f.starts_with(expected)), "{expected:?} not in {found:?}");
    }
    // And the check every new request connection passes refuses it.
    let problem = db::runtime_login_problem(&mut conn).await.unwrap().unwrap();
    assert!(problem.contains("not lca_runtime"), "{problem}");
    let mut runtime = t.runtime().await;
    assert_eq!(db::runtime_login_problem(&mut runtime).await.unwrap(), None);
}

/// With `DATABASE_URL` alone there is no runtime login: the start refuses with a message
/// naming DATABASE_RUNTIME_URL, the request pool never hands out an owner connection, and
/// only `migrate` (owner rights only) runs.
#[tokio::test]
async fn database_url_alone_is_refused_except_for_migrate() {
    let t = TestDb::new().await;
    let url = t.url();
    let config = test_config(&[("DATABASE_URL", url.as_str())]);
    let (database, _) = db::open(&config).await.unwrap();
    let err = format!("{:#}", database.verify_runtime_login().await.unwrap_err());
    assert!(err.contains("DATABASE_RUNTIME_URL") && err.contains("not lca_runtime"), "{err}");
    // Fail closed: the request pool refuses the owner's login (it waits out its acquire
    // timeout, logging why).
    assert!(database.unscoped().await.is_err());

    let mut cmd = binary();
    cmd.env("DATABASE_URL", &url).args(["tenant", "create", "--slug", "nope", "--name", "N"]);
    let out = run_with_stdin(cmd, "");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DATABASE_RUNTIME_URL"), "{stderr}");
    let mut cmd = binary();
    cmd.env("DATABASE_URL", &url).arg("migrate");
    assert!(run_with_stdin(cmd, "").status.success());
    let mut owner = t.owner().await;
    let tenants: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants").fetch_one(&mut owner).await.unwrap();
    assert_eq!(tenants, 0, "nothing was created");
}

/// The runtime role may read tenants and signing keys but not write them, even in its own
/// tenant (item 8); the operator tasks that do write them still work, with their audit rows.
#[tokio::test]
async fn runtime_may_not_write_tenants_or_keys() {
    let t = TestDb::new().await;
    let (a, _) = two_tenants(&t.db).await;
    laventecare_auth::tokens::ensure_signing_keys(&t.db, &master_key()).await.unwrap();
    let mut conn = t.runtime().await;
    let fresh = Uuid::now_v7();
    let attempts = [
        (a, format!("UPDATE tenants SET status = 'suspended' WHERE id = '{a}'")),
        (a, "UPDATE tenants SET require_mfa = true".to_owned()),
        (a, "DELETE FROM tenants".to_owned()),
        // A row the tenant policy would accept: the transaction is for that tenant.
        (fresh, format!("INSERT INTO tenants (id, slug, name) VALUES ('{fresh}', 'sneaky', 'S')")),
        (a, "UPDATE signing_keys SET retired_at = now(), publish_until = now()".to_owned()),
        (
            a,
            "INSERT INTO signing_keys (kid, alg, public_jwk, private_enc) \
             SELECT repeat('k', 43), alg, jsonb_set(public_jwk, '{kid}', to_jsonb(repeat('k', 43))), private_enc \
             FROM signing_keys LIMIT 1"
                .to_owned(),
        ),
    ];
    for (tenant, sql) in &attempts {
        sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
            .bind(tenant.to_string())
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(sqlstate_of(&mut conn, sql).await.as_deref(), Some("42501"), "{sql}");
        sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
    }
    // Reads stay.
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM signing_keys").fetch_one(&mut conn).await.unwrap();
    assert_eq!(keys, 3);

    // The operator paths: suspend (with its audit row, same transaction) and rotate.
    let operator = laventecare_auth::db::audit::Actor::operator("tester");
    assert!(tenancy::set_suspended(&t.db, &operator, "tenant-a", true).await.unwrap().changed);
    let policy = laventecare_auth::tokens::KeyRotationPolicy::default();
    let master_key = master_key();
    let report = laventecare_auth::tokens::rotate_signing_keys(&t.db, &master_key, &policy).await.unwrap();
    assert_eq!((report.created.len(), report.retired.len()), (3, 3));
    let mut owner = t.owner().await;
    let (status, events): (String, i64) = sqlx::query_as(
        "SELECT t.status, (SELECT count(*) FROM audit_events e WHERE e.tenant_id = t.id AND e.action = 'tenant.suspended') \
         FROM tenants t WHERE t.id = $1",
    )
    .bind(a)
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert_eq!((status.as_str(), events), ("suspended", 1));
}
