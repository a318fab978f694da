//! Resource indicators (RFC 8707): a tenant registers its APIs; `resource` at the
//! authorization and token endpoints gives an access token whose `aud` is the API, with the
//! API's scopes only; what is not registered, or not for the client, is `invalid_target`; the
//! registrations are managed from the command line and the admin API, audited, and stay in
//! their tenant.

use laventecare_auth::clients::{self, ClientRequest, resources::ResourceRequest};
use laventecare_auth::db::audit::Actor;
use laventecare_auth::vocabulary::Role;
use serde_json::{Value, json};
use url::Url;
use uuid::Uuid;

use crate::api::service_token;
use crate::flow::{Browser, PASSWORD, Provider, REDIRECT, claims, pkce};
use crate::mfa::{audit_rows, tenant_id};
use crate::support::{cli, json_out};

const ORDERS: &str = "https://orders.acme.example/";
const BILLING: &str = "https://billing.acme.example/api";

/// Registers an API in `acme` for `clients`.
async fn register(p: &Provider, identifier: &str, scopes: &[&str], clients: &[&str]) -> Uuid {
    let tenant = tenant_id(p, "acme").await;
    let req = ResourceRequest {
        identifier: identifier.into(),
        name: format!("API {identifier}"),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        client_ids: clients.iter().map(|c| (*c).to_owned()).collect(),
    };
    clients::resources::register(&p.t.db, &Actor::system(), tenant, req).await.unwrap().id
}

/// An authorization URL of the seeded client naming each of `resources`.
fn authorize_with(p: &Provider, challenge: &str, scope: &str, resources: &[&str]) -> String {
    let mut url = Url::parse(&crate::flow::authorize_url(p, challenge, &[("scope", scope)])).unwrap();
    for r in resources {
        url.query_pairs_mut().append_pair("resource", r);
    }
    url.to_string()
}

/// Signs in through `url` and answers consent, returning the consent page's HTML (if shown)
/// and where the browser left.
async fn sign_in(p: &Provider, url: &str) -> (Option<String>, Url) {
    let browser = Browser::new(p);
    let mut step = browser.open(url).await;
    if step.html_opt().is_some_and(|h| h.contains("action=\"/login\"")) {
        step = browser.login(&step, &p.email, PASSWORD).await;
    }
    let mut consent = None;
    if step.html_opt().is_some_and(|h| h.contains("action=\"/consent\"")) {
        consent = Some(step.html().to_owned());
        step = browser.consent(&step, true).await;
    }
    (consent, step.left().clone())
}

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// The whole web-app case: two APIs named at authorization, the code redeemed for one, the
/// refresh token asked for the other and for both; the ID token stays the client's, and the
/// API token opens neither UserInfo nor introspection's "not ours".
#[tokio::test]
async fn code_flow_tokens_are_meant_for_the_named_api() {
    let p = Provider::start().await;
    register(&p, ORDERS, &["orders:read", "orders:write"], &[&p.client_id]).await;
    register(&p, BILLING, &["billing:read"], &[&p.client_id]).await;
    let (verifier, challenge) = pkce();
    let url =
        authorize_with(&p, &challenge, "openid offline_access orders:read billing:read unknown:x", &[ORDERS, BILLING]);
    let (consent, left) = sign_in(&p, &url).await;
    let consent = consent.expect("a consent page");
    assert!(consent.contains(&format!("API {ORDERS}")) && consent.contains("orders:read"), "{consent}");
    assert!(consent.contains(&format!("API {BILLING}")) && !consent.contains("orders:write"), "{consent}");
    let code = param(&left, "code").unwrap_or_else(|| panic!("no code: {left}"));

    let (status, body) = p
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("resource", ORDERS),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
    let at = claims(body["access_token"].as_str().unwrap());
    assert_eq!(at["aud"], ORDERS, "{at}");
    assert_eq!(at["scope"], "orders:read", "only the API's scopes: {at}");
    assert_eq!(body["scope"], "orders:read", "the response says the token's scope");
    assert_eq!(at["client_id"], p.client_id.as_str());
    assert_eq!(claims(body["id_token"].as_str().unwrap())["aud"], p.client_id.as_str(), "the ID token is the client's");

    // Not a token for this provider's own endpoints.
    let res =
        p.http().get(p.url("/userinfo")).bearer_auth(body["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(res.status(), 401);
    // The API checks it by introspection: active, for it.
    let res = p
        .http()
        .post(p.url("/introspect"))
        .basic_auth(&p.client_id, Some(&p.client_secret))
        .form(&[("token", body["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    let intro: Value = res.json().await.unwrap();
    assert_eq!((intro["active"].clone(), intro["aud"].clone()), (json!(true), json!(ORDERS)), "{intro}");

    // The refresh token, for the other API; then for both (an audience list).
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, body) =
        p.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("resource", BILLING)]).await;
    assert_eq!(status, 200, "{body}");
    let at = claims(body["access_token"].as_str().unwrap());
    assert_eq!((at["aud"].clone(), at["scope"].clone()), (json!(BILLING), json!("billing:read")), "{at}");

    // An API the authorization did not name: invalid_target, and the refresh token is not
    // spent by the refusal.
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    register(&p, "urn:acme:other", &["other:read"], &[&p.client_id]).await;
    let (status, refused) =
        p.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("resource", "urn:acme:other")]).await;
    assert_eq!((status, refused["error"].as_str()), (400, Some("invalid_target")), "{refused}");
    let (status, body) = p.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(status, 200, "the refused request spent nothing: {body}");
    let at = claims(body["access_token"].as_str().unwrap());
    assert_eq!(at["aud"], json!([ORDERS, BILLING]), "no resource: every API of the grant, in its order: {at}");
    assert_eq!(at["scope"], "billing:read orders:read");

    // Once the API stops allowing the client, its refresh gets invalid_target for it.
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let tenant = tenant_id(&p, "acme").await;
    let orders = clients::resources::list(&p.t.db, tenant).await.unwrap().into_iter().find(|r| r.identifier == ORDERS);
    let change = clients::resources::ResourceChange { client_ids: Some(vec![]), ..Default::default() };
    clients::resources::update(&p.t.db, &Actor::system(), tenant, orders.unwrap().id, change).await.unwrap();
    let (status, refused) =
        p.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("resource", ORDERS)]).await;
    assert_eq!((status, refused["error"].as_str()), (400, Some("invalid_target")), "{refused}");
    let (status, body) =
        p.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("resource", BILLING)]).await;
    assert_eq!(status, 200, "{body}");

    // The issuance is audited with the APIs.
    let issued = audit_rows(&p, tenant, "token.issued").await;
    assert!(issued.iter().any(|r| r.details["resources"] == json!([ORDERS, BILLING])), "{issued:?}");
}

