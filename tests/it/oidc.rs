//! The `openidconnect` crate as a real relying party: discovery, code + PKCE through the hosted
//! pages, ID token validation (JWKS signature, nonce, audience, at_hash), userinfo, refresh,
//! introspection and revocation.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreProviderMetadata, CoreRevocableToken,
    CoreTokenIntrospectionResponse,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IntrospectionUrl, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenIntrospectionResponse, TokenResponse,
};

use crate::flow::{Browser, PASSWORD, Provider, REDIRECT};

fn http() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The whole web-app login, as a standard relying-party library sees it.
#[tokio::test]
async fn openidconnect_relying_party_end_to_end() {
    let p = Provider::start().await;
    let http = http();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(p.issuer.clone()).unwrap(), &http).await.unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(p.client_id.clone()),
        Some(ClientSecret::new(p.client_secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap())
    .set_introspection_url(IntrospectionUrl::new(p.url("/introspect")).unwrap());

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();

    // Through the hosted login and consent pages.
    let browser = Browser::new(&p);
    let login = browser.open(auth_url.as_str()).await;
    assert!(login.html().contains("Acme Web"), "the login page names the client");
    let consent = browser.login(&login, &p.email, PASSWORD).await;
    assert!(consent.html().contains("See your email address"));
    let back = browser.consent(&consent, true).await;
    assert_eq!(back.param("state").as_deref(), Some(csrf.secret().as_str()));
    assert_eq!(back.param("iss").as_deref(), Some(p.issuer.as_str()), "RFC 9207 iss");
    let code = back.param("code").unwrap();
    assert!(code.len() >= 43, "a code carries 256 bits");

    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = client.id_token_verifier();
    let claims: &CoreIdTokenClaims = id_token.claims(&verifier, &nonce).unwrap();
    // at_hash binds the access token to the ID token.
    let expected_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected_hash));
    assert_eq!(claims.audiences()[0].as_str(), p.client_id);
    assert!(claims.auth_time().is_some());
    let raw = crate::flow::claims(&id_token.to_string());
    assert_eq!(raw["tenant"], "acme");
    assert_eq!(raw["roles"], serde_json::json!(["editor", "viewer"]));
    assert_eq!(raw["amr"], serde_json::json!(["pwd"]));
    assert!(raw["sid"].is_string());
    // The access token is an RFC 9068 JWT for the same tenant.
    let at = tokens.access_token().secret();
    assert_eq!(crate::flow::header(at)["typ"], "at+jwt");
    let at_claims = crate::flow::claims(at);
    assert_eq!(at_claims["client_id"], p.client_id.as_str());
    assert_eq!(at_claims["tid"], raw["tid"]);
    assert_eq!(at_claims["roles"], serde_json::json!(["editor", "viewer"]));

    // UserInfo.
    let info: openidconnect::core::CoreUserInfoClaims =
        client.user_info(tokens.access_token().clone(), None).unwrap().request_async(&http).await.unwrap();
    assert_eq!(info.subject(), claims.subject());
    assert_eq!(info.email().map(|e| e.as_str()), Some("ann@example.com"));

    // Refresh: new tokens, same auth_time, no nonce.
    let refresh = tokens.refresh_token().expect("a refresh token").clone();
    let refreshed = client.exchange_refresh_token(&refresh).unwrap().request_async(&http).await.unwrap();
    let new_id = crate::flow::claims(&refreshed.id_token().unwrap().to_string());
    assert_eq!(new_id["auth_time"], raw["auth_time"]);
    assert_eq!(new_id["sub"], raw["sub"]);
    assert!(new_id.get("nonce").is_none());
    assert_ne!(refreshed.refresh_token().unwrap().secret(), refresh.secret(), "rotated");

    // Introspection sees the new access token; revocation of the refresh token ends it.
    let live: CoreTokenIntrospectionResponse =
        client.introspect(refreshed.access_token()).request_async(&http).await.unwrap();
    assert!(live.active());
    assert_eq!(live.client_id().map(|c| c.as_str()), Some(p.client_id.as_str()));
    // oauth2's revoke_token insists on an https endpoint (RFC 7009 §2), which a loopback test
    // server is not; the request it would send is this one.
    let _: CoreRevocableToken = refreshed.refresh_token().unwrap().into();
    let revoked = p
        .http()
        .post(p.url("/revoke"))
        .basic_auth(&p.client_id, Some(&p.client_secret))
        .form(&[("token", refreshed.refresh_token().unwrap().secret().as_str()), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let dead: CoreTokenIntrospectionResponse =
        client.introspect(refreshed.access_token()).request_async(&http).await.unwrap();
    assert!(!dead.active(), "revoking the refresh token ends its family's access tokens");
    let again = client.exchange_refresh_token(refreshed.refresh_token().unwrap()).unwrap().request_async(&http).await;
    assert!(again.is_err(), "a revoked refresh token does not refresh");
}

/// Discovery lists what the conformance suite looks for.
#[tokio::test]
async fn discovery_document_is_complete() {
    let p = Provider::start().await;
    let res = p.http().get(p.url("/.well-known/openid-configuration")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["cache-control"].to_str().unwrap().contains("max-age"));
    let d: serde_json::Value = res.json().await.unwrap();
    assert_eq!(d["issuer"], p.issuer.as_str());
    for field in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "introspection_endpoint",
        "revocation_endpoint",
        "end_session_endpoint",
    ] {
        assert!(d[field].as_str().unwrap().starts_with(&p.issuer), "{field}");
    }
    let has = |field: &str, v: &str| d[field].as_array().unwrap().iter().any(|x| x == v);
    assert!(has("scopes_supported", "openid") && has("scopes_supported", "offline_access"));
    assert!(has("response_types_supported", "code"));
    assert!(!has("response_types_supported", "id_token"), "no implicit flow");
    assert!(has("subject_types_supported", "public"));
    assert!(has("id_token_signing_alg_values_supported", "RS256"));
    assert!(has("token_endpoint_auth_methods_supported", "client_secret_basic"));
    assert!(has("code_challenge_methods_supported", "S256") && !has("code_challenge_methods_supported", "plain"));
    assert!(has("claims_supported", "tid") && has("claims_supported", "email"));
    assert_eq!(d["request_uri_parameter_supported"], false);

    let jwks = p.http().get(p.url("/jwks")).send().await.unwrap();
    assert!(jwks.headers()["cache-control"].to_str().unwrap().contains("max-age"));
    let jwks: serde_json::Value = jwks.json().await.unwrap();
    let algs: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["alg"].as_str().unwrap()).collect();
    for alg in ["RS256", "ES256", "EdDSA"] {
        assert!(algs.contains(&alg), "{alg} in {algs:?}");
    }
    assert!(jwks["keys"].as_array().unwrap().iter().all(|k| k.get("d").is_none()), "no private parts");
}
