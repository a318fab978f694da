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

/// One request to the API: (status, JSON body or `null`).
async fn call(p: &Provider, method: reqwest::Method, token: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = p.http().request(method, p.url(&format!("/api/v1{path}"))).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
}

async fn get(p: &Provider, token: &str, path: &str) -> (u16, Value) {
    call(p, reqwest::Method::GET, token, path, None).await
}

async fn post(p: &Provider, token: &str, path: &str, body: Value) -> (u16, Value) {
    call(p, reqwest::Method::POST, token, path, Some(body)).await
}

async fn patch(p: &Provider, token: &str, path: &str, body: Value) -> (u16, Value) {
    call(p, reqwest::Method::PATCH, token, path, Some(body)).await
}

async fn delete(p: &Provider, token: &str, path: &str) -> (u16, Value) {
    call(p, reqwest::Method::DELETE, token, path, None).await
}

/// The `sub` (a service account's client id) of an access token.
fn sub(token: &str) -> String {
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
async fn entries(p: &Provider, token: &str, q: impl std::fmt::Display) -> Vec<Value> {
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
/// member too; an editor revokes it (a viewer may not), its refresh token then fails, and it is
/// gone from the list; `device.revoked` names the admin and the family.
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
    assert_eq!(delete(&p, &editor, &format!("/devices/{family}")).await.0, 204);
    assert_eq!(refresh(&p, &device, None, &refresh_token).await, 400, "the revoked device cannot refresh");
    assert!(get(&p, &viewer, "/devices").await.1["items"].as_array().unwrap().is_empty());
    assert_eq!(delete(&p, &editor, &format!("/devices/{family}")).await.0, 404, "once");

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

/// The audit log filtered by action (exact and prefix), actor, target and time, paged newest
/// first; exported as JSON lines in `seq` order that `audit verify --file` accepts; and
/// verified, with a head anchor `audit verify --against` accepts. After a superuser edits a
/// row, verify names it.
#[tokio::test]
async fn the_audit_log_filters_exports_and_verifies() {
    let p = Provider::start().await;
    let admin = service_token(&p, "acme", Role::Admin).await;
    let viewer = service_token(&p, "acme", Role::Viewer).await;
    let actor = sub(&admin);
    let start = chrono::Utc::now();
    let (_, created) =
        post(&p, &admin, "/clients", json!({ "name": "job", "grant_types": ["client_credentials"], "role": "viewer" }))
            .await;
    let id = created["client_id"].as_str().unwrap().to_owned();
    post(&p, &admin, &format!("/clients/{id}/secret"), json!(null)).await;
    patch(&p, &admin, "/settings", json!({ "require_mfa": true })).await;

    let by_action = entries(&p, &viewer, "action=client.secret_rotated").await;
    assert_eq!(by_action.len(), 1);
    assert_eq!(by_action[0]["target"], format!("client:{id}"));
    assert_eq!(by_action[0]["actor"], format!("client:{actor}"));
    assert_eq!(by_action[0]["hash"].as_str().unwrap().len(), 64);
    let by_prefix = entries(&p, &viewer, "action=client.*").await;
    assert!(by_prefix.iter().all(|e| e["action"].as_str().unwrap().starts_with("client.")));
    assert!(by_prefix.len() >= 3, "the seeded clients, the job and its rotation: {by_prefix:?}");
    let by_actor = entries(&p, &viewer, format!("actor=client:{actor}")).await;
    let actions: Vec<&str> = by_actor.iter().map(|e| e["action"].as_str().unwrap()).collect();
    // Its own token's issue is the admin's first act in the log.
    assert_eq!(
        actions,
        ["tenant.mfa_policy_changed", "client.secret_rotated", "client.created", "token.issued"],
        "newest first"
    );
    assert_eq!(entries(&p, &viewer, format!("actor={actor}")).await, by_actor, "an id alone");
    assert_eq!(entries(&p, &viewer, format!("target=client:{id}")).await.len(), 2);
    assert_eq!(entries(&p, &viewer, format!("target=client:{id}&action=client.created")).await.len(), 1);
    let since = start.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    assert_eq!(entries(&p, &viewer, format!("since={since}&actor=client:")).await.len(), 3);
    let before = entries(&p, &viewer, format!("until={since}&actor=client:{actor}")).await;
    assert_eq!(before.len(), 1, "only the token's issue came before: {before:?}");
    assert_eq!(get(&p, &viewer, &format!("/audit?since={since}&until={since}")).await.0, 400, "an empty window");
    assert_eq!(get(&p, &viewer, &format!("/audit?actor={}", "x".repeat(201))).await.0, 400);
    assert_eq!(get(&p, &viewer, "/audit?since=yesterday").await.0, 400);
    assert_eq!(get(&p, &viewer, "/audit?verbose=1").await.0, 400);

    // Pages of 2, newest first, cover the whole log once.
    let all = entries(&p, &viewer, "limit=200").await;
    let mut walked: Vec<i64> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor.as_ref().map_or("limit=2".to_owned(), |c| format!("limit=2&cursor={c}"));
        let (_, page) = get(&p, &viewer, &format!("/audit?{q}")).await;
        walked.extend(page["items"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(walked, all.iter().map(|e| e["seq"].as_i64().unwrap()).collect::<Vec<_>>());
    assert!(walked.windows(2).all(|w| w[0] > w[1]), "{walked:?}");

    // The export: JSON lines, oldest first, the whole chain.
    let res = p.http().get(p.url("/api/v1/audit/export")).bearer_auth(&viewer).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let text = res.text().await.unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let seqs: Vec<i64> = lines.iter().map(|l| l["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=i64::try_from(lines.len()).unwrap()).collect::<Vec<_>>());
    let res = p.http().get(p.url("/api/v1/audit/export?action=client.created")).bearer_auth(&viewer).send().await;
    let filtered = res.unwrap().text().await.unwrap();
    let created_entries = entries(&p, &viewer, "action=client.created").await;
    assert_eq!(filtered.lines().count(), created_entries.len(), "{filtered}");
    assert!(created_entries.len() >= 2, "the seeded ones and the job: {created_entries:?}");
    assert!(filtered.lines().all(|l| serde_json::from_str::<Value>(l).unwrap()["action"] == "client.created"));
    assert_eq!(get(&p, &viewer, "/audit/export?limit=5").await.0, 400);

    let (status, verdict) = get(&p, &viewer, "/audit/verify").await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["ok"], true);
    assert!(verdict["first_break"].is_null());
    let rows = usize::try_from(verdict["rows"].as_u64().unwrap()).unwrap();
    assert!(rows >= lines.len(), "{rows} rows, {} exported", lines.len());
    let anchor = verdict["head_anchor"].as_str().unwrap().to_owned();
    assert!(anchor.starts_with("acme:"), "{anchor}");

    // The command line accepts both: the export offline, the anchor against the database.
    let dir = std::env::temp_dir().join(format!("lca-export-{}", Uuid::now_v7()));
    std::fs::write(&dir, &text).unwrap();
    let out = crate::support::cli(&p.t, &["audit", "verify", "--file", dir.to_str().unwrap(), "--json"], "");
    std::fs::remove_file(&dir).unwrap();
    assert_eq!(crate::support::json_out(&out)["ok"], true);
    let out = crate::support::cli(&p.t, &["audit", "verify", "--against", &anchor, "--json"], "");
    assert_eq!(crate::support::json_out(&out)["ok"], true);

    let mut owner = p.t.owner().await;
    sqlx::raw_sql("ALTER TABLE audit_events DISABLE TRIGGER USER").execute(&mut owner).await.unwrap();
    sqlx::query("UPDATE audit_events SET details = '{\"forged\":true}' WHERE tenant_id = $1 AND seq = 2")
        .bind(tenant_id(&p, "acme").await)
        .execute(&mut owner)
        .await
        .unwrap();
    sqlx::raw_sql("ALTER TABLE audit_events ENABLE TRIGGER USER").execute(&mut owner).await.unwrap();
    let (_, verdict) = get(&p, &viewer, "/audit/verify").await;
    assert_eq!(verdict["ok"], false, "{verdict}");
    assert_eq!(verdict["first_break"]["seq"], 2, "{verdict}");
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
