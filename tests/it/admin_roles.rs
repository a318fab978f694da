//! Must-show 2 (the API's half) and 5's rule: each role × each operation of the OpenAPI
//! document gets what the permission table (`laventecare_auth::admin::Action`) says, a tenant's
//! members get a 404 like an unknown route's on every platform route, and the role is read
//! from the membership at every request (ARCHITECTURE.md, "Admin surface").

use laventecare_auth::admin::{Action, Need};
use laventecare_auth::db::audit::Actor;
use laventecare_auth::vocabulary::Role;
use laventecare_auth::{clients, identity, tenancy};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::admin_world::{Ids, Op, Org, World, operations, send};
use crate::flow::{PASSWORD, Provider, REDIRECT, Step, claims, pkce, totp_code};

/// Who acts: the three roles of A, and the platform's admin (acting for the platform tenant).
const CALLERS: [(Role, bool); 4] =
    [(Role::Viewer, false), (Role::Editor, false), (Role::Admin, false), (Role::Admin, true)];

/// The operation's action, from its `x-permission`; none or an unknown word fails the test.
fn action_of(op: &crate::admin_world::Op) -> Action {
    let word = op.permission.as_deref().unwrap_or_else(|| panic!("{}: no x-permission", op.name()));
    Action::from_word(word).unwrap_or_else(|| panic!("{}: x-permission {word:?} is not in the table", op.name()))
}

/// Fresh ids of `own`'s for one attempt of an operation: only what `op` needs is made.
pub async fn fresh_ids(own: &Org, p: &Provider, op: &Op) -> Ids {
    let tag = &Uuid::now_v7().simple().to_string()[20..];
    let mut ids = Ids {
        user_id: Uuid::nil(),
        client_id: String::new(),
        session_family: Uuid::nil(),
        device_family: Uuid::nil(),
        slug: String::new(),
        email: format!("new-{tag}@{}.example", own.slug),
        invitation: Uuid::nil(),
        resource_server: Uuid::nil(),
    };
    for name in &op.path_params {
        match name.as_str() {
            "user_id" => ids.user_id = own.fresh_member(p, Role::Viewer).await.0,
            "client_id" => ids.client_id = own.fresh_client(p).await,
            "family_id" if op.path.contains("/devices/") => ids.device_family = own.fresh_device_family(p).await,
            "family_id" => ids.session_family = own.fresh_session_family(p).await,
            "invitation_id" => ids.invitation = own.fresh_invitation(p).await,
            "resource_server_id" => ids.resource_server = own.fresh_resource_server(p).await,
            // A tenant of its own for each platform action (suspend, appoint…).
            "slug" => {
                ids.slug = format!("fresh-{tag}");
                tenancy::create_tenant(&p.t.db, &ids.slug, "Fresh", false).await.unwrap();
            }
            _ => {}
        }
    }
    if op.path_params.is_empty() {
        ids.slug = format!("new-{tag}");
    }
    ids
}

/// Each role × each operation: a valid request on the caller's own objects (made fresh for
/// every attempt) is answered as `Action::allowed` says: 2xx, else 403 `forbidden` (a tenant
/// action) or 404 (a platform action).
#[tokio::test]
async fn each_role_gets_what_the_table_says() {
    let w = World::build().await;
    let mut seen = 0;
    for op in operations() {
        let action = action_of(&op);
        // A write never names a read permission (a mislabelled route would hand writes to
        // viewers with the document's blessing); a read names one, or the platform's.
        let reads = action.as_str().ends_with(".read");
        if op.method == reqwest::Method::GET {
            assert!(
                reads || action.need() == Need::PlatformAdmin,
                "{}: a GET that needs {}",
                op.name(),
                action.as_str()
            );
        } else {
            assert!(!reads, "{}: a write that needs only {}", op.name(), action.as_str());
        }
        for (role, platform_admin) in CALLERS {
            let own = if platform_admin { &w.platform } else { &w.a };
            let ids = fresh_ids(own, &w.p, &op).await;
            let answer = send(&w.p, w.token(role, platform_admin), &op, &ids).await.unwrap_or_else(|e| panic!("{e}"));
            let who = if platform_admin { "platform admin".to_owned() } else { format!("{role} of A") };
            let route = op.name();
            if action.allowed(role, platform_admin) {
                assert!((200..300).contains(&answer.status), "{route} as {who}: {} {}", answer.status, answer.text);
            } else if action.need() == Need::PlatformAdmin {
                assert_eq!(answer.status, 404, "{route} as {who}: {}", answer.text);
            } else {
                assert_eq!(answer.status, 403, "{route} as {who}: {}", answer.text);
                assert_eq!(answer.json["error"], "forbidden", "{route} as {who}");
            }
            seen += 1;
        }
    }
    assert!(seen >= 32, "too few attempts ({seen})");
}

