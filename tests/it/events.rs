//! Every event of the catalogue (README, "Audit events") is produced here and its row
//! asserted: action, outcome, actor, target, tenant and IP (none for the CLI, the loopback
//! address for HTTP). And what the admin actions must do besides: a suspended tenant gets no
//! tokens, a removed member or a deleted client keeps none.

use laventecare_auth::db::audit::Actor;
use laventecare_auth::{bootstrap, clients, tenancy};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::flow::{Browser, PASSWORD, POST_LOGOUT, Provider, REDIRECT, authorize_url, pkce, tokens};
use crate::support::{TestDb, binary, json_out, run_with_stdin, test_config};

/// One audit row, as asserted.
#[derive(Debug, sqlx::FromRow)]
struct Row {
    tenant_id: Uuid,
    actor_kind: String,
    actor_id: Option<String>,
    target_kind: Option<String>,
    target_id: Option<String>,
    outcome: String,
    ip: Option<String>,
    details: serde_json::Value,
}

/// The latest row with `action` (as the owner, who sees every tenant).
async fn latest(conn: &mut PgConnection, action: &str) -> Row {
    sqlx::query_as(
        "SELECT tenant_id, actor_kind, actor_id, target_kind, target_id, outcome, host(ip) AS ip, details \
         FROM audit_events WHERE action = $1 ORDER BY occurred_at DESC, seq DESC LIMIT 1",
    )
    .bind(action)
    .fetch_optional(conn)
    .await
    .unwrap()
    .unwrap_or_else(|| panic!("no {action} row"))
}

impl Row {
    /// Asserts the who, what and where of the row.
    #[track_caller]
    fn is(
        &self,
        tenant: Uuid,
        outcome: &str,
        actor: (&str, Option<&str>),
        target: (&str, Option<&str>),
        ip: Option<&str>,
    ) {
        assert_eq!(self.tenant_id, tenant, "tenant of {self:?}");
        assert_eq!(self.outcome, outcome, "{self:?}");
        assert_eq!((self.actor_kind.as_str(), self.actor_id.as_deref()), actor, "actor of {self:?}");
        assert_eq!((self.target_kind.as_deref(), self.target_id.as_deref()), (Some(target.0), target.1), "{self:?}");
        assert_eq!(self.ip.as_deref(), ip, "ip of {self:?}");
    }
}

const OPERATOR: &str = "ops-tester";

/// A CLI command run by the OS user `ops-tester`.
fn operator_cli(t: &TestDb, args: &[&str], stdin: &str) -> serde_json::Value {
    let mut cmd = binary();
    t.database_env(&mut cmd).env("USER", OPERATOR).args(args).arg("--json");
    json_out(&run_with_stdin(cmd, stdin))
}

fn s(v: &serde_json::Value) -> String {
    v.as_str().unwrap().to_owned()
}

