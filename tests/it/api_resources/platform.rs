//! The admin API's platform routes: tenants for platform admins, 404 for everyone else.

use laventecare_auth::tenancy;
use laventecare_auth::vocabulary::Role;
use serde_json::{Value, json};

use super::{call, get, post, sub};
use crate::api::service_token;
use crate::flow::Provider;
use crate::mfa::{audit_rows, tenant_id, user_id};

/// A platform admin (an admin service account of the platform tenant) creates a tenant with
/// its first admin, invited, who gets a recovery link; lists, reads, suspends and reactivates
/// it, and appoints an existing user admin. A tenant admin gets 404 on every platform route, as
/// for a route that does not exist, and changes nothing.
#[tokio::test]
async fn platform_admins_create_tenants_and_no_one_else_sees_them() {
    let p = Provider::start().await;
    tenancy::create_tenant(&p.t.db, "platform", "Platform", true).await.unwrap();
    let root = service_token(&p, "platform", Role::Admin).await;
    let tenant_admin = service_token(&p, "acme", Role::Admin).await;

    let new = json!({ "slug": "globex", "name": "Globex", "admin_email": "hank@globex.example" });
    let routes: Vec<(reqwest::Method, String, Option<Value>)> = vec![
        (reqwest::Method::GET, "/platform/tenants".into(), None),
        (reqwest::Method::POST, "/platform/tenants".into(), Some(new.clone())),
        (reqwest::Method::GET, "/platform/tenants/acme".into(), None),
        (reqwest::Method::POST, "/platform/tenants/acme/suspend".into(), Some(json!(null))),
        (reqwest::Method::POST, "/platform/tenants/acme/reactivate".into(), Some(json!(null))),
        (reqwest::Method::POST, "/platform/tenants/acme/admins".into(), Some(json!({ "email": "ann@example.com" }))),
    ];
    let (_, unknown) = get(&p, &tenant_admin, "/no-such-route").await;
    let (_, missing) = get(&p, &root, "/platform/tenants/nope").await;
    for (method, path, body) in &routes {
        let (status, answer) = call(&p, method.clone(), &tenant_admin, path, body.clone()).await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
        assert_eq!(answer["error"], "not_found");
        assert_eq!(answer["error_description"], missing["error_description"], "{method} {path}");
    }
    assert_eq!(unknown["error"], "not_found");
    assert!(tenancy::find_tenant(&p.t.db, "globex").await.is_err(), "the tenant admin created nothing");
    assert_eq!(get(&p, &root, "/platform/tenants/acme").await.1["status"], "active");

    let (status, created) = post(&p, &root, "/platform/tenants", new.clone()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["tenant"]["slug"], "globex");
    assert_eq!(created["tenant"]["status"], "active");
    assert_eq!(created["admin"]["email"], "hank@globex.example");
    assert_eq!(created["admin"]["invited"], true);
    let link = created["admin"]["recovery_link"]["link"].as_str().unwrap();
    assert!(link.starts_with(&p.url("/recover?token=")), "{link}");
    let token = link.split("token=").nth(1).unwrap();
    assert!(laventecare_auth::identity::recovery::link_usable(&p.t.db, token).await.unwrap());
    let globex = tenant_id(&p, "globex").await;
    let hank = user_id(&p, "hank@globex.example").await;
    let mut tx = p.t.db.tenant(globex).await.unwrap();
    assert_eq!(laventecare_auth::db::memberships::role_of(&mut tx, hank).await.unwrap(), Some(Role::Admin));
    tx.commit().await.unwrap();
    let root_id = sub(&root);
    let rows = audit_rows(&p, globex, "tenant.created").await;
    assert_eq!(rows[0].actor_id.as_deref(), Some(root_id.as_str()));
    assert_eq!(audit_rows(&p, globex, "recovery.issued").await.len(), 1);
    assert_eq!(post(&p, &root, "/platform/tenants", new).await.0, 400, "the slug is taken");
    let bad = json!({ "slug": "initech", "name": "Initech", "admin_email": "not an email" });
    assert_eq!(post(&p, &root, "/platform/tenants", bad).await.0, 400);
    assert!(tenancy::find_tenant(&p.t.db, "initech").await.is_err(), "a bad email leaves no tenant behind");
    let extra = json!({ "slug": "initech", "name": "Initech", "admin_email": "a@initech.example", "plan": "gold" });
    assert_eq!(post(&p, &root, "/platform/tenants", extra).await.0, 400);

    let (status, page) = get(&p, &root, "/platform/tenants").await;
    assert_eq!(status, 200);
    let slugs: Vec<&str> = page["items"].as_array().unwrap().iter().map(|t| t["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["acme", "globex", "platform"]);
    let (_, first) = get(&p, &root, "/platform/tenants?limit=2").await;
    let (_, rest) =
        get(&p, &root, &format!("/platform/tenants?limit=2&cursor={}", first["next_cursor"].as_str().unwrap())).await;
    assert_eq!(rest["items"][0]["slug"], "platform");

    let (status, appointed) =
        post(&p, &root, "/platform/tenants/globex/admins", json!({ "email": "ann@example.com" })).await;
    assert_eq!(status, 200, "{appointed}");
    assert_eq!(appointed["invited"], false);
    assert!(appointed["previous_role"].is_null());
    assert!(appointed["recovery_link"].is_null(), "ann has a password");
    let (_, again) = post(&p, &root, "/platform/tenants/acme/admins", json!({ "email": "ann@example.com" })).await;
    assert_eq!(again["previous_role"], "editor", "a member is promoted");

    let (status, suspended) = post(&p, &root, "/platform/tenants/globex/suspend", json!(null)).await;
    assert_eq!((status, suspended["status"].clone()), (200, json!("suspended")), "{suspended}");
    assert_eq!(get(&p, &root, "/platform/tenants/globex").await.1["status"], "suspended");
    let (_, reactivated) = post(&p, &root, "/platform/tenants/globex/reactivate", json!(null)).await;
    assert_eq!(reactivated["status"], "active");
    assert_eq!(post(&p, &root, "/platform/tenants/platform/suspend", json!(null)).await.0, 400);
    assert_eq!(post(&p, &root, "/platform/tenants/nope/suspend", json!(null)).await.0, 404);

    // Only a platform admin may register a multi-tenant client.
    let web = json!({
        "name": "Shared portal", "grant_types": ["authorization_code"],
        "redirect_uris": ["https://portal.example/cb"], "multi_tenant": true,
    });
    assert_eq!(post(&p, &root, "/clients", web).await.0, 201);
}
