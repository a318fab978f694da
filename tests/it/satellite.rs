//! The satellite API's offline verifier (`examples/satellite/verify.rs`, compiled into this
//! suite with its telemetry endpoint as `crate::satellite_api`): it accepts our access tokens for its tenant and role,
//! follows a key rotation, and refuses ID tokens, other issuers' tokens, other tenants and
//! APIs, missing roles and tampered tokens.

use laventecare_auth::tokens::{self, KeyRotationPolicy};

use crate::flow::{Provider, tokens as sign_in};
use crate::satellite_api::{Policy, Rejection, Verifier};

fn policy(p: &Provider, tenant_id: Option<String>, role: &str) -> Policy {
    Policy { issuer: p.issuer.clone(), audiences: vec![p.client_id.clone()], tenant_id, role: role.into() }
}

fn verifier(p: &Provider, policy: Policy) -> Verifier {
    Verifier::new(policy, p.url("/jwks"))
}

#[tokio::test]
async fn the_verifier_accepts_an_access_token_of_its_tenant_and_role() {
    let p = Provider::start().await;
    let (_, body) = sign_in(&p).await;
    let at = body["access_token"].as_str().unwrap();
    let acme = crate::flow::claims(at)["tid"].as_str().unwrap().to_owned();
    let v = verifier(&p, policy(&p, Some(acme.clone()), "viewer"));
    let who = v.verify(at).await.unwrap();
    assert_eq!((who.tid.as_str(), who.client_id.as_str()), (acme.as_str(), p.client_id.as_str()));
    assert!(who.roles.contains(&"editor".to_owned()) && who.roles.contains(&"viewer".to_owned()));
    assert!(!who.sub.is_empty() && who.scope.split(' ').any(|s| s == "openid"));

    // Ann is an editor: an API that needs admin refuses her token.
    let admin_only = verifier(&p, policy(&p, Some(acme.clone()), "admin"));
    assert_eq!(admin_only.verify(at).await.unwrap_err(), Rejection::MissingRole);
    // Another tenant's API, another API, another issuer.
    let other_tenant = verifier(&p, policy(&p, Some(uuid::Uuid::now_v7().to_string()), "viewer"));
    assert_eq!(other_tenant.verify(at).await.unwrap_err(), Rejection::WrongTenant);
    let other_api =
        verifier(&p, Policy { audiences: vec!["another-api".into()], ..policy(&p, Some(acme.clone()), "viewer") });
    assert_eq!(other_api.verify(at).await.unwrap_err(), Rejection::WrongAudience);
    let other_issuer =
        verifier(&p, Policy { issuer: "https://id.example.org".into(), ..policy(&p, Some(acme.clone()), "viewer") });
    assert_eq!(other_issuer.verify(at).await.unwrap_err(), Rejection::WrongIssuer);

    // An ID token is not an access token, whatever it says.
    let id_token = body["id_token"].as_str().unwrap();
    assert_eq!(v.verify(id_token).await.unwrap_err(), Rejection::NotAnAccessToken);
    // A changed payload does not verify.
    let mut parts: Vec<String> = at.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].chars().rev().collect();
    assert_eq!(v.verify(&parts.join(".")).await.unwrap_err(), Rejection::BadSignature);
    assert_eq!(v.verify("not a token").await.unwrap_err(), Rejection::BadSignature);
}

/// A token of another provider (its own keys, the same issuer name and client id even) names a
/// key this provider does not publish.
#[tokio::test]
async fn a_token_of_another_provider_is_refused() {
    let p = Provider::start().await;
    let other = Provider::start().await;
    let (_, body) = sign_in(&other).await;
    let v = verifier(
        &p,
        Policy { audiences: vec![other.client_id.clone()], issuer: other.issuer.clone(), ..policy(&p, None, "viewer") },
    );
    assert_eq!(v.verify(body["access_token"].as_str().unwrap()).await.unwrap_err(), Rejection::UnknownKey);
}

