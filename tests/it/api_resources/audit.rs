//! The admin API's audit log: filters, pages, the export and the chain's verdict.

use serde_json::{Value, json};
use uuid::Uuid;

use super::{entries, get, patch, post, sub};
use crate::api::service_token;
use crate::flow::Provider;
use crate::mfa::tenant_id;
use laventecare_auth::vocabulary::Role;

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