/// Without `resource`, nothing changes: the token is the client's, opens UserInfo, and the
/// API scopes asked for are unknown, so ignored.
#[tokio::test]
async fn without_a_resource_the_token_is_the_clients() {
    let p = Provider::start().await;
    register(&p, ORDERS, &["orders:read"], &[&p.client_id]).await;
    let (verifier, challenge) = pkce();
    let (_, left) = sign_in(&p, &authorize_with(&p, &challenge, "openid orders:read", &[])).await;
    let (status, body) = p.redeem(&param(&left, "code").unwrap(), &verifier).await;
    assert_eq!(status, 200, "{body}");
    let at = claims(body["access_token"].as_str().unwrap());
    assert_eq!((at["aud"].clone(), at["scope"].clone()), (json!(p.client_id), json!("openid")), "{at}");
    let res =
        p.http().get(p.url("/userinfo")).bearer_auth(body["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

/// Unregistered, not allowed, malformed, another tenant's, too many: `invalid_target`, at the
/// redirect URI with `state`, before anyone signs in.
#[tokio::test]
async fn what_is_not_registered_for_the_client_is_invalid_target() {
    let p = Provider::start().await;
    let other = p
        .client(ClientRequest {
            name: "Other".into(),
            grants: vec!["authorization_code".into()],
            redirect_uris: vec![REDIRECT.into()],
            ..Default::default()
        })
        .await;
    register(&p, ORDERS, &["orders:read"], &[&other.client_id]).await;
    // The same identifier in another tenant, for a client there.
    p.t.tenant("globex").await;
    let globex = clients::create_client(
        &p.t.db,
        ClientRequest {
            tenant: "globex".into(),
            name: "G".into(),
            grants: vec!["client_credentials".into()],
            role: Some(Role::Viewer),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let globex_id = tenant_id(&p, "globex").await;
    let req = ResourceRequest {
        identifier: BILLING.into(),
        name: "Globex billing".into(),
        client_ids: vec![globex.client_id.clone()],
        ..Default::default()
    };
    clients::resources::register(&p.t.db, &Actor::system(), globex_id, req).await.unwrap();

    let many: Vec<String> = (0..11).map(|i| format!("urn:acme:{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let cases: [(&str, &[&str]); 6] = [
        ("unregistered", &["https://nothing.acme.example/"]),
        ("registered for another client", &[ORDERS]),
        ("another tenant's", &[BILLING]),
        ("a fragment", &["https://orders.acme.example/#x"]),
        ("relative", &["/orders"]),
        ("more than ten", &many),
    ];
    for (case, resources) in cases {
        let (_, challenge) = pkce();
        let browser = Browser::new(&p);
        let step = browser.open(&authorize_with(&p, &challenge, "openid", resources)).await;
        let left = step.left();
        assert!(left.as_str().starts_with(REDIRECT), "{case}: {left}");
        assert_eq!(param(left, "error").as_deref(), Some("invalid_target"), "{case}: {left}");
        assert_eq!(param(left, "state").as_deref(), Some("st-123"), "{case}");
    }

    // At the token endpoint: the seeded client's code flow named no API, so naming one there
    // is refused, whatever it is.
    let (browser, body) = crate::flow::tokens(&p).await;
    drop(browser);
    let refresh = body["refresh_token"].as_str().unwrap();
    for resource in [ORDERS, "https://nothing.acme.example/", "not a uri"] {
        let (status, refused) =
            p.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh), ("resource", resource)]).await;
        assert_eq!((status, refused["error"].as_str()), (400, Some("invalid_target")), "{resource}: {refused}");
    }
    // Twice in one token request: refused as a repeated parameter.
    let res = p
        .http()
        .post(p.url("/token"))
        .basic_auth(&p.client_id, Some(&p.client_secret))
        .body(format!("grant_type=refresh_token&refresh_token={refresh}&resource=urn%3Aa&resource=urn%3Ab"))
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let (status, body) = p.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!(status, 200, "nothing refused spent the refresh token: {body}");
}

/// A service account (client credentials) asks for a token for an API: `aud` is the API, the
/// scopes are the API's; one the API does not define is `invalid_scope`; one it is not
/// allowed is `invalid_target`; the token does not open the admin API.
#[tokio::test]
async fn a_service_account_gets_a_token_for_an_api() {
    let p = Provider::start().await;
    let job = p
        .client(ClientRequest {
            name: "Nightly job".into(),
            grants: vec!["client_credentials".into()],
            role: Some(Role::Admin),
            admin_api: true,
            ..Default::default()
        })
        .await;
    let secret = job.client_secret.as_ref().unwrap().expose().to_owned();
    register(&p, ORDERS, &["orders:read", "orders:write"], &[&job.client_id]).await;
    register(&p, BILLING, &["billing:read"], &[&p.client_id]).await;
    let ask = |form: Vec<(&'static str, &'static str)>| {
        let (p, id, secret) = (&p, job.client_id.clone(), secret.clone());
        async move {
            let res = p.http().post(p.url("/token")).basic_auth(id, Some(secret)).form(&form).send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let (status, body) =
        ask(vec![("grant_type", "client_credentials"), ("scope", "orders:write admin"), ("resource", ORDERS)]).await;
    assert_eq!(status, 200, "{body}");
    let at = claims(body["access_token"].as_str().unwrap());
    assert_eq!((at["aud"].clone(), at["scope"].clone()), (json!(ORDERS), json!("orders:write")), "{at}");
    assert_eq!(at["sub"], job.client_id.as_str());
    let res = p
        .http()
        .get(p.url("/api/v1/members"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "an API's token does not open the admin API, admin scope or not");

    let (status, body) =
        ask(vec![("grant_type", "client_credentials"), ("scope", "billing:read"), ("resource", ORDERS)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")), "{body}");
    let (status, body) = ask(vec![("grant_type", "client_credentials"), ("resource", BILLING)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_target")), "{body}");
    let (status, body) = ask(vec![("grant_type", "client_credentials"), ("scope", "admin")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(claims(body["access_token"].as_str().unwrap())["aud"], job.client_id.as_str());
}

/// The command line registers, lists, changes and removes APIs; each is audited; bad input
/// gets a clear error and changes nothing; deleting a client takes it off the API's list.
#[tokio::test]
async fn the_command_line_manages_apis() {
    let p = Provider::start().await;
    let run = |args: Vec<String>| {
        let t = &p.t;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(t, &args, "")
    };
    let s = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let created = json_out(&run(s(&[
        "resource",
        "create",
        "--tenant",
        "acme",
        "--identifier",
        ORDERS,
        "--name",
        "Orders",
        "--scope",
        "orders:read",
        "--scope",
        "orders:write",
        "--client",
        &p.client_id,
        "--json",
    ])));
    assert_eq!(created["identifier"], ORDERS);
    assert_eq!(created["scopes"], json!(["orders:read", "orders:write"]));
    let id = created["id"].as_str().unwrap().to_owned();

    for (bad, why) in [
        (s(&["--identifier", ORDERS]), "already"),
        (s(&["--identifier", "https://x.example/#f"]), "fragment"),
        (s(&["--identifier", "https://y.example/", "--scope", "openid"]), "provider"),
        (s(&["--identifier", "https://z.example/", "--client", "nope"]), "not a client"),
    ] {
        let mut args = s(&["resource", "create", "--tenant", "acme", "--name", "X"]);
        args.extend(bad);
        let out = run(args);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{why}: {err}");
    }
    let listed = json_out(&run(s(&["resource", "list", "--tenant", "acme", "--json"])));
    assert_eq!(listed["resource_servers"].as_array().unwrap().len(), 1, "{listed}");

    let changed = json_out(&run(s(&["resource", "update", "--tenant", "acme", &id, "--no-scopes", "--json"])));
    assert_eq!((changed["scopes"].clone(), changed["client_ids"].clone()), (json!([]), json!([p.client_id])));
    // Another tenant cannot reach it.
    p.t.tenant("globex").await;
    let out = run(s(&["resource", "delete", "--tenant", "globex", &id]));
    assert!(!out.status.success(), "another tenant's API is not found");

    clients::change::delete_client(&p.t.db, &Actor::system(), &p.client_id).await.unwrap();
    let listed = json_out(&run(s(&["resource", "list", "--tenant", "acme", "--json"])));
    assert_eq!(listed["resource_servers"][0]["client_ids"], json!([]), "a deleted client is forgotten");
    let deleted = json_out(&run(s(&["resource", "delete", "--tenant", "acme", &id, "--json"])));
    assert_eq!(deleted["deleted"], true);
    let tenant = tenant_id(&p, "acme").await;
    for action in ["resource_server.registered", "resource_server.updated", "resource_server.deleted"] {
        let rows = audit_rows(&p, tenant, action).await;
        assert_eq!(rows.len(), 1, "{action}: {rows:?}");
        assert_eq!((rows[0].actor_kind.as_str(), rows[0].target_id.as_deref()), ("operator", Some(id.as_str())));
    }
    let updated = audit_rows(&p, tenant, "resource_server.updated").await;
    assert_eq!(updated[0].details["before"]["scopes"], json!(["orders:read", "orders:write"]));
}

/// The admin API: register, list, change and remove; `clients.manage` for changes; bad input
/// is a 400 and a second registration of an identifier a 409.
#[tokio::test]
async fn the_admin_api_manages_apis() {
    let p = Provider::start().await;
    let admin = service_token(&p, "acme", Role::Admin).await;
    let viewer = service_token(&p, "acme", Role::Viewer).await;
    let api = |method: reqwest::Method, path: &str, token: &str, body: Option<Value>| {
        let req = p.http().request(method, p.url(&format!("/api/v1{path}"))).bearer_auth(token);
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let body =
        json!({ "identifier": ORDERS, "name": "Orders", "scopes": ["orders:read"], "client_ids": [p.client_id] });
    let (status, _) = api(reqwest::Method::POST, "/resource-servers", &viewer, Some(body.clone())).await;
    assert_eq!(status, 403, "a viewer reads, never registers");
    let (status, created) = api(reqwest::Method::POST, "/resource-servers", &admin, Some(body.clone())).await;
    assert_eq!(status, 201, "{created}");
    let (status, again) = api(reqwest::Method::POST, "/resource-servers", &admin, Some(body)).await;
    assert_eq!((status, again["error"].as_str()), (400, Some("conflict")), "{again}");
    let bad = json!({ "identifier": "https://x.example/?q=1", "name": "X" });
    let (status, _) = api(reqwest::Method::POST, "/resource-servers", &admin, Some(bad)).await;
    assert_eq!(status, 400);
    let (status, listed) = api(reqwest::Method::GET, "/resource-servers", &viewer, None).await;
    assert_eq!((status, listed["items"].as_array().map(Vec::len)), (200, Some(1)), "{listed}");

    let id = created["id"].as_str().unwrap();
    let patch = json!({ "scopes": ["orders:read", "orders:write"] });
    let (status, changed) = api(reqwest::Method::PATCH, &format!("/resource-servers/{id}"), &admin, Some(patch)).await;
    assert_eq!((status, changed["scopes"].clone()), (200, json!(["orders:read", "orders:write"])), "{changed}");
    let (status, _) = api(reqwest::Method::DELETE, &format!("/resource-servers/{id}"), &admin, None).await;
    assert_eq!(status, 204);
    let (status, _) = api(reqwest::Method::DELETE, &format!("/resource-servers/{id}"), &admin, None).await;
    assert_eq!(status, 404);
}

/// Discovery says resource indicators are offered.
#[tokio::test]
async fn discovery_advertises_resource_indicators() {
    let p = Provider::start().await;
    let doc: Value =
        p.http().get(p.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["resource_indicators_supported"], true);
}

/// A consent given without an API does not cover a request naming one, even when no scope of
/// the API is asked for: the page asks again and names the API; once allowed, it is
/// remembered.
#[tokio::test]
async fn a_remembered_consent_does_not_cover_a_new_api() {
    let p = Provider::start().await;
    register(&p, ORDERS, &["orders:read"], &[&p.client_id]).await;
    let browser = Browser::new(&p);
    let (_, challenge) = pkce();
    let first = browser.sign_in_through(&authorize_with(&p, &challenge, "openid", &[]), &p.email, PASSWORD).await;
    assert!(param(first.left(), "code").is_some(), "consented to openid");

    let step = browser.open(&authorize_with(&p, &challenge, "openid", &[ORDERS])).await;
    let html = step.html_opt().unwrap_or_else(|| panic!("the consent page again, not {step:?}"));
    assert!(html.contains("action=\"/consent\"") && html.contains(&format!("API {ORDERS}")), "{html}");
    let left = browser.consent(&step, true).await;
    assert!(param(left.left(), "code").is_some());

    let again = browser.open(&authorize_with(&p, &challenge, "openid", &[ORDERS])).await;
    assert!(param(again.left(), "code").is_some(), "remembered now: {again:?}");
}

/// A multi-tenant client's APIs are its own tenant's: for a user signed in to another tenant,
/// `resource` is `invalid_target` (that token would carry the other tenant's `tid` and roles);
/// in the client's own tenant it works.
#[tokio::test]
async fn a_multi_tenant_clients_apis_are_only_for_its_own_tenant() {
    let p = Provider::start().await;
    p.t.tenant("globex").await;
    laventecare_auth::tenancy::add_member(&p.t.db, "globex", &p.email, Role::Viewer).await.unwrap();
    let shared = p
        .client(ClientRequest {
            name: "Family App".into(),
            grants: vec!["authorization_code".into()],
            redirect_uris: vec![REDIRECT.into()],
            multi_tenant: true,
            ..Default::default()
        })
        .await;
    register(&p, ORDERS, &["orders:read"], &[&shared.client_id]).await;
    let secret = shared.client_secret.as_ref().unwrap().expose().to_owned();
    for (tenant, expected) in [("globex", 400), ("acme", 200)] {
        let (verifier, challenge) = pkce();
        let mut url = Url::parse(&crate::flow::authorize_url(
            &p,
            &challenge,
            &[("scope", "openid orders:read"), ("tenant", tenant)],
        ))
        .unwrap();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "client_id" { shared.client_id.clone() } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs).append_pair("resource", ORDERS);
        let (_, left) = sign_in(&p, url.as_str()).await;
        let code = param(&left, "code").unwrap_or_else(|| panic!("{tenant}: {left}"));
        let res = p
            .http()
            .post(p.url("/token"))
            .basic_auth(&shared.client_id, Some(&secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), expected, "{tenant}");
        let body: Value = res.json().await.unwrap();
        if expected == 400 {
            assert_eq!(body["error"], "invalid_target", "{body}");
        } else {
            assert_eq!(claims(body["access_token"].as_str().unwrap())["aud"], ORDERS);
        }
    }
}
