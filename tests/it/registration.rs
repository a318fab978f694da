//! Dynamic client registration (RFC 7591, RFC 7592): with an initial access token from the
//! command line, a client registers and completes a code flow; a token registers as many
//! clients as it allows; open registration takes only public native clients, where a tenant
//! allows it; refused metadata is `invalid_client_metadata` / `invalid_redirect_uri` and spends
//! nothing; the registration access token reads and deletes the registration; all audited.

use serde_json::{Value, json};
use url::Url;

use crate::flow::{Browser, PASSWORD, Provider, REDIRECT, authorize_url, pkce};
use crate::mfa::{audit_rows, tenant_id};
use crate::support::{cli, json_out};

async fn register(p: &Provider, token: Option<&str>, query: &str, body: Value) -> (u16, Value) {
    let mut req = p.http().post(p.url(&format!("/register{query}"))).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

fn initial_token(p: &Provider, uses: &str) -> String {
    let out = json_out(&cli(&p.t, &["client", "registration-token", "--tenant", "acme", "--uses", uses, "--json"], ""));
    out["initial_access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_client_registers_with_an_initial_access_token_and_signs_a_user_in() {
    let p = Provider::start().await;
    let iat = initial_token(&p, "1");
    let metadata = json!({
        "client_name": "Registered Web",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "software_id": "ignored: unknown members are ignored",
    });
    let (status, reg) = register(&p, Some(&iat), "", metadata.clone()).await;
    assert_eq!(status, 201, "{reg}");
    let client_id = reg["client_id"].as_str().unwrap().to_owned();
    let secret = reg["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(reg["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(reg["registration_client_uri"], p.url(&format!("/register/{client_id}")));
    let rat = reg["registration_access_token"].as_str().unwrap().to_owned();

    // The token allowed one registration.
    let (status, again) = register(&p, Some(&iat), "", metadata).await;
    assert_eq!((status, again["error"].as_str()), (401, Some("invalid_token")), "{again}");

    // The new client's code flow.
    let (verifier, challenge) = pkce();
    let mut url = Url::parse(&authorize_url(&p, &challenge, &[])).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "client_id" { client_id.clone() } else { v.into_owned() };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let step = Browser::new(&p).sign_in_through(url.as_str(), &p.email, PASSWORD).await;
    let code = step.param("code").unwrap_or_else(|| panic!("{step:?}"));
    let res = p
        .http()
        .post(p.url("/token"))
        .basic_auth(&client_id, Some(&secret))
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
    assert_eq!(crate::flow::claims(tokens["id_token"].as_str().unwrap())["aud"], client_id.as_str());

    // Audited, with the token as who registered.
    let acme = tenant_id(&p, "acme").await;
    let rows = audit_rows(&p, acme, "client.registered").await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].actor_kind.as_str(), rows[0].target_id.as_deref()), ("system", Some(client_id.as_str())));
    assert!(
        rows[0].actor_id.as_deref().is_some_and(|a| a.starts_with("registration_token:")),
        "{:?}",
        rows[0].actor_id
    );
    assert_eq!(rows[0].details["via"], "initial_access_token");
    assert_eq!(audit_rows(&p, acme, "registration_token.issued").await.len(), 1);

    // RFC 7592: read and delete with the registration access token, and nothing without it.
    let config = p.url(&format!("/register/{client_id}"));
    let res = p.http().get(&config).bearer_auth(&rat).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let read: Value = res.json().await.unwrap();
    assert_eq!(
        (read["client_id"].as_str(), read["client_name"].as_str()),
        (Some(client_id.as_str()), Some("Registered Web"))
    );
    assert!(read.get("client_secret").is_none(), "the secret is not shown again");
    for wrong in ["wrong", iat.as_str()] {
        assert_eq!(p.http().get(&config).bearer_auth(wrong).send().await.unwrap().status(), 401);
    }
    assert_eq!(p.http().get(&config).send().await.unwrap().status(), 401);
    // The seeded client was registered by an administrator: no token manages it.
    let seeded = p.url(&format!("/register/{}", p.client_id));
    assert_eq!(p.http().get(&seeded).bearer_auth(&rat).send().await.unwrap().status(), 401);
    let res = p.http().delete(&config).bearer_auth(&rat).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(p.http().get(&config).bearer_auth(&rat).send().await.unwrap().status(), 401);
    let res = p
        .http()
        .post(p.url("/token"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "the deleted client is gone, and its tokens with it");
}

/// Refused metadata gets the RFC 7591 error and gives the token's use back.
#[tokio::test]
async fn bad_metadata_is_refused_and_spends_nothing() {
    let p = Provider::start().await;
    let iat = initial_token(&p, "1");
    let cases = [
        (json!({ "redirect_uris": ["https://rp.example.com/cb#frag"] }), "invalid_redirect_uri"),
        (json!({ "redirect_uris": ["http://rp.example.com/cb"] }), "invalid_redirect_uri"),
        (json!({ "redirect_uris": [REDIRECT], "grant_types": ["client_credentials"] }), "invalid_client_metadata"),
        (json!({ "redirect_uris": [REDIRECT], "response_types": ["token"] }), "invalid_client_metadata"),
        (
            json!({ "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt" }),
            "invalid_client_metadata",
        ),
        (json!({ "grant_types": ["authorization_code"] }), "invalid_client_metadata"),
        (json!({ "redirect_uris": vec![REDIRECT; 21] }), "invalid_client_metadata"),
    ];
    for (body, error) in cases {
        let (status, answer) = register(&p, Some(&iat), "", body.clone()).await;
        assert_eq!((status, answer["error"].as_str()), (400, Some(error)), "{body}: {answer}");
    }
    let res = p
        .http()
        .post(p.url("/register"))
        .bearer_auth(&iat)
        .header("content-type", "application/json")
        .body(r#"{"redirect_uris": "not a list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let (status, reg) = register(&p, Some(&iat), "", json!({ "redirect_uris": [REDIRECT] })).await;
    assert_eq!(status, 201, "the token still had its use: {reg}");
}

/// Open registration: only where the tenant allows it, only public clients with loopback or
/// private-use redirect URIs.
#[tokio::test]
async fn open_registration_takes_public_native_clients_where_allowed() {
    let p = Provider::start().await;
    let native = json!({
        "client_name": "Desktop app",
        "redirect_uris": ["http://127.0.0.1:8765/callback", "com.example.app:/oauth"],
        "token_endpoint_auth_method": "none",
    });
    let (status, answer) = register(&p, None, "?tenant=acme", native.clone()).await;
    assert_eq!((status, answer["error"].as_str()), (401, Some("invalid_token")), "off by default: {answer}");
    let (status, _) = register(&p, None, "", native.clone()).await;
    assert_eq!(status, 401, "no tenant, no token");

    let out = json_out(&cli(&p.t, &["tenant", "open-registration", "--slug", "acme", "--json"], ""));
    assert_eq!(out["changed"], true);
    let (status, reg) = register(&p, None, "?tenant=acme", native).await;
    assert_eq!(status, 201, "{reg}");
    assert!(reg.get("client_secret").is_none());
    assert_eq!(reg["token_endpoint_auth_method"], "none");
    let (status, answer) = register(
        &p,
        None,
        "?tenant=nobody",
        json!({ "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none" }),
    )
    .await;
    assert_eq!(status, 401, "{answer}");

    for (body, error) in [
        (json!({ "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none" }), "invalid_redirect_uri"),
        (json!({ "redirect_uris": ["http://127.0.0.1/cb"] }), "invalid_client_metadata"),
    ] {
        let (status, answer) = register(&p, None, "?tenant=acme", body.clone()).await;
        assert_eq!((status, answer["error"].as_str()), (400, Some(error)), "{body}: {answer}");
    }
    let acme = tenant_id(&p, "acme").await;
    let rows = audit_rows(&p, acme, "client.registered").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].actor_id.as_deref(), rows[0].details["via"].as_str()),
        (Some("open_registration"), Some("open_registration"))
    );
    assert_eq!(audit_rows(&p, acme, "tenant.registration_policy_changed").await.len(), 1);

    let doc: Value =
        p.http().get(p.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["registration_endpoint"], p.url("/register"));
}
