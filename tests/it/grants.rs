//! Codes and refresh tokens are single use: replays fail and end what the first use issued,
//! and concurrent use has exactly one winner.

use futures::future::join_all;

use crate::flow::{Browser, PASSWORD, Provider, REDIRECT, authorize_url, pkce, tokens};

async fn audit_actions(p: &Provider) -> Vec<String> {
    let mut owner = p.t.owner().await;
    sqlx::query_scalar("SELECT action FROM audit_events ORDER BY tenant_id, seq").fetch_all(&mut owner).await.unwrap()
}

/// A code from the pages, with its verifier.
async fn code(p: &Provider) -> (String, String) {
    let browser = Browser::new(p);
    let (verifier, challenge) = pkce();
    let step = browser.sign_in_through(&authorize_url(p, &challenge, &[]), &p.email, PASSWORD).await;
    (step.param("code").unwrap(), verifier)
}

/// Redeeming a code twice: the second gets invalid_grant, and the tokens of the first stop
/// working (introspection inactive, refresh refused).
#[tokio::test]
async fn code_reuse_revokes_what_the_first_redemption_issued() {
    let p = Provider::start().await;
    let (code, verifier) = code(&p).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", &verifier),
    ];
    let (status, first) = p.token(&form).await;
    assert_eq!(status, 200);
    let access = first["access_token"].as_str().unwrap();
    let refresh = first["refresh_token"].as_str().unwrap();
    assert!(p.introspect(access).await);

    let (status, second) = p.token(&form).await;
    assert_eq!(status, 400);
    assert_eq!(second["error"], "invalid_grant");
    assert!(!p.introspect(access).await, "the first redemption's access token is revoked");
    assert!(!p.introspect(refresh).await);
    let (status, refreshed) = p.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!((status, refreshed["error"].as_str()), (400, Some("invalid_grant")));
    assert!(audit_actions(&p).await.contains(&"code.reuse_detected".to_owned()));
}

/// 50 concurrent redemptions of one code: exactly one succeeds.
#[tokio::test]
async fn fifty_concurrent_code_redemptions_one_winner() {
    let p = Provider::start_with(&[("LCA_DB_MAX_CONNECTIONS", "50")]).await;
    let (code, verifier) = code(&p).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    let attempts = (0..50).map(|_| p.token(&form));
    let results = join_all(attempts).await;
    let wins = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(wins, 1, "{results:?}");
    assert!(results.iter().filter(|(s, _)| *s != 200).all(|(s, b)| *s == 400 && b["error"] == "invalid_grant"));
}

/// 50 concurrent refreshes of one token: exactly one succeeds, and the family ends (the
/// other 49 are reuse).
#[tokio::test]
async fn fifty_concurrent_refreshes_one_winner_and_the_family_ends() {
    let p = Provider::start_with(&[("LCA_DB_MAX_CONNECTIONS", "50")]).await;
    let (_, body) = tokens(&p).await;
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
    let results = join_all((0..50).map(|_| p.token(&form))).await;
    let winners: Vec<&serde_json::Value> = results.iter().filter(|(s, _)| *s == 200).map(|(_, b)| b).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let new_refresh = winners[0]["refresh_token"].as_str().unwrap();
    assert!(!p.introspect(new_refresh).await, "reuse ended the family, the winner's token included");
    let (status, _) = p.token(&[("grant_type", "refresh_token"), ("refresh_token", new_refresh)]).await;
    assert_eq!(status, 400);
}

/// Presenting a rotated refresh token revokes the family and writes an audit row.
#[tokio::test]
async fn refresh_reuse_revokes_the_family_and_is_audited() {
    let p = Provider::start().await;
    let (_, body) = tokens(&p).await;
    let first = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, second) = p.token(&[("grant_type", "refresh_token"), ("refresh_token", &first)]).await;
    assert_eq!(status, 200);
    let second_rt = second["refresh_token"].as_str().unwrap();
    let second_at = second["access_token"].as_str().unwrap();
    assert!(p.introspect(second_at).await);

    // The thief (or a confused client) replays the first token.
    let (status, replay) = p.token(&[("grant_type", "refresh_token"), ("refresh_token", &first)]).await;
    assert_eq!((status, replay["error"].as_str()), (400, Some("invalid_grant")));
    assert!(!p.introspect(second_rt).await);
    assert!(!p.introspect(second_at).await);

    let mut owner = p.t.owner().await;
    let (actor, target_kind, reason): (Option<String>, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT a.actor_id, a.target_kind, f.revoked_reason FROM audit_events a \
         JOIN token_families f ON f.family_id::text = a.target_id \
         WHERE a.action = 'refresh_token.reuse_detected'",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert_eq!(actor.as_deref(), Some(p.client_id.as_str()));
    assert_eq!(target_kind.as_deref(), Some("token_family"));
    assert_eq!(reason.as_deref(), Some("refresh_reuse"));
}

/// A refresh token presented by another client is invalid_grant, and stays usable by its own.
#[tokio::test]
async fn refresh_token_of_another_client_is_refused() {
    let p = Provider::start().await;
    let (_, body) = tokens(&p).await;
    let rt = body["refresh_token"].as_str().unwrap();
    let other = p
        .client(laventecare_auth::clients::ClientRequest {
            name: "Other".into(),
            grants: vec!["authorization_code".into(), "refresh_token".into()],
            redirect_uris: vec![REDIRECT.into()],
            ..Default::default()
        })
        .await;
    let res = p
        .http()
        .post(p.url("/token"))
        .basic_auth(&other.client_id, Some(other.client_secret.as_ref().unwrap().expose()))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"], "invalid_grant");
    let (status, _) = p.token(&[("grant_type", "refresh_token"), ("refresh_token", rt)]).await;
    assert_eq!(status, 200, "the owner's token was not burnt");
}

/// A client without the refresh grant: a replayed code still ends the access token the first
/// redemption issued.
#[tokio::test]
async fn code_reuse_revokes_even_without_refresh_tokens() {
    let p = Provider::start().await;
    let plain = p
        .client(laventecare_auth::clients::ClientRequest {
            name: "No refresh".into(),
            grants: vec!["authorization_code".into()],
            redirect_uris: vec![REDIRECT.into()],
            ..Default::default()
        })
        .await;
    let secret = plain.client_secret.as_ref().unwrap().expose().to_owned();
    let browser = Browser::new(&p);
    let (verifier, challenge) = pkce();
    let url = authorize_url(&p, &challenge, &[]).replace(&p.client_id, &plain.client_id);
    let step = browser.sign_in_through(&url, &p.email, PASSWORD).await;
    let code = step.param("code").unwrap();
    let redeem = || async {
        let res = p
            .http()
            .post(p.url("/token"))
            .basic_auth(&plain.client_id, Some(&secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier.as_str()),
            ])
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json::<serde_json::Value>().await.unwrap())
    };
    let (status, first) = redeem().await;
    assert_eq!(status, 200);
    assert!(first.get("refresh_token").is_none());
    let at = first["access_token"].as_str().unwrap();
    let info = p.http().get(p.url("/userinfo")).bearer_auth(at).send().await.unwrap();
    assert_eq!(info.status(), 200);
    let (status, _) = redeem().await;
    assert_eq!(status, 400);
    let info = p.http().get(p.url("/userinfo")).bearer_auth(at).send().await.unwrap();
    assert_eq!(info.status(), 401, "the replay ended the first access token");
}