/// After a rotation the provider signs with a key the verifier's cached JWKS lacks: it
/// fetches the JWKS again and accepts the token, and still accepts the tokens of the old key.
#[tokio::test]
async fn the_verifier_follows_a_key_rotation() {
    let p = Provider::start().await;
    let v = verifier(&p, policy(&p, None, "viewer"));
    let (_, before) = sign_in(&p).await;
    let old = before["access_token"].as_str().unwrap().to_owned();
    v.verify(&old).await.unwrap();

    tokens::rotate_signing_keys(&p.t.db, &p.state.master_key, &KeyRotationPolicy::default()).await.unwrap();
    p.state.keys.reload().await.unwrap();
    let (_, after) = sign_in(&p).await;
    let new = after["access_token"].as_str().unwrap();
    assert_ne!(crate::flow::header(new)["kid"], crate::flow::header(&old)["kid"]);
    v.verify(new).await.unwrap();
    v.verify(&old).await.unwrap();
}

/// The telemetry endpoint in front of the verifier: 202 with who sent the reading for an
/// access token, the same 401 with `WWW-Authenticate` for an ID token and for no token.
#[tokio::test]
async fn the_telemetry_endpoint_accepts_access_tokens_only() {
    let p = Provider::start().await;
    let (_, body) = sign_in(&p).await;
    let api = crate::satellite_api::telemetry_base(verifier(&p, policy(&p, None, "viewer"))).await;
    let post = |bearer: Option<&str>| {
        let mut req = p.http().post(format!("{api}/telemetry")).json(&serde_json::json!({ "celsius": 21.5 }));
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        req.send()
    };
    let accepted = post(body["access_token"].as_str()).await.unwrap();
    assert_eq!(accepted.status(), 202);
    let echoed: serde_json::Value = accepted.json().await.unwrap();
    assert_eq!(echoed["received"]["celsius"], 21.5);
    for bearer in [body["id_token"].as_str(), None] {
        let refused = post(bearer).await.unwrap();
        assert_eq!(refused.status(), 401);
        assert_eq!(refused.headers()["www-authenticate"], r#"Bearer error="invalid_token""#);
    }
}

/// An API registered for resource indicators (RFC 8707) checks `aud` against its own
/// identifier: the token the client asked for it passes; the client's plain token, and a token
/// for another API, do not.
#[tokio::test]
async fn the_verifier_accepts_only_tokens_meant_for_its_api() {
    use laventecare_auth::clients::resources::{self, ResourceRequest};
    let p = Provider::start().await;
    let acme = crate::mfa::tenant_id(&p, "acme").await;
    for identifier in ["https://telemetry.acme.example/", "https://billing.acme.example/"] {
        let req = ResourceRequest {
            identifier: identifier.into(),
            name: identifier.into(),
            scopes: vec!["telemetry:write".into()],
            client_ids: vec![p.client_id.clone()],
        };
        resources::register(&p.t.db, &laventecare_auth::db::audit::Actor::system(), acme, req).await.unwrap();
    }
    let (_, body) = sign_in(&p).await;
    let plain = body["access_token"].as_str().unwrap().to_owned();
    // The seeded code flow named no API; a fresh authorization that names both does.
    let browser = crate::flow::Browser::new(&p);
    let (verifier_secret, challenge) = crate::flow::pkce();
    let mut url =
        url::Url::parse(&crate::flow::authorize_url(&p, &challenge, &[("scope", "openid telemetry:write")])).unwrap();
    url.query_pairs_mut()
        .append_pair("resource", "https://telemetry.acme.example/")
        .append_pair("resource", "https://billing.acme.example/");
    let step = browser.sign_in_through(url.as_str(), &p.email, crate::flow::PASSWORD).await;
    let code = step.param("code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", crate::flow::REDIRECT),
        ("code_verifier", verifier_secret.as_str()),
        ("resource", "https://telemetry.acme.example/"),
    ];
    let (status, body) = p.token(&form).await;
    assert_eq!(status, 200, "{body}");
    let for_telemetry = body["access_token"].as_str().unwrap().to_owned();
    let (_, body) = p
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
            ("resource", "https://billing.acme.example/"),
        ])
        .await;
    let for_billing = body["access_token"].as_str().unwrap().to_owned();

    let telemetry = verifier(
        &p,
        Policy {
            audiences: vec!["https://telemetry.acme.example/".into()],
            ..policy(&p, Some(acme.to_string()), "viewer")
        },
    );
    let who = telemetry.verify(&for_telemetry).await.unwrap();
    assert_eq!(who.scope, "telemetry:write");
    assert_eq!(telemetry.verify(&plain).await.unwrap_err(), Rejection::WrongAudience, "the client's own token");
    assert_eq!(telemetry.verify(&for_billing).await.unwrap_err(), Rejection::WrongAudience, "another API's token");
}
