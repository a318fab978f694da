//! Row Level Security, tested as the runtime role (a superuser would bypass it and prove
//! nothing).

use laventecare_auth::{clients, identity, tenancy};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::support::TestDb;

/// Every table with RLS enabled, read from the catalogue, so a new table is covered without
/// touching this test.
async fn rls_tables(conn: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relrowsecurity ORDER BY 1",
    )
    .fetch_all(conn)
    .await
    .unwrap()
}

/// Tables with a `tenant_id` column (the tenant-scoped ones, besides `tenants` itself).
async fn tenant_tables(conn: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped \
         WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1",
    )
    .fetch_all(conn)
    .await
    .unwrap()
}

async fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(conn).await.unwrap()
}

async fn set_tenant(conn: &mut PgConnection, tenant: Uuid) {
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)").bind(tenant.to_string()).execute(conn).await.unwrap();
}

/// Two tenants, each with a member and a client; one user belongs to both.
struct Seed {
    a: Uuid,
    b: Uuid,
    only_b_user: Uuid,
}

async fn seed(t: &TestDb) -> Seed {
    let a = t.tenant("tenant-a").await;
    let b = t.tenant("tenant-b").await;
    let hasher = identity::PasswordHasher::new();
    let both = identity::create_user(&t.db, &hasher, "both@example.com", "password-for-both").await.unwrap();
    let only_b = identity::create_user(&t.db, &hasher, "onlyb@example.com", "password-for-b!").await.unwrap();
    tenancy::add_member(&t.db, "tenant-a", "both@example.com", laventecare_auth::vocabulary::Role::Admin)
        .await
        .unwrap();
    tenancy::add_member(&t.db, "tenant-b", "both@example.com", laventecare_auth::vocabulary::Role::Viewer)
        .await
        .unwrap();
    tenancy::add_member(&t.db, "tenant-b", "onlyb@example.com", laventecare_auth::vocabulary::Role::Editor)
        .await
        .unwrap();
    for slug in ["tenant-a", "tenant-b"] {
        clients::create_client(
            &t.db,
            clients::ClientRequest {
                tenant: slug.into(),
                name: format!("{slug} web"),
                grants: vec!["authorization_code".into()],
                redirect_uris: vec!["https://app.example.com/cb".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    // Protocol state in every other tenant table, for both tenants.
    for (tenant, user) in [(a, both.user_id), (b, only_b.user_id)] {
        grant_state(t, tenant, user).await;
    }
    Seed { a, b, only_b_user: only_b.user_id }
}

/// A code, a token family with refresh and access tokens, a consent, a recovery link, an
/// invitation, a device grant, a registered API, a pushed authorization request, a
/// back-channel logout notice, an initial access token and an audit event.
async fn grant_state(t: &TestDb, tenant: Uuid, user: Uuid) {
    use laventecare_auth::db::{access_tokens, audit, authorization_codes, consents, families, refresh_tokens};
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let family = Uuid::now_v7();
    let mut tx = t.db.tenant(tenant).await.unwrap();
    let code = authorization_codes::CodeGrant {
        client_id: "c".into(),
        user_id: user,
        redirect_uri: "https://app.example.com/cb".into(),
        scope: "openid".into(),
        nonce: None,
        code_challenge: None,
        auth_time: chrono::Utc::now(),
        amr: vec!["pwd".into()],
        acr: "a".into(),
        sid: "s".into(),
        security_stamp: None,
        resources: Vec::new(),
        dpop_jkt: None,
    };
    authorization_codes::insert(&mut tx, &laventecare_auth::secrets::random_bytes::<32>(), &code, later).await.unwrap();
    let f = families::Family {
        family_id: family,
        client_id: "c".into(),
        user_id: Some(user),
        scope: "openid".into(),
        auth_time: None,
        amr: vec![],
        acr: None,
        sid: None,
        expires_at: later,
        revoked_at: None,
        resources: Vec::new(),
    };
    families::insert(&mut tx, &f).await.unwrap();
    refresh_tokens::insert(&mut tx, &laventecare_auth::secrets::random_bytes::<32>(), family, later).await.unwrap();
    access_tokens::insert(&mut tx, Uuid::now_v7(), Some(family), "c", later).await.unwrap();
    consents::grant(&mut tx, user, "c", &["openid".into()]).await.unwrap();
    laventecare_auth::db::recovery::insert(
        &mut tx,
        &laventecare_auth::secrets::random_bytes::<32>(),
        user,
        "test",
        later,
    )
    .await
    .unwrap();
    laventecare_auth::db::device_grants::insert(
        &mut tx,
        &laventecare_auth::secrets::random_bytes::<32>(),
        &laventecare_auth::secrets::random_bytes::<32>(),
        "c",
        "openid",
        later,
    )
    .await
    .unwrap();
    let hash = laventecare_auth::secrets::random_bytes::<32>();
    let invitation = laventecare_auth::db::invitations::NewInvitation {
        id: Uuid::now_v7(),
        token_hash: &hash,
        email: "invited@example.com",
        role: laventecare_auth::vocabulary::Role::Viewer,
        invited_by: "test",
        expires_at: later,
    };
    let tenant = tx.tenant_id().unwrap();
    laventecare_auth::db::invitations::insert(&mut tx, tenant, &invitation).await.unwrap();
    let api = laventecare_auth::db::resource_servers::ResourceServerRow {
        id: Uuid::now_v7(),
        identifier: "https://api.example.com/".into(),
        name: "API".into(),
        scopes: vec!["read".into()],
        client_ids: vec!["c".into()],
        created_at: chrono::Utc::now(),
    };
    assert!(laventecare_auth::db::resource_servers::insert(&mut tx, &api).await.unwrap());
    let params = serde_json::json!([["response_type", "code"]]);
    let uri_hash = laventecare_auth::secrets::random_bytes::<32>();
    laventecare_auth::db::pushed_requests::insert(&mut tx, &uri_hash, "c", &params, later).await.unwrap();
    let event = audit::Event { actor_kind: "system", action: "test.seed", outcome: "success", ..Default::default() };
    audit::append(&mut tx, &event).await.unwrap();
    tx.commit().await.unwrap();
    // A back-channel logout notice, as the outbox of a sign-out writes it (written here by the
    // owner: no family of this seed has a client with a logout URI).
    let mut owner = t.owner().await;
    sqlx::query(
        "INSERT INTO logout_notices (tenant_id, id, client_id, uri, user_id, reason) \
         VALUES ($1, gen_random_uuid(), 'c', 'https://rp.example.com/bcl', $2, 'test')",
    )
    .bind(tenant)
    .bind(user)
    .execute(&mut owner)
    .await
    .unwrap();
    laventecare_auth::clients::registration::issue_token(
        &t.db,
        &laventecare_auth::db::audit::Actor::system(),
        tenant,
        1,
        3600,
    )
    .await
    .unwrap();
}

/// With no tenant set, every RLS table reads 0 rows, also on a pooled connection whose
/// earlier transaction had a tenant set.
#[tokio::test]
async fn no_tenant_reads_nothing() {
    let t = TestDb::new().await;
    let s = seed(&t).await;
    let mut conn = t.runtime().await;
    let tables = rls_tables(&mut conn).await;
    for table in ["tenants", "users", "memberships", "clients"] {
        assert!(tables.contains(&table.to_owned()), "{table} has RLS");
    }
    for table in &tables {
        assert_eq!(count(&mut conn, &format!("SELECT count(*) FROM {table}")).await, 0, "{table} without tenant");
    }
    // A transaction-local tenant ends with its transaction: the setting reads back as ''.
    sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
    set_tenant(&mut conn, s.a).await;
    assert!(count(&mut conn, "SELECT count(*) FROM clients").await > 0);
    sqlx::query("COMMIT").execute(&mut conn).await.unwrap();
    for table in &tables {
        assert_eq!(count(&mut conn, &format!("SELECT count(*) FROM {table}")).await, 0, "{table} after a tenant tx");
    }
    // The library's own unscoped transaction sees nothing either.
    let mut tx = t.db.unscoped().await.unwrap();
    assert_eq!(laventecare_auth::db::memberships::role_of(&mut tx, s.only_b_user).await.unwrap(), None);
}

/// With tenant A set, every tenant table shows A's rows and nothing of B's.
#[tokio::test]
async fn tenant_a_sees_only_a() {
    let t = TestDb::new().await;
    let s = seed(&t).await;
    let mut owner = t.owner().await;
    let tables = tenant_tables(&mut owner).await;
    assert!(tables.len() >= 2, "tenant tables: {tables:?}");
    // The owner (superuser) sees B's rows, so there is something to hide.
    for table in &tables {
        let b_rows = count(&mut owner, &format!("SELECT count(*) FROM {table} WHERE tenant_id = '{}'", s.b)).await;
        assert!(b_rows > 0, "seed has B rows in {table}");
    }

    let mut conn = t.runtime().await;
    sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
    set_tenant(&mut conn, s.a).await;
    for table in &tables {
        let mine = count(&mut conn, &format!("SELECT count(*) FROM {table} WHERE tenant_id = '{}'", s.a)).await;
        let other = count(&mut conn, &format!("SELECT count(*) FROM {table} WHERE tenant_id <> '{}'", s.a)).await;
        assert!(mine > 0, "{table}: A sees its rows");
        assert_eq!(other, 0, "{table}: A sees no other tenant's rows");
    }
    let tenant_ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM tenants").fetch_all(&mut conn).await.unwrap();
    assert_eq!(tenant_ids, [s.a]);
    // Users: only A's members; the user who is only in B stays invisible.
    let emails: Vec<String> =
        sqlx::query_scalar("SELECT email FROM users ORDER BY email").fetch_all(&mut conn).await.unwrap();
    assert_eq!(emails, ["both@example.com"]);
    let hidden = count(&mut conn, &format!("SELECT count(*) FROM users WHERE id = '{}'", s.only_b_user)).await;
    assert_eq!(hidden, 0);
    sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
}

/// With tenant A set, writes naming tenant B fail, and B's rows cannot be changed or deleted.
#[tokio::test]
async fn writes_to_another_tenant_fail() {
    let t = TestDb::new().await;
    let s = seed(&t).await;
    let mut conn = t.runtime().await;

    let attempts = [
        format!("INSERT INTO memberships (tenant_id, user_id, role) VALUES ('{}', '{}', 'admin')", s.b, s.only_b_user),
        format!(
            "INSERT INTO clients (tenant_id, client_id, name, client_type, token_endpoint_auth_method, grant_types) \
             VALUES ('{}', 'sneaky', 'x', 'public', 'none', '{{authorization_code}}')",
            s.b
        ),
        format!("INSERT INTO tenants (id, slug, name) VALUES ('{}', 'sneaky', 'x')", Uuid::now_v7()),
        // Moving one of A's rows to B.
        format!("UPDATE clients SET tenant_id = '{}'", s.b),
    ];
    // And moving A's rows to B, in every tenant table the catalogue lists.
    let mut owner = t.owner().await;
    let mut attempts = attempts.to_vec();
    for table in tenant_tables(&mut owner).await {
        attempts.push(format!("UPDATE {table} SET tenant_id = '{}'", s.b));
    }
    for sql in &attempts {
        sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
        set_tenant(&mut conn, s.a).await;
        let err = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).execute(&mut conn).await.unwrap_err();
        let code = laventecare_auth::db::sqlstate(&err);
        // 42501: new row violates row-level security policy.
        assert_eq!(code.as_deref(), Some("42501"), "{sql}: {err}");
        sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
    }

    // B's rows are invisible to updates and deletes: nothing is touched.
    sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
    set_tenant(&mut conn, s.a).await;
    for sql in [
        format!("UPDATE clients SET name = 'pwned' WHERE tenant_id = '{}'", s.b),
        format!("DELETE FROM memberships WHERE tenant_id = '{}'", s.b),
        format!("UPDATE users SET email = 'pwned@example.com' WHERE id = '{}'", s.only_b_user),
    ] {
        let done = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).execute(&mut conn).await.unwrap();
        assert_eq!(done.rows_affected(), 0, "{sql}");
    }
    sqlx::query("COMMIT").execute(&mut conn).await.unwrap();
    let mut owner = t.owner().await;
    let b_clients =
        count(&mut owner, &format!("SELECT count(*) FROM clients WHERE tenant_id = '{}' AND name <> 'pwned'", s.b))
            .await;
    assert_eq!(b_clients, 1);
    assert_eq!(count(&mut owner, &format!("SELECT count(*) FROM memberships WHERE tenant_id = '{}'", s.b)).await, 2);
}

/// A transaction for a user reads and writes that user's own record and nobody else's.
#[tokio::test]
async fn user_scope_is_the_own_record() {
    let t = TestDb::new().await;
    let s = seed(&t).await;
    let mut conn = t.runtime().await;
    sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
    sqlx::query("SELECT set_config('app.user_id', $1, true)")
        .bind(s.only_b_user.to_string())
        .execute(&mut conn)
        .await
        .unwrap();
    let emails: Vec<String> = sqlx::query_scalar("SELECT email FROM users").fetch_all(&mut conn).await.unwrap();
    assert_eq!(emails, ["onlyb@example.com"]);
    let changed = sqlx::query("UPDATE users SET status = 'disabled'").execute(&mut conn).await.unwrap();
    assert_eq!(changed.rows_affected(), 1);
    let err = sqlx::query("INSERT INTO users (id, email) VALUES ($1, 'other@example.com')")
        .bind(Uuid::now_v7())
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert_eq!(laventecare_auth::db::sqlstate(&err).as_deref(), Some("42501"));
    sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
}
