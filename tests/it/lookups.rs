//! The SECURITY DEFINER lookups, one by one: each finds what it is for, returns only the
//! columns it declares, and nothing for unknown input; only the runtime role may call them.

use laventecare_auth::db;
use laventecare_auth::{clients, identity, tenancy};

use crate::support::TestDb;

/// The SECURITY DEFINER functions the migrations declare (0003 and later); a new one must be
/// added here and tested.
const LOOKUPS: &[&str] = &[
    "lca_client_metadata_enabled()",
    "lca_client_metadata_tenants(uuid[])",
    "lca_client_owner(text)",
    "lca_client_tenant(text)",
    "lca_code_tenant(bytea)",
    "lca_device_code_tenant(bytea)",
    "lca_identities_current(uuid[],uuid[])",
    "lca_invitation_tenant(bytea)",
    "lca_logout_notice_tenants()",
    "lca_memberships_any_status(uuid)",
    "lca_memberships_of(uuid)",
    "lca_platform_tenant()",
    "lca_recovery_link_tenant(bytea)",
    "lca_refresh_token_tenant(bytea)",
    "lca_registration_token_tenant(bytea)",
    "lca_sweep_signing_keys(integer)",
    "lca_tenant_by_slug(text)",
    "lca_tenant_list()",
    "lca_user_by_email(text)",
    "lca_user_code_tenant(bytea)",
    "lca_user_family_tenants(uuid)",
];

