//! The admin API's resources beyond members, through the real router: clients, devices,
//! sessions, the audit log, settings, and tenants for platform admins. Each works, is
//! audited with the caller as actor, refuses what its rules refuse, and leaves nothing changed
//! when it refuses.

use laventecare_auth::clients::{self, ClientRequest};
use laventecare_auth::tenancy;
use laventecare_auth::vocabulary::Role;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::api::service_token;
use crate::flow::{Browser, Provider, claims};
use crate::mfa::{audit_rows, tenant_id, user_id};

mod audit;
mod platform;

/// One request to the API: (status, JSON body or `null`).
pub(super) async fn call(
    p: &Provider,
    method: reqwest::Method,
    token: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = p.http().request(method, p.url(&format!("/api/v1{path}"))).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
}

pub(super) async fn get(p: &Provider, token: &str, path: &str) -> (u16, Value) {
    call(p, reqwest::Method::GET, token, path, None).await
}

pub(super) async fn post(p: &Provider, token: &str, path: &str, body: Value) -> (u16, Value) {
    call(p, reqwest::Method::POST, token, path, Some(body)).await
}

pub(super) async fn patch(p: &Provider, token: &str, path: &str, body: Value) -> (u16, Value) {
    call(p, reqwest::Method::PATCH, token, path, Some(body)).await
}

pub(super) async fn delete(p: &Provider, token: &str, path: &str) -> (u16, Value) {
    call(p, reqwest::Method::DELETE, token, path, None).await
}

/// The `sub` (a service account's client id) of an access token.
pub(super) fn sub(token: &str) -> String {
    claims(token)["sub"].as_str().unwrap().to_owned()
}

