//! The admin API's basics: who may call it, its JSON and its OpenAPI document.

use laventecare_auth::clients::{self, ClientRequest};
use laventecare_auth::vocabulary::Role;

use crate::flow::Provider;

/// A service account of `tenant` with `role` that may ask for the `admin` scope, and a token of
/// it with that scope.
pub async fn service_token(p: &Provider, tenant: &str, role: Role) -> String {
    let c = clients::create_client(
        &p.t.db,
        ClientRequest {
            tenant: tenant.into(),
            name: format!("{role} job"),
            grants: vec!["client_credentials".into()],
            role: Some(role),
            admin_api: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let res = p
        .http()
        .post(p.url("/token"))
        .basic_auth(&c.client_id, Some(c.client_secret.unwrap().expose()))
        .form(&[("grant_type", "client_credentials"), ("scope", "admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// An admin lists members and adds one; a viewer may read but not add; no token, a token
/// without the `admin` scope, and a garbled token are refused with the house error shape.
#[tokio::test]
async fn members_by_role_and_token() {
    let p = Provider::start().await;
    let admin = service_token(&p, "acme", Role::Admin).await;
    let viewer = service_token(&p, "acme", Role::Viewer).await;
    let http = p.http();

    let res = http.get(p.url("/api/v1/members")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let page: serde_json::Value = res.json().await.unwrap();
    let emails: Vec<&str> = page["items"].as_array().unwrap().iter().map(|m| m["email"].as_str().unwrap()).collect();
    assert_eq!(emails, ["ann@example.com"]);

    let add = |token: &str| {
        http.post(p.url("/api/v1/members"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "email": "new@example.com", "role": "viewer" }))
            .send()
    };
    let res = add(&viewer).await.unwrap();
    assert_eq!(res.status(), 403);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "forbidden", "{body}");
    assert!(body["request_id"].is_string());
    let res = add(&admin).await.unwrap();
    assert_eq!(res.status(), 201);
    let added: serde_json::Value = res.json().await.unwrap();
    assert_eq!(added["email"], "new@example.com");
    assert_eq!(added["role"], "viewer");
    assert_eq!(add(&admin).await.unwrap().status(), 400, "a second add is a conflict");

    let res = http
        .post(p.url("/api/v1/members"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({ "email": "x@example.com", "role": "viewer", "extra": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "unknown fields are refused");

    assert_eq!(http.get(p.url("/api/v1/members")).send().await.unwrap().status(), 401);
    assert_eq!(http.get(p.url("/api/v1/members")).bearer_auth("garbage").send().await.unwrap().status(), 401);
    let (_, tokens) = crate::flow::tokens(&p).await;
    let res =
        http.get(p.url("/api/v1/members")).bearer_auth(tokens["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(res.status(), 403, "a token without the admin scope");
}

/// The OpenAPI document is served, is OpenAPI 3.1, and names a permission on every operation.
#[tokio::test]
async fn the_openapi_document_is_served() {
    let p = Provider::start().await;
    let res = p.http().get(p.url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let doc: serde_json::Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/api/v1/members/{user_id}"), "{:?}", paths.keys());
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let word = op["x-permission"].as_str().unwrap_or_else(|| panic!("{method} {path} names no permission"));
            assert!(laventecare_auth::admin::Action::from_word(word).is_some(), "{method} {path}: {word}");
        }
    }
}

/// Someone without an account is invited: the answer looks the same as for an existing user,
/// and a recovery link issued by an admin service account lets them set a password and sign
/// in. The tenant's last admin cannot be demoted or removed through the API.
#[tokio::test]
async fn invitations_and_the_last_admin() {
    let p = Provider::start().await;
    let admin = service_token(&p, "acme", Role::Admin).await;
    let http = p.http();
    let res = http
        .post(p.url("/api/v1/members"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({ "email": "Invited@Example.com", "role": "admin" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let invited: serde_json::Value = res.json().await.unwrap();
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    let res = http
        .post(p.url("/api/v1/members"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({ "email": "someone@example.com", "role": "viewer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(keys(&invited), keys(&res.json::<serde_json::Value>().await.unwrap()));
    let id = invited["user_id"].as_str().unwrap();

    let res = http.post(p.url(&format!("/api/v1/members/{id}/recovery-link"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let link: serde_json::Value = res.json().await.unwrap();
    let b = crate::flow::Browser::new(&p);
    let form = b.open(link["link"].as_str().unwrap()).await;
    let csrf = crate::flow::hidden(form.html(), "csrf");
    let token = crate::flow::hidden(form.html(), "token");
    let done = b.post("/recover", &[("csrf", &csrf), ("token", &token), ("password", "granite meadow swift 9")]).await;
    assert!(done.html().contains("Your password is set"), "{}", done.html());

    // `invited` is the only admin who is a person; ann is an editor.
    let mut conn = p.t.owner().await;
    let admins: i64 = sqlx::query_scalar("SELECT count(*) FROM memberships WHERE role = 'admin'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(admins, 1);
    let res = http
        .patch(p.url(&format!("/api/v1/members/{id}")))
        .bearer_auth(&admin)
        .json(&serde_json::json!({ "role": "viewer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"], "conflict");
    let res = http.delete(p.url(&format!("/api/v1/members/{id}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let role: String = sqlx::query_scalar("SELECT role FROM memberships WHERE user_id = $1::uuid")
        .bind(id)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(role, "admin", "nothing changed");
}