/// The catalogue holds exactly the listed SECURITY DEFINER functions, owned by lca_lookup
/// (the janitor's key sweep by lca_janitor), executable by lca_runtime and not by PUBLIC.
#[tokio::test]
async fn definer_functions_are_exactly_the_listed_ones() {
    let t = TestDb::new().await;
    let mut conn = t.owner().await;
    let rows: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT p.oid::regprocedure::text, pg_get_userbyid(p.proowner)::text, \
                has_function_privilege('lca_runtime', p.oid, 'EXECUTE') \
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = 'public' AND p.prosecdef ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(names, LOOKUPS);
    for (name, owner, runtime_may) in &rows {
        let expected = if name.starts_with("lca_sweep_") { "lca_janitor" } else { "lca_lookup" };
        assert_eq!(owner, expected, "{name}");
        assert!(runtime_may, "{name} executable by lca_runtime");
    }
    // A role with no grants cannot call them.
    let mut conn = t.owner().await;
    sqlx::raw_sql(
        "DO $$ BEGIN CREATE ROLE lca_test_nobody NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query("SET ROLE lca_test_nobody").execute(&mut conn).await.unwrap();
    let err = sqlx::query("SELECT * FROM lca_user_by_email('x@example.com')").execute(&mut conn).await.unwrap_err();
    assert_eq!(db::sqlstate(&err).as_deref(), Some("42501"));
}

/// Each lookup finds its object with no tenant set, and finds nothing for unknown input.
#[tokio::test]
async fn each_lookup_finds_only_its_object() {
    let t = TestDb::new().await;
    let acme = t.tenant("acme").await;
    let hasher = identity::PasswordHasher::new();
    let user = identity::create_user(&t.db, &hasher, "Mixed.Case@Example.com", "a long password!").await.unwrap();
    tenancy::add_member(&t.db, "acme", "mixed.case@example.com", laventecare_auth::vocabulary::Role::Editor)
        .await
        .unwrap();
    let client = clients::create_client(
        &t.db,
        clients::ClientRequest {
            tenant: "acme".into(),
            name: "svc".into(),
            grants: vec!["client_credentials".into()],
            role: Some(laventecare_auth::vocabulary::Role::Viewer),
            ..Default::default()
        },
    )
    .await
    .unwrap();

    let mut tx = t.db.unscoped().await.unwrap();
    // lca_tenant_by_slug
    let found = db::tenants::by_slug(&mut tx, "acme").await.unwrap().unwrap();
    assert_eq!((found.id, found.status.as_str(), found.is_platform), (acme, "active", false));
    assert!(db::tenants::by_slug(&mut tx, "nope").await.unwrap().is_none());
    // lca_tenant_list: ids and slugs of every tenant.
    assert_eq!(db::tenants::list(&mut tx).await.unwrap(), [(acme, "acme".to_owned())]);
    // lca_platform_tenant: none before bootstrap.
    assert_eq!(db::tenants::platform(&mut tx).await.unwrap(), None);
    // lca_user_by_email, case-insensitive.
    let u = db::users::by_email(&mut tx, "MIXED.case@example.COM").await.unwrap().unwrap();
    assert_eq!(u.id, user.user_id);
    assert!(u.password_hash.unwrap().starts_with("$2b$12$"));
    assert!(db::users::by_email(&mut tx, "nobody@example.com").await.unwrap().is_none());
    // lca_client_tenant, and lca_client_owner (the same while the tenant is active)
    assert_eq!(db::clients::tenant_of(&mut tx, &client.client_id).await.unwrap(), Some(acme));
    assert_eq!(db::clients::tenant_of(&mut tx, "unknown").await.unwrap(), None);
    assert_eq!(db::clients::owner_of(&mut tx, &client.client_id).await.unwrap(), Some(acme));
    assert_eq!(db::clients::owner_of(&mut tx, "unknown").await.unwrap(), None);
    // lca_memberships_of
    let m = db::memberships::of_user(&mut tx, user.user_id).await.unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!((m[0].tenant_id, m[0].slug.as_str(), m[0].role.as_str()), (acme, "acme", "editor"));
    assert!(db::memberships::of_user(&mut tx, uuid::Uuid::now_v7()).await.unwrap().is_empty());
    // lca_memberships_any_status: (tenant, role) only.
    assert_eq!(
        db::memberships::all_of(&mut tx, user.user_id).await.unwrap(),
        [(acme, laventecare_auth::vocabulary::Role::Editor)]
    );
    assert!(db::memberships::all_of(&mut tx, uuid::Uuid::now_v7()).await.unwrap().is_empty());
    // lca_client_metadata_enabled and lca_client_metadata_tenants: none until a tenant allows
    // client metadata documents, then that tenant among those asked.
    assert!(!db::tenants::any_allows_client_metadata_documents(&mut tx).await.unwrap());
    assert!(db::tenants::allowing_client_metadata_documents(&mut tx, &[acme]).await.unwrap().is_empty());
    tx.commit().await.unwrap();
    tenancy::set_allow_client_metadata_documents(&t.db, &db::audit::Actor::system(), "acme", true).await.unwrap();
    let mut tx = t.db.unscoped().await.unwrap();
    assert!(db::tenants::any_allows_client_metadata_documents(&mut tx).await.unwrap());
    let other = uuid::Uuid::now_v7();
    assert_eq!(db::tenants::allowing_client_metadata_documents(&mut tx, &[other, acme]).await.unwrap(), [acme]);
    assert!(db::tenants::allowing_client_metadata_documents(&mut tx, &[other]).await.unwrap().is_empty());
    // And the tables themselves still read as empty in this transaction.
    assert_eq!(db::memberships::role_of(&mut tx, user.user_id).await.unwrap(), None);
}

/// The lookups return only their declared columns: no client secret hash, no user rows
/// beyond the one asked for.
#[tokio::test]
async fn lookups_return_the_minimum() {
    let t = TestDb::new().await;
    let mut conn = t.owner().await;
    let results: Vec<(String, String)> = sqlx::query_as(
        "SELECT p.proname::text, pg_get_function_result(p.oid) FROM pg_proc p \
         JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' AND p.prosecdef ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let expected = [
        ("lca_client_metadata_enabled", "boolean"),
        ("lca_client_metadata_tenants", "SETOF uuid"),
        ("lca_client_owner", "uuid"),
        ("lca_client_tenant", "uuid"),
        ("lca_code_tenant", "uuid"),
        ("lca_device_code_tenant", "uuid"),
        ("lca_identities_current", "boolean"),
        ("lca_invitation_tenant", "uuid"),
        ("lca_logout_notice_tenants", "SETOF uuid"),
        ("lca_memberships_any_status", "TABLE(tenant_id uuid, role text)"),
        ("lca_memberships_of", "TABLE(tenant_id uuid, slug text, name text, role text)"),
        ("lca_platform_tenant", "uuid"),
        ("lca_recovery_link_tenant", "uuid"),
        ("lca_refresh_token_tenant", "uuid"),
        ("lca_registration_token_tenant", "uuid"),
        ("lca_sweep_signing_keys", "bigint"),
        ("lca_tenant_by_slug", "TABLE(id uuid, status text, is_platform boolean)"),
        ("lca_tenant_list", "TABLE(id uuid, slug text)"),
        ("lca_user_by_email", "TABLE(id uuid, password_hash text, status text, security_stamp uuid)"),
        ("lca_user_code_tenant", "uuid"),
        ("lca_user_family_tenants", "SETOF uuid"),
    ];
    let got: Vec<(&str, &str)> = results.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(got, expected);
    // lca_lookup cannot read a client's secret hash even directly.
    sqlx::query("SET ROLE lca_lookup").execute(&mut conn).await.unwrap();
    let err = sqlx::query("SELECT secret_hash FROM clients").execute(&mut conn).await.unwrap_err();
    assert_eq!(db::sqlstate(&err).as_deref(), Some("42501"));
}

/// lca_code_tenant, lca_refresh_token_tenant, lca_recovery_link_tenant and
/// lca_invitation_tenant find the tenant of a stored hash, and nothing for an unknown one;
/// lca_user_family_tenants lists where a user has live token families.
#[tokio::test]
async fn code_and_refresh_lookups() {
    let t = TestDb::new().await;
    let acme = t.tenant("acme").await;
    let hasher = identity::PasswordHasher::new();
    let user = identity::create_user(&t.db, &hasher, "ann@example.com", "a long password!").await.unwrap();
    let code_hash = [7u8; 32];
    let refresh_hash = [9u8; 32];
    let family = uuid::Uuid::now_v7();
    let mut tx = t.db.tenant(acme).await.unwrap();
    let grant = db::authorization_codes::CodeGrant {
        client_id: "c".into(),
        user_id: user.user_id,
        redirect_uri: "https://x.example.com/cb".into(),
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
    let later = chrono::Utc::now() + chrono::Duration::minutes(1);
    db::authorization_codes::insert(&mut tx, &code_hash, &grant, later).await.unwrap();
    db::families::insert(
        &mut tx,
        &db::families::Family {
            family_id: family,
            client_id: "c".into(),
            user_id: Some(user.user_id),
            scope: "openid".into(),
            auth_time: None,
            amr: vec![],
            acr: None,
            sid: None,
            expires_at: later,
            revoked_at: None,
            resources: Vec::new(),
        },
    )
    .await
    .unwrap();
    db::refresh_tokens::insert(&mut tx, &refresh_hash, family, later).await.unwrap();
    let link_hash = [5u8; 32];
    db::recovery::insert(&mut tx, &link_hash, user.user_id, "test", later).await.unwrap();
    let invitation_hash = [6u8; 32];
    let invitation = db::invitations::NewInvitation {
        id: uuid::Uuid::now_v7(),
        token_hash: &invitation_hash,
        email: "zoe@example.com",
        role: laventecare_auth::vocabulary::Role::Viewer,
        invited_by: "test",
        expires_at: later,
    };
    db::invitations::insert(&mut tx, acme, &invitation).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = t.db.unscoped().await.unwrap();
    assert_eq!(db::authorization_codes::tenant_of(&mut tx, &code_hash).await.unwrap(), Some(acme));
    assert_eq!(db::authorization_codes::tenant_of(&mut tx, &[1u8; 32]).await.unwrap(), None);
    assert_eq!(db::refresh_tokens::tenant_of(&mut tx, &refresh_hash).await.unwrap(), Some(acme));
    assert_eq!(db::refresh_tokens::tenant_of(&mut tx, &[1u8; 32]).await.unwrap(), None);
    // lca_recovery_link_tenant
    assert_eq!(db::recovery::tenant_of(&mut tx, &link_hash).await.unwrap(), Some(acme));
    assert_eq!(db::recovery::tenant_of(&mut tx, &[1u8; 32]).await.unwrap(), None);
    // lca_invitation_tenant
    assert_eq!(db::invitations::tenant_of(&mut tx, &invitation_hash).await.unwrap(), Some(acme));
    assert_eq!(db::invitations::tenant_of(&mut tx, &[1u8; 32]).await.unwrap(), None);
    assert!(db::invitations::usable(&mut tx, &invitation_hash).await.unwrap().is_none(), "the row stays invisible");
    // lca_user_family_tenants: the tenants with live families of the user, nobody else's.
    assert_eq!(db::families::tenants_of_user(&mut tx, user.user_id).await.unwrap(), [acme]);
    assert!(db::families::tenants_of_user(&mut tx, uuid::Uuid::now_v7()).await.unwrap().is_empty());
    assert_eq!(db::recovery::usable(&mut tx, &link_hash).await.unwrap(), None, "the link row stays invisible");
    // Without the tenant, the rows themselves stay invisible.
    assert!(matches!(
        db::refresh_tokens::consume(&mut tx, &refresh_hash, "c", 0, None).await.unwrap(),
        db::refresh_tokens::RefreshUse::Invalid
    ));
    drop(tx);

    // Database::in_tenant_of: the lookup and the tenant's scope in one statement, and nothing
    // for what no lookup finds.
    for presented in [
        db::TenantOf::Code(&code_hash),
        db::TenantOf::RefreshToken(&refresh_hash),
        db::TenantOf::Invitation(&invitation_hash),
    ] {
        let mut tx = t.db.in_tenant_of(presented).await.unwrap().expect("found");
        assert_eq!(tx.tenant_id(), Some(acme), "{presented:?}");
        let seen = db::refresh_tokens::state(&mut tx, &refresh_hash).await.unwrap();
        assert!(seen.is_some(), "the tenant's rows are visible in its transaction");
    }
    for unknown in [
        db::TenantOf::Code(&[1u8; 32]),
        db::TenantOf::RefreshToken(&[1u8; 32]),
        db::TenantOf::DeviceCode(&[1u8; 32]),
        db::TenantOf::Invitation(&[1u8; 32]),
        db::TenantOf::Client("unknown"),
    ] {
        assert!(t.db.in_tenant_of(unknown).await.unwrap().is_none(), "{unknown:?}");
    }
}

/// A suspended tenant's clients are unknown to lca_client_tenant (the protocol's lookup) and
/// still found by lca_client_owner (operator commands, signing out); its memberships leave
/// lca_memberships_of.
#[tokio::test]
async fn suspended_tenants_leave_the_protocol_lookups() {
    let t = TestDb::new().await;
    let acme = t.tenant("acme").await;
    let hasher = identity::PasswordHasher::new();
    let user = identity::create_user(&t.db, &hasher, "ann@example.com", "a long password!").await.unwrap();
    tenancy::add_member(&t.db, "acme", "ann@example.com", laventecare_auth::vocabulary::Role::Viewer).await.unwrap();
    let client = clients::create_client(
        &t.db,
        clients::ClientRequest {
            tenant: "acme".into(),
            name: "svc".into(),
            grants: vec!["client_credentials".into()],
            role: Some(laventecare_auth::vocabulary::Role::Viewer),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let system = db::audit::Actor::system();
    tenancy::set_suspended(&t.db, &system, "acme", true).await.unwrap();
    let mut tx = t.db.unscoped().await.unwrap();
    assert_eq!(db::clients::tenant_of(&mut tx, &client.client_id).await.unwrap(), None);
    assert_eq!(db::clients::owner_of(&mut tx, &client.client_id).await.unwrap(), Some(acme));
    assert!(db::memberships::of_user(&mut tx, user.user_id).await.unwrap().is_empty());
    tx.commit().await.unwrap();
    tenancy::set_suspended(&t.db, &system, "acme", false).await.unwrap();
    let mut tx = t.db.unscoped().await.unwrap();
    assert_eq!(db::clients::tenant_of(&mut tx, &client.client_id).await.unwrap(), Some(acme));
}

/// lca_sweep_signing_keys deletes retired keys whose publish window has ended, up to its
/// limit, and never an active key or one still published.
#[tokio::test]
async fn signing_key_sweep_deletes_only_unpublished_keys() {
    let t = TestDb::new().await;
    let mut owner = t.owner().await;
    sqlx::raw_sql(
        "INSERT INTO signing_keys (kid, alg, public_jwk, private_enc, retired_at, publish_until) \
         SELECT k, 'RS256', jsonb_build_object('kid', k), decode(repeat('00', 40), 'hex'), r, p FROM (VALUES \
           (repeat('a', 43), now() - interval '3 days', now() - interval '2 days'), \
           (repeat('b', 43), now() - interval '3 days', now() - interval '1 day'), \
           (repeat('c', 43), now() - interval '1 hour', now() + interval '1 day'), \
           (repeat('d', 43), NULL::timestamptz, NULL::timestamptz)) AS v(k, r, p)",
    )
    .execute(&mut owner)
    .await
    .unwrap();
    let mut runtime = t.runtime().await;
    let gone: i64 = sqlx::query_scalar("SELECT lca_sweep_signing_keys(1)").fetch_one(&mut runtime).await.unwrap();
    assert_eq!(gone, 1, "at most the limit");
    let gone: i64 = sqlx::query_scalar("SELECT lca_sweep_signing_keys(100)").fetch_one(&mut runtime).await.unwrap();
    assert_eq!(gone, 1);
    let left: Vec<String> =
        sqlx::query_scalar("SELECT left(kid, 1) FROM signing_keys ORDER BY kid").fetch_all(&mut owner).await.unwrap();
    assert_eq!(left, ["c", "d"]);
    // The runtime role itself still may not delete keys.
    let err = sqlx::query("DELETE FROM signing_keys").execute(&mut runtime).await.unwrap_err();
    assert_eq!(db::sqlstate(&err).as_deref(), Some("42501"));
}

/// lca_device_code_tenant finds a device grant's tenant by its device code, whatever its
/// state; lca_user_code_tenant only a pending, unexpired one by its user code.
#[tokio::test]
async fn device_code_lookups() {
    let t = TestDb::new().await;
    let acme = t.tenant("acme").await;
    let soon = chrono::Utc::now() + chrono::Duration::minutes(5);
    let past = chrono::Utc::now() - chrono::Duration::minutes(5);
    let mut tx = t.db.tenant(acme).await.unwrap();
    assert!(db::device_grants::insert(&mut tx, &[1u8; 32], &[2u8; 32], "c", "openid", soon).await.unwrap());
    assert!(db::device_grants::insert(&mut tx, &[3u8; 32], &[4u8; 32], "c", "openid", past).await.unwrap());
    // A user code is unique while stored.
    assert!(!db::device_grants::insert(&mut tx, &[5u8; 32], &[2u8; 32], "c", "openid", soon).await.unwrap());
    tx.commit().await.unwrap();

    let mut tx = t.db.unscoped().await.unwrap();
    assert_eq!(db::device_grants::code_tenant(&mut tx, &[1u8; 32]).await.unwrap(), Some(acme));
    assert_eq!(db::device_grants::code_tenant(&mut tx, &[3u8; 32]).await.unwrap(), Some(acme), "expired: still found");
    assert_eq!(db::device_grants::code_tenant(&mut tx, &[9u8; 32]).await.unwrap(), None);
    assert_eq!(db::device_grants::user_code_tenant(&mut tx, &[2u8; 32]).await.unwrap(), Some(acme));
    assert_eq!(db::device_grants::user_code_tenant(&mut tx, &[4u8; 32]).await.unwrap(), None, "expired");
    assert_eq!(db::device_grants::user_code_tenant(&mut tx, &[9u8; 32]).await.unwrap(), None);
    // The rows themselves stay invisible without the tenant.
    assert!(db::device_grants::pending_by_user_code(&mut tx, &[2u8; 32]).await.unwrap().is_none());
    tx.commit().await.unwrap();

    // Decided: no longer found by its user code.
    let mut tx = t.db.tenant(acme).await.unwrap();
    let who = db::device_grants::Decider {
        user_id: uuid::Uuid::now_v7(),
        stamp: uuid::Uuid::nil(),
        auth_time: chrono::Utc::now(),
        amr: &[],
        acr: "a",
        sid: "s",
    };
    assert!(db::device_grants::decide(&mut tx, &[2u8; 32], false, &who).await.unwrap().is_some());
    assert!(db::device_grants::decide(&mut tx, &[2u8; 32], true, &who).await.unwrap().is_none(), "decided once");
    tx.commit().await.unwrap();
    let mut tx = t.db.unscoped().await.unwrap();
    assert_eq!(db::device_grants::user_code_tenant(&mut tx, &[2u8; 32]).await.unwrap(), None);
}

/// lca_identities_current says only whether every (user, stamp) pair is current: a stamp that
/// changed, a disabled user, an unknown user and pairs of unequal length are not; no identity
/// at all is.
#[tokio::test]
async fn identities_current_checks_every_stamp() {
    let t = TestDb::new().await;
    let hasher = identity::PasswordHasher::new();
    let ann = identity::create_user(&t.db, &hasher, "ann@example.com", "a long password!").await.unwrap().user_id;
    let bob = identity::create_user(&t.db, &hasher, "bob@example.com", "a long password!").await.unwrap().user_id;
    let mut owner = t.owner().await;
    let stamp =
        |id: uuid::Uuid| sqlx::query_scalar::<_, uuid::Uuid>("SELECT security_stamp FROM users WHERE id = $1").bind(id);
    let (ann_stamp, bob_stamp) =
        (stamp(ann).fetch_one(&mut owner).await.unwrap(), stamp(bob).fetch_one(&mut owner).await.unwrap());
    let mut runtime = t.runtime().await;
    let mut current = async |users: &[uuid::Uuid], stamps: &[uuid::Uuid]| -> bool {
        sqlx::query_scalar("SELECT lca_identities_current($1, $2)")
            .bind(users)
            .bind(stamps)
            .fetch_one(&mut runtime)
            .await
            .unwrap()
    };
    assert!(current(&[], &[]).await);
    assert!(current(&[ann], &[ann_stamp]).await);
    assert!(current(&[ann, bob], &[ann_stamp, bob_stamp]).await);
    assert!(!current(&[ann, bob], &[ann_stamp, ann_stamp]).await, "one stale pair is enough");
    assert!(!current(&[ann], &[]).await, "unequal lengths");
    assert!(!current(&[uuid::Uuid::now_v7()], &[ann_stamp]).await, "unknown user");
    sqlx::query("UPDATE users SET status = 'disabled' WHERE id = $1").bind(bob).execute(&mut owner).await.unwrap();
    assert!(!current(&[bob], &[bob_stamp]).await, "a disabled user");
    // The runtime role cannot read the stamps themselves without a tenant or user scope.
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&mut t.runtime().await).await.unwrap();
    assert_eq!(seen, 0);
}