/// Each provisioning and admin command writes its event in the affected tenant's chain (keys
/// in the platform tenant's), with the operator as actor and no IP; the chains verify.
#[tokio::test]
async fn operator_commands_are_audited() {
    let t = TestDb::new().await;
    let config = test_config(&[("LCA_ADMIN_PASSWORD", "platform admin password")]);
    let hasher = laventecare_auth::identity::PasswordHasher::new();
    let platform = bootstrap::run(&t.db, &hasher, &config).await.unwrap().unwrap().tenant_id;
    let mut db = t.owner().await;
    let system = ("system", None);
    let admin: Uuid = sqlx::query_scalar("SELECT id FROM users").fetch_one(&mut db).await.unwrap();
    let pid = platform.to_string();
    latest(&mut db, "tenant.created").await.is(platform, "success", system, ("tenant", Some(&pid)), None);
    let admin_id = admin.to_string();
    latest(&mut db, "membership.added").await.is(platform, "success", system, ("user", Some(&admin_id)), None);

    let op = ("operator", Some(OPERATOR));
    let v = operator_cli(&t, &["tenant", "create", "--slug", "acme", "--name", "Acme"], "");
    let acme: Uuid = s(&v["tenant_id"]).parse().unwrap();
    let acme_id = acme.to_string();
    let row = latest(&mut db, "tenant.created").await;
    row.is(acme, "success", op, ("tenant", Some(&acme_id)), None);
    assert_eq!(row.details["slug"], "acme");

    let v =
        operator_cli(&t, &["user", "create", "--email", "ann@example.com", "--password-stdin"], "a long password!\n");
    let ann = s(&v["user_id"]);
    operator_cli(&t, &["member", "add", "--tenant", "acme", "--email", "ann@example.com", "--role", "viewer"], "");
    let row = latest(&mut db, "membership.added").await;
    row.is(acme, "success", op, ("user", Some(&ann)), None);
    assert_eq!(row.details["role"], "viewer");

    let v = operator_cli(
        &t,
        &["member", "set-role", "--tenant", "acme", "--email", "ann@example.com", "--role", "admin"],
        "",
    );
    assert_eq!(v["previous_role"], "viewer");
    let row = latest(&mut db, "membership.role_changed").await;
    row.is(acme, "success", op, ("user", Some(&ann)), None);
    assert_eq!((row.details["from"].as_str(), row.details["to"].as_str()), (Some("viewer"), Some("admin")));

    let v = operator_cli(
        &t,
        &[
            "client",
            "create",
            "--tenant",
            "acme",
            "--name",
            "Web",
            "--grant",
            "authorization_code",
            "refresh_token",
            "--redirect-uri",
            REDIRECT,
        ],
        "",
    );
    let client = s(&v["client_id"]);
    let row = latest(&mut db, "client.created").await;
    row.is(acme, "success", op, ("client", Some(&client)), None);
    assert_eq!(row.details["name"], "Web");
    assert!(!row.details.to_string().contains(&s(&v["client_secret"])), "no secret in the log");

    let v = operator_cli(
        &t,
        &["client", "update", "--client-id", &client, "--name", "Web 2", "--post-logout-redirect-uri", POST_LOGOUT],
        "",
    );
    assert_eq!(v["name"], "Web 2");
    assert_eq!(v["post_logout_redirect_uris"], serde_json::json!([POST_LOGOUT]));
    assert_eq!(v["redirect_uris"], serde_json::json!([REDIRECT]), "lists not given stay");
    let row = latest(&mut db, "client.updated").await;
    row.is(acme, "success", op, ("client", Some(&client)), None);
    assert_eq!(row.details["name"], serde_json::json!({ "from": "Web", "to": "Web 2" }));

    let v = operator_cli(&t, &["client", "rotate-secret", "--client-id", &client], "");
    let secret = s(&v["client_secret"]);
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret_hash FROM clients").fetch_one(&mut db).await.unwrap();
    assert_eq!(stored, laventecare_auth::secrets::sha256(secret.as_bytes()).to_vec());
    let row = latest(&mut db, "client.secret_rotated").await;
    row.is(acme, "success", op, ("client", Some(&client)), None);
    assert!(!row.details.to_string().contains(&secret));

    let v = operator_cli(&t, &["tenant", "suspend", "--slug", "acme"], "");
    assert_eq!((v["status"].as_str(), v["changed"].as_bool()), (Some("suspended"), Some(true)));
    latest(&mut db, "tenant.suspended").await.is(acme, "success", op, ("tenant", Some(&acme_id)), None);
    let v = operator_cli(&t, &["tenant", "suspend", "--slug", "acme"], "");
    assert_eq!(v["changed"], false, "suspending twice changes nothing");
    operator_cli(&t, &["tenant", "reactivate", "--slug", "acme"], "");
    latest(&mut db, "tenant.reactivated").await.is(acme, "success", op, ("tenant", Some(&acme_id)), None);

    operator_cli(&t, &["member", "remove", "--tenant", "acme", "--email", "ann@example.com"], "");
    let row = latest(&mut db, "membership.removed").await;
    row.is(acme, "success", op, ("user", Some(&ann)), None);
    assert_eq!(row.details["role"], "admin");

    operator_cli(&t, &["client", "delete", "--client-id", &client], "");
    latest(&mut db, "client.deleted").await.is(acme, "success", op, ("client", Some(&client)), None);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM clients").fetch_one(&mut db).await.unwrap();
    assert_eq!(left, 0);

    let v = operator_cli(&t, &["keys", "rotate"], "");
    let row = latest(&mut db, "keys.rotated").await;
    row.is(platform, "success", op, ("signing_keys", None), None);
    let kids: Vec<&str> = v["created"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    let logged: Vec<&str> =
        row.details["created"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, logged);

    let v = operator_cli(&t, &["audit", "verify"], "");
    assert_eq!(v["ok"], true, "{v}");
}

/// The seeded provider, an owner connection, tenant `acme`'s id and ann's user id.
async fn seeded_provider() -> (Provider, PgConnection, Uuid, String) {
    let p = Provider::start().await;
    let mut db = p.t.owner().await;
    let acme: Uuid = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = 'acme'").fetch_one(&mut db).await.unwrap();
    let ann: Uuid = sqlx::query_scalar("SELECT id FROM users").fetch_one(&mut db).await.unwrap();
    (p, db, acme, ann.to_string())
}

/// The events of the HTTP flows: login success and failure, a non-member's denial, code and
/// refresh-token reuse, revocation and RP-initiated logout, each with the caller's IP.
#[tokio::test]
async fn protocol_events_are_audited() {
    let (p, mut db, acme, ann_id) = seeded_provider().await;
    let ip = Some("127.0.0.1");
    let client = ("client", Some(p.client_id.as_str()));

    // A wrong password, then the right one.
    let browser = Browser::new(&p);
    let (verifier, challenge) = pkce();
    let login = browser.open(&authorize_url(&p, &challenge, &[])).await;
    let again = browser.login(&login, &p.email, "not the password").await;
    // The row names the account a wrong password was typed for (the page never says).
    latest(&mut db, "login.failure").await.is(acme, "failure", ("user", Some(&ann_id)), client, ip);
    let consent = browser.login(&again, &p.email, PASSWORD).await;
    latest(&mut db, "login.success").await.is(acme, "success", ("user", Some(&ann_id)), client, ip);

    // A code redeemed twice.
    let code = browser.consent(&consent, true).await.param("code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", &verifier),
    ];
    let (status, first) = p.token(&form).await;
    assert_eq!(status, 200);
    assert_eq!(p.token(&form).await.0, 400);
    let family: Uuid =
        sqlx::query_scalar("SELECT family_id FROM authorization_codes").fetch_one(&mut db).await.unwrap();
    let family_id = family.to_string();
    let row = latest(&mut db, "code.reuse_detected").await;
    row.is(acme, "failure", ("client", Some(&p.client_id)), ("token_family", Some(&family_id)), ip);
    assert!(first["refresh_token"].is_string());

    // A refresh token used twice.
    let (_, body) = tokens(&p).await;
    let rt = body["refresh_token"].as_str().unwrap();
    assert_eq!(p.token(&[("grant_type", "refresh_token"), ("refresh_token", rt)]).await.0, 200);
    assert_eq!(p.token(&[("grant_type", "refresh_token"), ("refresh_token", rt)]).await.0, 400);
    let family: Uuid =
        sqlx::query_scalar("SELECT family_id FROM token_families WHERE revoked_reason = 'refresh_reuse'")
            .fetch_one(&mut db)
            .await
            .unwrap();
    let family_id = family.to_string();
    let row = latest(&mut db, "refresh_token.reuse_detected").await;
    row.is(acme, "failure", ("client", Some(&p.client_id)), ("token_family", Some(&family_id)), ip);

    // Revocation (RFC 7009).
    let (browser, body) = tokens(&p).await;
    let rt = body["refresh_token"].as_str().unwrap();
    let res = p
        .http()
        .post(p.url("/revoke"))
        .basic_auth(&p.client_id, Some(&p.client_secret))
        .form(&[("token", rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let family: Uuid = sqlx::query_scalar("SELECT family_id FROM token_families WHERE revoked_reason = 'revoked'")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let family_id = family.to_string();
    let row = latest(&mut db, "token.revoked").await;
    row.is(acme, "success", ("client", Some(&p.client_id)), ("token_family", Some(&family_id)), ip);
    assert_eq!(row.details["token_type"], "refresh_token");

    // RP-initiated logout with the ID token as hint.
    let mut url = url::Url::parse(&p.url("/logout")).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", body["id_token"].as_str().unwrap())
        .append_pair("post_logout_redirect_uri", POST_LOGOUT);
    let step = browser.open(url.as_str()).await;
    assert!(step.left().as_str().starts_with(POST_LOGOUT));
    let row = latest(&mut db, "logout").await;
    row.is(acme, "success", ("user", Some(&ann_id)), client, ip);

    // A person who is not a member.
    let hasher = laventecare_auth::identity::PasswordHasher::new();
    let outsider =
        laventecare_auth::identity::create_user(&p.t.db, &hasher, "out@example.com", PASSWORD).await.unwrap();
    let (_, challenge) = pkce();
    let step = Browser::new(&p).sign_in_through(&authorize_url(&p, &challenge, &[]), "out@example.com", PASSWORD).await;
    assert_eq!(step.param("error").as_deref(), Some("access_denied"));
    let outsider_id = outsider.user_id.to_string();
    latest(&mut db, "authorization.denied_no_membership").await.is(
        acme,
        "failure",
        ("user", Some(&outsider_id)),
        client,
        ip,
    );
}

async fn status_and_error(res: reqwest::Response) -> (u16, Option<String>) {
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    (status, body["error"].as_str().map(str::to_owned))
}

/// A suspended tenant gets no tokens: its clients are unknown at the token endpoint (code,
/// refresh, client credentials), its access tokens are inactive, a multi-tenant client of
/// another tenant no longer offers it and cannot refresh into it. Reactivated, all of it works
/// again (the refused refresh tokens were not used up).
#[tokio::test]
async fn suspended_tenant_gets_no_tokens() {
    let p = Provider::start().await;
    let system = Actor::system();
    // A service account in acme, and a multi-tenant client in globex, where ann is a member too.
    let svc = p
        .client(clients::ClientRequest {
            name: "svc".into(),
            grants: vec!["client_credentials".into()],
            role: Some(laventecare_auth::vocabulary::Role::Viewer),
            ..Default::default()
        })
        .await;
    let svc_secret = svc.client_secret.unwrap().expose().to_owned();
    p.t.tenant("globex").await;
    tenancy::add_member(&p.t.db, "globex", &p.email, laventecare_auth::vocabulary::Role::Viewer).await.unwrap();
    let hub = clients::create_client(
        &p.t.db,
        clients::ClientRequest {
            tenant: "globex".into(),
            name: "Hub".into(),
            grants: vec!["authorization_code".into(), "refresh_token".into()],
            redirect_uris: vec![REDIRECT.into()],
            multi_tenant: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let hub_secret = hub.client_secret.unwrap().expose().to_owned();
    // Tokens for acme through the hub (tenant hint), through the hub with its own secret.
    let hub_login = |browser: Browser, hint: &'static str| {
        let (p, hub_id, hub_secret) = (&p, hub.client_id.clone(), hub_secret.clone());
        async move {
            let (verifier, challenge) = pkce();
            let mut url = url::Url::parse(&authorize_url(p, &challenge, &[("tenant", hint)])).unwrap();
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k == "client_id" { hub_id.clone() } else { v.into_owned() };
                    (k.into_owned(), v)
                })
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
            let step = browser.sign_in_through(url.as_str(), &p.email, PASSWORD).await;
            let Some(code) = step.param("code") else { return (step.param("error"), serde_json::Value::Null) };
            let res = p
                .http()
                .post(p.url("/token"))
                .basic_auth(&hub_id, Some(&hub_secret))
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
            (None, res.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (_, via_hub) = hub_login(Browser::new(&p), "acme").await;
    assert_eq!(crate::flow::claims(via_hub["access_token"].as_str().unwrap())["tenant"], "acme");
    let hub_refresh = via_hub["refresh_token"].as_str().unwrap().to_owned();
    let (_, own) = tokens(&p).await;
    let refresh = own["refresh_token"].as_str().unwrap().to_owned();
    let access = own["access_token"].as_str().unwrap().to_owned();

    let cc = |id: String, secret: String| {
        let p = &p;
        async move {
            let res = p
                .http()
                .post(p.url("/token"))
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap();
            status_and_error(res).await
        }
    };
    let hub_refresh_now = |token: String| {
        let (p, hub_id, hub_secret) = (&p, hub.client_id.clone(), hub_secret.clone());
        async move {
            let res = p
                .http()
                .post(p.url("/token"))
                .basic_auth(hub_id, Some(hub_secret))
                .form(&[("grant_type", "refresh_token"), ("refresh_token", token.as_str())])
                .send()
                .await
                .unwrap();
            status_and_error(res).await
        }
    };
    let userinfo = |token: String| {
        let p = &p;
        async move { p.http().get(p.url("/userinfo")).bearer_auth(token).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(userinfo(access.clone()).await, 200);

    tenancy::set_suspended(&p.t.db, &system, "acme", true).await.unwrap();
    let (status, body) = p.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    assert_eq!(cc(svc.client_id.clone(), svc_secret.clone()).await, (401, Some("invalid_client".into())));
    assert_eq!(hub_refresh_now(hub_refresh.clone()).await, (400, Some("invalid_grant".into())));
    assert_eq!(userinfo(access.clone()).await, 401, "its access tokens are inactive");
    // No login for acme's own client: the authorization request is refused on a page.
    let (_, challenge) = pkce();
    let step = Browser::new(&p).open(&authorize_url(&p, &challenge, &[])).await;
    assert_eq!(step.status(), 400);
    // The hub no longer offers acme: asked for it, it gives globex, the one tenant left.
    let (_, via_hub) = hub_login(Browser::new(&p), "acme").await;
    assert_eq!(crate::flow::claims(via_hub["access_token"].as_str().unwrap())["tenant"], "globex");

    tenancy::set_suspended(&p.t.db, &system, "acme", false).await.unwrap();
    let (status, _) = p.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(status, 200, "the refused refresh token was not used up");
    assert_eq!(cc(svc.client_id.clone(), svc_secret.clone()).await.0, 200);
    assert_eq!(hub_refresh_now(hub_refresh).await.0, 200);
    assert_eq!(userinfo(access).await, 200);
}

/// Removing a member ends that user's token families in the tenant; deleting a client ends
/// every family and token it was issued. Either way refresh and introspection stop at once.
#[tokio::test]
async fn removed_members_and_deleted_clients_keep_no_tokens() {
    let p = Provider::start().await;
    let system = Actor::system();
    let (_, first) = tokens(&p).await;
    let (_, second) = tokens(&p).await;
    let removed = tenancy::remove_member(&p.t.db, &system, "acme", &p.email).await.unwrap();
    assert_eq!(removed.families_revoked, 2);
    for body in [&first, &second] {
        assert!(!p.introspect(body["access_token"].as_str().unwrap()).await);
        let rt = body["refresh_token"].as_str().unwrap();
        assert_eq!(p.token(&[("grant_type", "refresh_token"), ("refresh_token", rt)]).await.0, 400);
    }

    tenancy::add_member(&p.t.db, "acme", &p.email, laventecare_auth::vocabulary::Role::Viewer).await.unwrap();
    let (_, body) = tokens(&p).await;
    let svc = p
        .client(clients::ClientRequest {
            name: "svc".into(),
            grants: vec!["client_credentials".into()],
            role: Some(laventecare_auth::vocabulary::Role::Viewer),
            ..Default::default()
        })
        .await;
    let deleted = clients::change::delete_client(&p.t.db, &system, &p.client_id).await.unwrap();
    assert_eq!(deleted.families_revoked, 1);
    let mut db = p.t.owner().await;
    let live: i64 = sqlx::query_scalar("SELECT count(*) FROM token_families WHERE revoked_at IS NULL")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(live, 0);
    // Introspected by another client of the tenant: inactive.
    let res = p
        .http()
        .post(p.url("/introspect"))
        .basic_auth(&svc.client_id, Some(svc.client_secret.unwrap().expose()))
        .form(&[("token", body["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["active"], false, "{v}");
    let rt = body["refresh_token"].as_str().unwrap();
    assert_eq!(p.token(&[("grant_type", "refresh_token"), ("refresh_token", rt)]).await.0, 401);
}

/// Issuance, consent and every way a family ends are audited: `token.issued` per grant type
/// (no token material in the row), `consent.granted` and `consent.denied`,
/// `code.redemption_failed` for a wrong redirect URI and a wrong PKCE verifier, and
/// `token_family.revoked` with its reason.
#[tokio::test]
async fn issuance_consent_and_revocation_reasons_are_audited() {
    let (p, mut db, acme, ann_id) = seeded_provider().await;
    let ip = Some("127.0.0.1");
    let client = ("client", Some(p.client_id.as_str()));

    // Consent, then the code grant.
    let browser = Browser::new(&p);
    let (verifier, challenge) = pkce();
    let consent = browser.login(&browser.open(&authorize_url(&p, &challenge, &[])).await, &p.email, PASSWORD).await;
    let code = browser.consent(&consent, true).await.param("code").unwrap();
    let row = latest(&mut db, "consent.granted").await;
    row.is(acme, "success", ("user", Some(&ann_id)), client, ip);
    assert_eq!(row.details["scope"], "email offline_access openid profile");
    let (status, body) = p.redeem(&code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    let family: Uuid =
        sqlx::query_scalar("SELECT family_id FROM authorization_codes").fetch_one(&mut db).await.unwrap();
    let family_id = family.to_string();
    let row = latest(&mut db, "token.issued").await;
    row.is(acme, "success", client, ("token_family", Some(&family_id)), ip);
    assert_eq!(row.details["grant_type"], "authorization_code");
    assert_eq!(row.details["user_id"], ann_id.as_str());
    assert_eq!(row.details["acr"], "urn:laventecare:acr:pwd");
    assert_eq!((row.details["refresh_token"].as_bool(), row.details["id_token"].as_bool()), (Some(true), Some(true)));
    let jti = crate::flow::claims(body["access_token"].as_str().unwrap())["jti"].clone();
    assert_eq!(row.details["jti"], jti);
    let text = row.details.to_string();
    for secret in ["access_token", "refresh_token", "id_token"] {
        assert!(!text.contains(body[secret].as_str().unwrap()), "{secret} in the audit row");
    }

    // A refresh is an issuance of its own.
    let rt = body["refresh_token"].as_str().unwrap();
    let (status, refreshed) = p.token(&[("grant_type", "refresh_token"), ("refresh_token", rt)]).await;
    assert_eq!(status, 200, "{refreshed}");
    let row = latest(&mut db, "token.issued").await;
    assert_eq!(
        (row.details["grant_type"].as_str(), row.target_id.as_deref()),
        (Some("refresh_token"), Some(&*family_id))
    );

    // Reuse ends the family, with the reason.
    assert_eq!(p.token(&[("grant_type", "refresh_token"), ("refresh_token", rt)]).await.0, 400);
    let row = latest(&mut db, "token_family.revoked").await;
    row.is(acme, "success", client, ("token_family", Some(&family_id)), ip);
    assert_eq!(row.details["reason"], "refresh_reuse");
    assert_eq!(row.details["user_id"], ann_id.as_str());

    // A code redeemed with the wrong redirect URI, another with the wrong verifier.
    for (form_redirect, form_verifier, reason) in [
        ("https://rp.example.com/other", None, "redirect_uri_mismatch"),
        (REDIRECT, Some("x".repeat(43)), "pkce_failed"),
    ] {
        let (verifier, challenge) = pkce();
        let step = browser.open(&authorize_url(&p, &challenge, &[])).await;
        let code = step.param("code").unwrap();
        let verifier = form_verifier.unwrap_or(verifier);
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", form_redirect),
            ("code_verifier", verifier.as_str()),
        ];
        let (status, body) = p.token(&form).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
        let row = latest(&mut db, "code.redemption_failed").await;
        row.is(acme, "failure", client, ("user", Some(&ann_id)), ip);
        assert_eq!(row.details["reason"], reason);
    }

    // A service account's token names the client, with no user and no family.
    let service = p
        .client(clients::ClientRequest {
            name: "Acme Jobs".into(),
            grants: vec!["client_credentials".into()],
            role: Some(laventecare_auth::vocabulary::Role::Viewer),
            ..Default::default()
        })
        .await;
    let res = p
        .http()
        .post(p.url("/token"))
        .basic_auth(&service.client_id, Some(service.client_secret.as_ref().unwrap().expose()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let row = latest(&mut db, "token.issued").await;
    row.is(acme, "success", ("client", Some(&service.client_id)), ("client", Some(&service.client_id)), ip);
    assert_eq!(row.details["grant_type"], "client_credentials");
    assert!(row.details["user_id"].is_null() && row.details["family_id"].is_null());

    // Removing the member ends her families, each with the reason.
    let (_, live) = tokens(&p).await;
    tenancy::remove_member(&p.t.db, &Actor::operator(OPERATOR), "acme", &p.email).await.unwrap();
    let row = latest(&mut db, "token_family.revoked").await;
    assert_eq!((row.actor_kind.as_str(), row.details["reason"].as_str()), ("operator", Some("membership_removed")));
    let (status, _) =
        p.token(&[("grant_type", "refresh_token"), ("refresh_token", live["refresh_token"].as_str().unwrap())]).await;
    assert_eq!(status, 400);

    // Denying consent is recorded too.
    tenancy::add_member(&p.t.db, "acme", &p.email, laventecare_auth::vocabulary::Role::Viewer).await.unwrap();
    let other = p
        .client(clients::ClientRequest {
            name: "Acme Other".into(),
            grants: vec!["authorization_code".into()],
            redirect_uris: vec![REDIRECT.into()],
            ..Default::default()
        })
        .await;
    let mut url = url::Url::parse(&authorize_url(&p, &challenge, &[])).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "client_id" { other.client_id.clone() } else { v.into_owned() };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let consent = browser.open(url.as_str()).await;
    let denied = browser.consent(&consent, false).await;
    assert_eq!(denied.param("error").as_deref(), Some("access_denied"));
    latest(&mut db, "consent.denied").await.is(
        acme,
        "success",
        ("user", Some(&ann_id)),
        ("client", Some(&other.client_id)),
        ip,
    );
}
