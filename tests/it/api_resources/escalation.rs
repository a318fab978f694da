//! No privilege escalation through clients: an editor may manage clients, but not one that can
//! do more than an editor — an admin service account, or a client of the admin API.

use laventecare_auth::vocabulary::Role;
use serde_json::json;

use super::{delete, get, patch, post, sub};
use crate::api::service_token;
use crate::flow::Provider;

/// An editor can neither register, nor rename, re-point, rotate the secret of or delete an
/// admin service account or an admin-API client; an admin can; nothing changes on refusal.
#[tokio::test]
async fn an_editor_cannot_reach_a_client_stronger_than_them() {
    let p = Provider::start().await;
    let admin = service_token(&p, "acme", Role::Admin).await;
    let editor = service_token(&p, "acme", Role::Editor).await;
    let admin_account = sub(&admin);
    let (status, admin_api) = post(
        &p,
        &admin,
        "/clients",
        json!({ "name": "Console", "grant_types": ["authorization_code"], "redirect_uris": ["https://console.example/cb"],
                "admin_api": true }),
    )
    .await;
    assert_eq!(status, 201, "{admin_api}");
    let admin_api = admin_api["client_id"].as_str().unwrap().to_owned();

    let (status, body) = post(
        &p,
        &editor,
        "/clients",
        json!({ "name": "Mine", "grant_types": ["authorization_code"], "redirect_uris": ["https://evil.example/cb"],
                "admin_api": true }),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")), "{body}");

    for id in [&admin_account, &admin_api] {
        let (before_status, before) = get(&p, &admin, &format!("/clients/{id}")).await;
        assert_eq!(before_status, 200);
        let refused = [
            patch(&p, &editor, &format!("/clients/{id}"), json!({ "name": "Taken" })).await,
            patch(&p, &editor, &format!("/clients/{id}"), json!({ "redirect_uris": ["https://evil.example/cb"] })).await,
            post(&p, &editor, &format!("/clients/{id}/secret"), json!({})).await,
            delete(&p, &editor, &format!("/clients/{id}")).await,
        ];
        for (status, body) in refused {
            assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")), "{id}: {body}");
        }
        assert_eq!(get(&p, &admin, &format!("/clients/{id}")).await.1, before, "nothing changed");
    }
    // An editor's own kind of client is theirs to manage; an admin reaches every client.
    let (status, mine) = post(
        &p,
        &editor,
        "/clients",
        json!({ "name": "Job", "grant_types": ["client_credentials"], "role": "editor" }),
    )
    .await;
    assert_eq!(status, 201, "{mine}");
    let mine = mine["client_id"].as_str().unwrap();
    assert_eq!(delete(&p, &editor, &format!("/clients/{mine}")).await.0, 204);
    assert_eq!(patch(&p, &admin, &format!("/clients/{admin_api}"), json!({ "name": "Console 2" })).await.0, 200);
}
