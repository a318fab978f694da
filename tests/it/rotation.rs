//! `keys rotate`: tokens signed before a rotation still validate through the JWKS, and new
//! tokens carry the new kid; checked by the openidconnect relying party.

use openidconnect::core::{CoreClient, CoreIdToken, CoreProviderMetadata};
use openidconnect::{ClientId, ClientSecret, IssuerUrl, Nonce};

use crate::flow::{Provider, header, tokens};
use crate::support::{cli, json_out};

async fn verify(p: &Provider, id_token: &str) -> Result<(), String> {
    let http = openidconnect::reqwest::ClientBuilder::new().build().unwrap();
    // A fresh discovery: the relying party reads the JWKS as it is now.
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(p.issuer.clone()).unwrap(), &http).await.unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(p.client_id.clone()),
        Some(ClientSecret::new(p.client_secret.clone())),
    );
    let token: CoreIdToken = id_token.parse().unwrap();
    token.claims(&client.id_token_verifier(), &Nonce::new("n-456".into())).map(|_| ()).map_err(|e| e.to_string())
}

/// Before and after a rotation (through the CLI, as an operator would run it).
#[tokio::test]
async fn tokens_from_before_a_rotation_still_validate() {
    let p = Provider::start().await;
    let (_, before) = tokens(&p).await;
    let old = before["id_token"].as_str().unwrap().to_owned();
    let old_kid = header(&old)["kid"].as_str().unwrap().to_owned();
    verify(&p, &old).await.unwrap();

    let report = json_out(&cli(&p.t, &["keys", "rotate", "--json"], ""));
    assert_eq!(report["created"].as_array().unwrap().len(), 3);
    assert!(report["retired"].as_array().unwrap().iter().any(|k| k["kid"] == old_kid.as_str()));
    // The running server reads the new keys (its reloader does this every minute).
    p.state.keys.reload().await.unwrap();

    let (_, after) = tokens(&p).await;
    let new = after["id_token"].as_str().unwrap();
    let new_kid = header(new)["kid"].as_str().unwrap().to_owned();
    let new_kid = new_kid.as_str();
    assert_ne!(new_kid, old_kid, "new tokens use the new key");
    assert!(report["created"].as_array().unwrap().iter().any(|k| k["kid"] == new_kid));
    verify(&p, new).await.unwrap();
    verify(&p, &old).await.expect("the retired key is still in the JWKS");

    let jwks: serde_json::Value = p.http().get(p.url("/jwks")).send().await.unwrap().json().await.unwrap();
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert!(kids.contains(&old_kid.as_str()) && kids.contains(&new_kid), "{kids:?}");
    // And the access token from before still introspects as active.
    assert!(p.introspect(before["access_token"].as_str().unwrap()).await);
}
