//! The lost-response grace window of refresh rotation (`client … --refresh-grace-secs`): within
//! it, the refresh token just used may be presented again and returns the pair its use issued;
//! after it, once the successor has been used, or for an older token, presenting it is reuse
//! and ends the family (ARCHITECTURE.md, "Tokens").

use futures::future::join_all;
use laventecare_auth::clients::{self, change::ClientUpdate};
use laventecare_auth::db::audit::Actor;
use laventecare_auth::service_error::ServiceError;
use serde_json::Value;

use crate::flow::{Provider, claims, tokens};

/// The seeded client with a grace window of `secs`, and a fresh grant's refresh token.
async fn provider_with_grace(secs: u32, max_connections: &str) -> (Provider, String) {
    let p = Provider::start_with(&[("LCA_DB_MAX_CONNECTIONS", max_connections)]).await;
    let update = ClientUpdate { client_id: p.client_id.clone(), refresh_grace_secs: Some(secs), ..Default::default() };
    let updated = clients::change::update_client(&p.t.db, &Actor::operator("test"), update).await.unwrap();
    assert_eq!(updated.refresh_grace_secs, i32::try_from(secs).unwrap());
    let (_, body) = tokens(&p).await;
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    (p, refresh)
}

async fn refresh(p: &Provider, token: &str) -> (u16, Value) {
    p.token(&[("grant_type", "refresh_token"), ("refresh_token", token)]).await
}

async fn count(p: &Provider, sql: &'static str) -> i64 {
    let mut owner = p.t.owner().await;
    sqlx::query_scalar(sql).fetch_one(&mut owner).await.unwrap()
}

async fn actions(p: &Provider, action: &str) -> i64 {
    let mut owner = p.t.owner().await;
    sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = $1")
        .bind(action)
        .fetch_one(&mut owner)
        .await
        .unwrap()
}

/// A retry inside the window gets the same successor pair (and writes `refresh_token.retried`);
/// the successor then rotates as usual; presenting the first token a third time, after its
/// successor was used, is reuse: the family ends.
#[tokio::test]
async fn a_retry_inside_the_window_returns_the_same_successor_and_a_third_presentation_ends_the_family() {
    let (p, first) = provider_with_grace(60, "10").await;
    let (status, rotated) = refresh(&p, &first).await;
    assert_eq!(status, 200, "{rotated}");
    let successor = rotated["refresh_token"].as_str().unwrap().to_owned();

    // The reply was lost: the client presents the same token again.
    let (status, retried) = refresh(&p, &first).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["refresh_token"], rotated["refresh_token"]);
    assert_eq!(retried["access_token"], rotated["access_token"]);
    assert_eq!(retried["id_token"], rotated["id_token"]);
    assert!(retried["expires_in"].as_u64().unwrap() <= rotated["expires_in"].as_u64().unwrap());
    assert_eq!(actions(&p, "refresh_token.retried").await, 1);
    assert_eq!(count(&p, "SELECT count(*) FROM refresh_tokens").await, 2, "the retry issued nothing");

    // The pair is kept sealed: the row holds neither token in the clear.
    let mut owner = p.t.owner().await;
    let sealed: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT successor_sealed FROM refresh_tokens WHERE successor_sealed IS NOT NULL")
            .fetch_all(&mut owner)
            .await
            .unwrap();
    assert_eq!(sealed.len(), 1);
    let window = |needle: &str| sealed[0].windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(!window(&successor) && !window(rotated["access_token"].as_str().unwrap()));

    // The successor works (the client got it after all) …
    let (status, next) = refresh(&p, &successor).await;
    assert_eq!(status, 200, "{next}");
    let next_refresh = next["refresh_token"].as_str().unwrap().to_owned();
    // … and from then on the first token is reuse: the family ends, what it issued with it.
    let (status, third) = refresh(&p, &first).await;
    assert_eq!((status, third["error"].as_str()), (400, Some("invalid_grant")));
    assert!(!p.introspect(&next_refresh).await);
    assert!(!p.introspect(next["access_token"].as_str().unwrap()).await);
    assert_eq!(actions(&p, "refresh_token.reuse_detected").await, 1);
    assert_eq!(refresh(&p, &next_refresh).await.0, 400);
}