/// Must-show 5's rule: every platform route answers a tenant's admin, editor and viewer with
/// a 404 whose body is an unknown route's (but its request id), never a 403.
#[tokio::test]
async fn platform_routes_do_not_exist_for_a_tenant() {
    let w = World::build().await;
    let unknown =
        w.p.http().get(w.p.url("/api/v1/platform/no-such-route")).bearer_auth(&w.a.admin).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    let mut unknown: Value = unknown.json().await.unwrap();
    unknown.as_object_mut().unwrap().remove("request_id");
    let platform_ops: Vec<_> =
        operations().into_iter().filter(|op| action_of(op).need() == Need::PlatformAdmin).collect();
    assert!(!platform_ops.is_empty(), "the document has no platform operations");
    for op in &platform_ops {
        assert!(op.path.starts_with("/api/v1/platform"), "{}: a platform action outside /platform", op.name());
        for (token, who) in [(&w.a.admin, "admin"), (&w.a.editor, "editor"), (&w.a.viewer, "viewer")] {
            let ids = fresh_ids(&w.a, &w.p, op).await;
            let answer = send(&w.p, token, op, &ids).await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(answer.status, 404, "{} as {who} of A: {}", op.name(), answer.text);
            let mut body = answer.json.clone();
            body.as_object_mut().unwrap().remove("request_id");
            assert_eq!(body, unknown, "{} as {who} of A: not an unknown route's body", op.name());
        }
    }
}

/// A person's access token for the admin API: the code grant through a client registered for
/// the `admin` scope, signed in with password and TOTP.
async fn user_admin_token(p: &Provider, email: &str) -> String {
    let client = clients::create_client(
        &p.t.db,
        clients::ClientRequest {
            tenant: "acme".into(),
            name: "Acme console".into(),
            grants: vec!["authorization_code".into()],
            redirect_uris: vec![REDIRECT.into()],
            admin_api: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let secret = client.client_secret.unwrap().expose().to_owned();
    let (b, totp, _) = crate::mfa::enrolled(p, email, PASSWORD).await;
    let (verifier, challenge) = pkce();
    let mut url = url::Url::parse(&p.url("/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", "openid admin"),
        ("state", "st"),
        ("nonce", "n"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let mut step: Step = b.open(url.as_str()).await;
    if step.html_opt().is_some_and(|h| h.contains("action=\"/login\"")) {
        step = b.login(&step, email, PASSWORD).await;
    }
    if step.html_opt().is_some_and(|h| h.contains("action=\"/login/mfa\"")) {
        step = b.second_factor(&step, &totp_code(&totp, 1)).await;
    }
    if step.html_opt().is_some_and(|h| h.contains("action=\"/consent\"")) {
        step = b.consent(&step, true).await;
    }
    let code = step.param("code").unwrap();
    let res = p
        .http()
        .post(p.url("/token"))
        .basic_auth(&client.client_id, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let at = tokens["access_token"].as_str().unwrap().to_owned();
    assert!(claims(&at)["scope"].as_str().unwrap().split(' ').any(|s| s == "admin"), "{}", claims(&at));
    at
}

/// The role comes from the membership now, not from the token: an admin's token works; once
/// the admin is demoted the same token is refused the next write (403), once removed it is
/// refused outright (401).
#[tokio::test]
async fn the_role_is_the_membership_now() {
    let p = Provider::start().await;
    let root = "root@acme.example";
    identity::create_user(&p.t.db, &identity::PasswordHasher::new(), root, PASSWORD).await.unwrap();
    tenancy::add_member(&p.t.db, "acme", root, Role::Admin).await.unwrap();
    // A second admin, so that root is not the last (the last admin cannot be demoted).
    let actor = Actor::operator("test");
    identity::create_user(&p.t.db, &identity::PasswordHasher::new(), "other@acme.example", PASSWORD).await.unwrap();
    tenancy::add_member(&p.t.db, "acme", "other@acme.example", Role::Admin).await.unwrap();
    let token = user_admin_token(&p, root).await;
    let http = p.http();
    let add = |email: &str| {
        http.post(p.url("/api/v1/members"))
            .bearer_auth(&token)
            .json(&json!({ "email": email, "role": "viewer" }))
            .send()
    };
    assert_eq!(http.get(p.url("/api/v1/members")).bearer_auth(&token).send().await.unwrap().status(), 200);
    assert_eq!(add("first@acme.example").await.unwrap().status(), 201, "an admin adds a member");

    tenancy::set_role(&p.t.db, &actor, "acme", root, Role::Viewer).await.unwrap();
    let res = add("second@acme.example").await.unwrap();
    assert_eq!(res.status(), 403, "the same token after the demotion");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "forbidden");
    assert_eq!(
        http.get(p.url("/api/v1/members")).bearer_auth(&token).send().await.unwrap().status(),
        200,
        "a viewer reads"
    );

    tenancy::remove_member(&p.t.db, &actor, "acme", root).await.unwrap();
    let res = http.get(p.url("/api/v1/members")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 401, "the same token after the removal");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
}