/// A client-credentials token request with this id and secret: the status.
async fn client_credentials(p: &Provider, client_id: &str, secret: &str) -> u16 {
    let res = p
        .http()
        .post(p.url("/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    res.status().as_u16()
}

/// A refresh by a client (public when `secret` is `None`): the status.
async fn refresh(p: &Provider, client_id: &str, secret: Option<&str>, refresh_token: &str) -> u16 {
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", client_id)];
    let req = p.http().post(p.url("/token"));
    let req = match secret {
        Some(s) => req.basic_auth(client_id, Some(s)),
        None => req,
    };
    req.form(&form).send().await.unwrap().status().as_u16()
}

/// The entries `GET /audit?{q}` shows.
pub(super) async fn entries(p: &Provider, token: &str, q: impl std::fmt::Display) -> Vec<Value> {
    let (status, page) = get(p, token, &format!("/audit?{q}")).await;
    assert_eq!(status, 200, "{q}: {page}");
    page["items"].as_array().unwrap().clone()
}

/// The client ids a list shows, walking every page.
async fn client_ids(p: &Provider, token: &str) -> Vec<String> {
    let (status, page) = get(p, token, "/clients?limit=200").await;
    assert_eq!(status, 200, "{page}");
    assert!(page["next_cursor"].is_null());
    page["items"].as_array().unwrap().iter().map(|c| c["client_id"].as_str().unwrap().to_owned()).collect()
}

/// An admin registers a service account (the secret is in the answer once and works at
/// `/token`), lists and reads it (never a secret), renames it, gives it a new secret (the old
/// one stops working) and deletes it (the new one stops too); each step is audited with the
/// admin as actor. Another tenant's client is a 404 like a missing one, for every method, and
/// stays as it was.
#[tokio::test]
async fn a_client_from_creation_to_deletion() {
    let p = Provider::start().await;
    let admin = service_token(&p, "acme", Role::Admin).await;
    let actor = sub(&admin);

    let (status, created) = post(
        &p,
        &admin,
        "/clients",
        json!({ "name": "Nightly export", "grant_types": ["client_credentials"], "role": "viewer", "admin_api": true }),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(created["role"], "viewer");
    assert_eq!(created["admin_api"], true);
    assert!(created["scopes"].as_array().unwrap().iter().any(|s| s == "admin"));
    assert_eq!(client_credentials(&p, &id, &secret).await, 200);

    let (status, page) = get(&p, &admin, "/clients").await;
    assert_eq!(status, 200);
    assert!(page["items"].as_array().unwrap().iter().any(|c| c["client_id"] == id.as_str()));
    let (status, one) = get(&p, &admin, &format!("/clients/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["name"], "Nightly export");
    for shown in [page.to_string(), one.to_string()] {
        assert!(!shown.contains("secret\""), "no secret nor its hash is listed: {shown}");
        assert!(!shown.contains(&secret));
    }

    let (status, renamed) = patch(&p, &admin, &format!("/clients/{id}"), json!({ "name": "Nightly backup" })).await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["name"], "Nightly backup");
    let (status, _) =
        patch(&p, &admin, &format!("/clients/{id}"), json!({ "redirect_uris": ["https://x.example/cb"] })).await;
    assert_eq!(status, 400, "a client-credentials client has no redirect URIs");

    let (status, rotated) = post(&p, &admin, &format!("/clients/{id}/secret"), json!(null)).await;
    assert_eq!(status, 201, "{rotated}");
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(client_credentials(&p, &id, &secret).await, 401, "the old secret stops at once");
    assert_eq!(client_credentials(&p, &id, &new_secret).await, 200);

    // Another tenant's client: every method answers as for a missing one.
    tenancy::create_tenant(&p.t.db, "globex", "Globex", false).await.unwrap();
    let foreign = clients::create_client(
        &p.t.db,
        ClientRequest {
            tenant: "globex".into(),
            name: "Globex job".into(),
            grants: vec!["client_credentials".into()],
            role: Some(Role::Viewer),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let foreign_secret = foreign.client_secret.unwrap().expose().to_owned();
    let missing = "no-such-client";
    for path in [&foreign.client_id, &missing.to_owned()] {
        let answers = [
            get(&p, &admin, &format!("/clients/{path}")).await,
            patch(&p, &admin, &format!("/clients/{path}"), json!({ "name": "taken" })).await,
            post(&p, &admin, &format!("/clients/{path}/secret"), json!(null)).await,
            delete(&p, &admin, &format!("/clients/{path}")).await,
        ];
        for (status, body) in answers {
            assert_eq!(status, 404, "{path}: {body}");
            assert_eq!(body["error"], "not_found");
            assert_eq!(body["error_description"], "no such resource", "{body}");
        }
    }
    assert!(!client_ids(&p, &admin).await.contains(&foreign.client_id));
    assert_eq!(client_credentials(&p, &foreign.client_id, &foreign_secret).await, 200, "the foreign client is intact");
    let globex = tenant_id(&p, "globex").await;
    assert!(audit_rows(&p, globex, "client.updated").await.is_empty());

    let (status, body) = delete(&p, &admin, &format!("/clients/{id}")).await;
    assert_eq!((status, body), (204, Value::Null));
    assert_eq!(get(&p, &admin, &format!("/clients/{id}")).await.0, 404);
    assert_eq!(client_credentials(&p, &id, &new_secret).await, 401, "a deleted client's secret stops");
    assert_eq!(delete(&p, &admin, &format!("/clients/{id}")).await.0, 404);

    let acme = tenant_id(&p, "acme").await;
    for action in ["client.created", "client.updated", "client.secret_rotated", "client.deleted"] {
        let rows: Vec<_> = audit_rows(&p, acme, action)
            .await
            .into_iter()
            .filter(|r| r.target_id.as_deref() == Some(id.as_str()))
            .collect();
        assert_eq!(rows.len(), 1, "{action}");
        assert_eq!((rows[0].actor_kind.as_str(), rows[0].actor_id.as_deref()), ("client", Some(actor.as_str())));
    }
}

/// No privilege escalation: an editor cannot register an admin service account, no tenant
/// caller a multi-tenant client, a viewer nothing. Malformed bodies (an unknown field, a wrong
/// type, an oversized name, too many redirect URIs) are 400. None of them registers anything.
#[tokio::test]
async fn refused_clients_leave_nothing_behind() {
    let p = Provider::start().await;
    let editor = service_token(&p, "acme", Role::Editor).await;
    let admin = service_token(&p, "acme", Role::Admin).await;
    let viewer = service_token(&p, "acme", Role::Viewer).await;
    let before = client_ids(&p, &admin).await;

    let job = |role: &str| json!({ "name": "job", "grant_types": ["client_credentials"], "role": role });
    let (status, body) = post(&p, &editor, "/clients", job("admin")).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "forbidden");
    assert!(body["error_description"].as_str().unwrap().contains("above your own"), "{body}");
    let web = json!({
        "name": "Shared portal", "grant_types": ["authorization_code"],
        "redirect_uris": ["https://portal.example/cb"], "multi_tenant": true,
    });
    for token in [&editor, &admin] {
        let (status, body) = post(&p, token, "/clients", web.clone()).await;
        assert_eq!(status, 403, "{body}");
        assert!(body["error_description"].as_str().unwrap().contains("multi-tenant"), "{body}");
    }
    assert_eq!(post(&p, &viewer, "/clients", job("viewer")).await.0, 403);

    let uris: Vec<String> = (0..21).map(|i| format!("https://rp.example/cb{i}")).collect();
    for bad in [
        json!({ "name": "job", "grant_types": ["client_credentials"], "role": "viewer", "colour": "red" }),
        json!({ "name": 5, "grant_types": ["client_credentials"], "role": "viewer" }),
        json!({ "name": "job", "grant_types": "client_credentials", "role": "viewer" }),
        json!({ "name": "job", "grant_types": ["client_credentials"], "role": "owner" }),
        json!({ "name": "x".repeat(201), "grant_types": ["client_credentials"], "role": "viewer" }),
        json!({ "name": "web", "grant_types": ["authorization_code"], "redirect_uris": uris }),
        json!({ "name": "job", "grant_types": ["implicit"] }),
    ] {
        let (status, body) = post(&p, &admin, "/clients", bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"], "invalid_request", "{body}");
    }
    assert_eq!(client_ids(&p, &admin).await, before, "nothing was registered");
    let (status, _) = patch(&p, &admin, &format!("/clients/{}", p.client_id), json!({ "name": "x".repeat(201) })).await;
    assert_eq!(status, 400);
    let (status, _) = patch(&p, &admin, &format!("/clients/{}", p.client_id), json!({ "nick": "x" })).await;
    assert_eq!(status, 400);
    assert_eq!(get(&p, &admin, &format!("/clients/{}", p.client_id)).await.1["name"], "Acme Web");

    // An editor may register up to their own role.
    assert_eq!(post(&p, &editor, "/clients", job("editor")).await.0, 201);
    let acme = tenant_id(&p, "acme").await;
    assert_eq!(audit_rows(&p, acme, "client.created").await.iter().filter(|r| r.actor_kind == "client").count(), 1);
}

/// A device approved through the device grant is listed under devices (not sessions), by
/// member too; an editor revokes it (a viewer may not; two at once revoke it once), its
/// refresh token then fails, and it is gone from the list; `device.revoked` names the editor
/// and the family.
#[tokio::test]
async fn a_device_is_listed_and_revoked() {
    let p = Provider::start().await;
    let device = crate::device::device_client(&p).await;
    let (status, codes) = crate::device::request_codes(&p, &device, "openid offline_access").await;
    assert_eq!(status, 200, "{codes}");
    let browser = Browser::new(&p);
    let page = crate::device::confirm_page(&browser, &codes, &p.email).await;
    crate::device::decide(&browser, &page, true).await;
    let (status, tokens) = crate::device::poll(&p, &device, codes["device_code"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

    let viewer = service_token(&p, "acme", Role::Viewer).await;
    let editor = service_token(&p, "acme", Role::Editor).await;
    let ann = user_id(&p, &p.email).await;
    let (status, page) = get(&p, &viewer, "/devices").await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["client_id"], device.as_str());
    assert_eq!(items[0]["client_name"], "Acme Thermostat");
    assert_eq!(items[0]["email"], "ann@example.com");
    assert_eq!(items[0]["user_id"], ann.to_string());
    let family = items[0]["family_id"].as_str().unwrap().to_owned();
    assert_eq!(get(&p, &viewer, &format!("/devices?user_id={ann}")).await.1["items"].as_array().unwrap().len(), 1);
    let nobody = Uuid::now_v7();
    assert!(get(&p, &viewer, &format!("/devices?user_id={nobody}")).await.1["items"].as_array().unwrap().is_empty());
    let (_, sessions) = get(&p, &viewer, "/sessions").await;
    assert!(!sessions.to_string().contains(&family), "a device is no session: {sessions}");
    assert_eq!(delete(&p, &editor, &format!("/sessions/{family}")).await.0, 403, "ending sessions needs admin");
    let admin = service_token(&p, "acme", Role::Admin).await;
    assert_eq!(delete(&p, &admin, &format!("/sessions/{family}")).await.0, 404, "a device is not ended as a session");
    assert_eq!(get(&p, &viewer, "/devices?user_id=not-a-uuid").await.0, 400);
    assert_eq!(get(&p, &viewer, "/devices?colour=red").await.0, 400);

    assert_eq!(delete(&p, &viewer, &format!("/devices/{family}")).await.0, 403);
    // Two revocations at once: one ends the device, the other finds nothing; one event.
    let path = format!("/devices/{family}");
    let (a, b) = tokio::join!(delete(&p, &editor, &path), delete(&p, &editor, &path));
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [204, 404]);
    assert_eq!(refresh(&p, &device, None, &refresh_token).await, 400, "the revoked device cannot refresh");
    assert!(get(&p, &viewer, "/devices").await.1["items"].as_array().unwrap().is_empty());
    assert_eq!(delete(&p, &editor, &path).await.0, 404, "once");

    let rows = audit_rows(&p, tenant_id(&p, "acme").await, "device.revoked").await;
    assert_eq!(rows.len(), 1);
    let editor_id = sub(&editor);
    rows[0].is(("client", Some(editor_id.as_str())), ("token_family", Some(family.as_str())), Some("127.0.0.1"));
    assert_eq!(rows[0].details["reason"], "device_revoked");
}

/// A sign-in through a client is a session: listed with its member and authentication, ended
/// by an admin (an editor may not), after which its refresh token fails; the end is
/// `token_family.revoked` with reason `ended_by_admin`. Pages walk with the cursor.
#[tokio::test]
async fn a_session_is_listed_and_ended() {
    let p = Provider::start().await;
    let (_, first) = crate::flow::tokens(&p).await;
    let (_, second) = crate::flow::tokens(&p).await;
    let admin = service_token(&p, "acme", Role::Admin).await;
    let editor = service_token(&p, "acme", Role::Editor).await;

    let (status, page) = get(&p, &editor, "/sessions").await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{page}");
    assert!(items.iter().all(|s| s["email"] == "ann@example.com" && s["client_name"] == "Acme Web"));
    assert!(items[0]["auth_time"].is_string(), "{page}");
    let (_, one) = get(&p, &editor, "/sessions?limit=1").await;
    let cursor = one["next_cursor"].as_str().unwrap();
    let (_, rest) = get(&p, &editor, &format!("/sessions?limit=1&cursor={cursor}")).await;
    assert!(rest["next_cursor"].is_null());
    let walked: Vec<&Value> =
        one["items"].as_array().unwrap().iter().chain(rest["items"].as_array().unwrap()).collect();
    assert_eq!(walked, items.iter().collect::<Vec<_>>(), "two pages of one are the page of two");

    let family = items[0]["family_id"].as_str().unwrap().to_owned();
    assert_eq!(delete(&p, &editor, &format!("/sessions/{family}")).await.0, 403);
    assert_eq!(delete(&p, &admin, &format!("/sessions/{family}")).await.0, 204);
    assert_eq!(delete(&p, &admin, &format!("/sessions/{family}")).await.0, 404, "once");
    let (_, after) = get(&p, &editor, "/sessions").await;
    assert_eq!(after["items"].as_array().unwrap().len(), 1);
    // Which of the two was ended: the one whose refresh now fails.
    let statuses = [
        refresh(&p, &p.client_id, Some(&p.client_secret), first["refresh_token"].as_str().unwrap()).await,
        refresh(&p, &p.client_id, Some(&p.client_secret), second["refresh_token"].as_str().unwrap()).await,
    ];
    let mut sorted = statuses;
    sorted.sort_unstable();
    assert_eq!(sorted, [200, 400], "exactly the ended session cannot refresh: {statuses:?}");

    let rows = audit_rows(&p, tenant_id(&p, "acme").await, "token_family.revoked").await;
    let admin_id = sub(&admin);
    let ended: Vec<_> = rows.iter().filter(|r| r.target_id.as_deref() == Some(family.as_str())).collect();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].actor_id.as_deref(), Some(admin_id.as_str()));
    assert_eq!(ended[0].details["reason"], "ended_by_admin");
}

/// A viewer reads the settings; an admin requires MFA (audited with the admin as actor), an
/// editor may not; malformed changes are 400 and change nothing.
#[tokio::test]
async fn settings_are_read_and_changed() {
    let p = Provider::start().await;
    let viewer = service_token(&p, "acme", Role::Viewer).await;
    let editor = service_token(&p, "acme", Role::Editor).await;
    let admin = service_token(&p, "acme", Role::Admin).await;

    let (status, settings) = get(&p, &viewer, "/settings").await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(settings["slug"], "acme");
    assert_eq!(settings["status"], "active");
    assert_eq!(settings["require_mfa"], false);

    for bad in [json!({}), json!({ "require_mfa": "yes" }), json!({ "require_mfa": true, "name": "Acme" })] {
        assert_eq!(patch(&p, &admin, "/settings", bad.clone()).await.0, 400, "{bad}");
    }
    assert_eq!(patch(&p, &viewer, "/settings", json!({ "require_mfa": true })).await.0, 403);
    assert_eq!(patch(&p, &editor, "/settings", json!({ "require_mfa": true })).await.0, 403);
    assert_eq!(get(&p, &viewer, "/settings").await.1["require_mfa"], false, "nothing changed");
    let acme = tenant_id(&p, "acme").await;
    assert!(audit_rows(&p, acme, "tenant.mfa_policy_changed").await.is_empty());

    let (status, after) = patch(&p, &admin, "/settings", json!({ "require_mfa": true })).await;
    assert_eq!((status, after["require_mfa"].clone()), (200, json!(true)), "{after}");
    assert_eq!(get(&p, &viewer, "/settings").await.1["require_mfa"], true);
    patch(&p, &admin, "/settings", json!({ "require_mfa": true })).await;
    let rows = audit_rows(&p, acme, "tenant.mfa_policy_changed").await;
    assert_eq!(rows.len(), 1, "a change that changes nothing is not recorded");
    let admin_id = sub(&admin);
    rows[0].is(("client", Some(admin_id.as_str())), ("tenant", Some(acme.to_string().as_str())), Some("127.0.0.1"));
}