/// After the window a retry is reuse: the family ends and the replay is audited.
#[tokio::test]
async fn a_retry_after_the_window_ends_the_family() {
    let (p, first) = provider_with_grace(30, "10").await;
    let (status, rotated) = refresh(&p, &first).await;
    assert_eq!(status, 200);
    let successor = rotated["refresh_token"].as_str().unwrap();
    // 31 seconds later, without waiting for them.
    let mut owner = p.t.owner().await;
    sqlx::query("UPDATE refresh_tokens SET used_at = used_at - interval '31 seconds' WHERE used_at IS NOT NULL")
        .execute(&mut owner)
        .await
        .unwrap();
    let (status, late) = refresh(&p, &first).await;
    assert_eq!((status, late["error"].as_str()), (400, Some("invalid_grant")));
    assert!(!p.introspect(successor).await, "the successor ended with its family");
    assert_eq!(actions(&p, "refresh_token.reuse_detected").await, 1);
    assert_eq!(actions(&p, "refresh_token.retried").await, 0);
}

/// A token two rotations old is reuse, even inside the window: only the token just used may be
/// presented again.
#[tokio::test]
async fn an_older_token_inside_the_window_ends_the_family() {
    let (p, first) = provider_with_grace(120, "10").await;
    let (_, second) = refresh(&p, &first).await;
    let second = second["refresh_token"].as_str().unwrap().to_owned();
    let (status, third) = refresh(&p, &second).await;
    assert_eq!(status, 200);
    let (status, old) = refresh(&p, &first).await;
    assert_eq!((status, old["error"].as_str()), (400, Some("invalid_grant")));
    assert!(!p.introspect(third["refresh_token"].as_str().unwrap()).await);
}

/// 20 concurrent presentations of one token inside the window: one rotates, the other 19 wait
/// for it and get the same pair; nothing else is issued (one new refresh token, one new access
/// token), and the family stays live.
#[tokio::test]
async fn twenty_concurrent_retries_get_the_same_successor_and_nothing_else_is_issued() {
    let (p, first) = provider_with_grace(60, "30").await;
    let tokens_before = count(&p, "SELECT count(*) FROM access_tokens").await;
    let results = join_all((0..20).map(|_| refresh(&p, &first))).await;
    assert!(results.iter().all(|(s, _)| *s == 200), "{results:?}");
    let pair = |b: &Value| (b["refresh_token"].clone(), b["access_token"].clone());
    assert!(results.iter().all(|(_, b)| pair(b) == pair(&results[0].1)), "{results:?}");
    assert_eq!(count(&p, "SELECT count(*) FROM refresh_tokens").await, 2);
    assert_eq!(count(&p, "SELECT count(*) FROM access_tokens").await, tokens_before + 1);
    assert_eq!(count(&p, "SELECT count(*) FROM token_families WHERE revoked_at IS NOT NULL").await, 0);
    assert_eq!(actions(&p, "refresh_token.retried").await, 19);
    let successor = results[0].1["refresh_token"].as_str().unwrap();
    assert!(p.introspect(successor).await);
    assert_eq!(claims(results[0].1["access_token"].as_str().unwrap())["client_id"], p.client_id.as_str());
}

/// Without a window (the default) the same 20 have one winner and end the family, as before.
#[tokio::test]
async fn without_a_window_concurrent_presentations_are_reuse() {
    let (p, first) = provider_with_grace(0, "30").await;
    let results = join_all((0..20).map(|_| refresh(&p, &first))).await;
    assert_eq!(results.iter().filter(|(s, _)| *s == 200).count(), 1, "{results:?}");
    assert_eq!(count(&p, "SELECT count(*) FROM token_families WHERE revoked_at IS NOT NULL").await, 1);
}

/// The window is bounded, and only for clients that refresh.
#[tokio::test]
async fn the_window_is_bounded_and_only_for_refreshing_clients() {
    let p = Provider::start().await;
    let request = |grants: Vec<String>, secs| clients::ClientRequest {
        tenant: "acme".into(),
        name: "Thermostat".into(),
        grants,
        public: true,
        refresh_grace_secs: secs,
        ..Default::default()
    };
    let device = || vec!["device_code".to_owned(), "refresh_token".to_owned()];
    let too_long = clients::create_client(&p.t.db, request(device(), 301)).await;
    assert!(matches!(too_long, Err(ServiceError::Invalid(m)) if m.contains("at most 300")));
    let no_refresh = clients::create_client(&p.t.db, request(vec!["device_code".into()], 60)).await;
    assert!(matches!(no_refresh, Err(ServiceError::Invalid(m)) if m.contains("refresh_token grant")));
    let created = clients::create_client(&p.t.db, request(device(), 120)).await.unwrap();
    assert_eq!(created.refresh_grace_secs, 120);
    let mut owner = p.t.owner().await;
    let err = sqlx::query("UPDATE clients SET refresh_grace_secs = 301").execute(&mut owner).await.unwrap_err();
    assert!(err.to_string().contains("clients_refresh_grace_bounded"), "{err}");
}
