//! DPoP (RFC 9449) at the token endpoint and UserInfo, with proofs made here by josekit: a
//! nonce is asked for, tokens are bound to the proof's key (`cnf.jkt`, `token_type` DPoP), a
//! replayed proof is refused, a bound refresh token needs a proof of its key, a bound access
//! token is refused as a Bearer token and taken with a proof bound to it (`ath`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::alg::ec::EcKeyPair;
use josekit::jws::{ES256, JwsHeader};
use josekit::jwt::JwtPayload;
use serde_json::{Value, json};

use crate::flow::{Browser, PASSWORD, Provider, authorize_url, claims, pkce};

/// A device's or a browser app's DPoP key.
struct Key(EcKeyPair);

impl Key {
    fn new() -> Self {
        Key(ES256.generate_key_pair().unwrap())
    }

    fn jkt(&self) -> String {
        laventecare_auth::tokens::keys::thumbprint(self.0.to_jwk_public_key().as_ref()).unwrap()
    }

    /// A proof for `htm` `htu`, with `nonce` and the hash of `token` (`ath`) if given.
    fn proof(&self, htm: &str, htu: &str, nonce: Option<&str>, token: Option<&str>) -> String {
        let mut header = JwsHeader::new();
        header.set_token_type("dpop+jwt");
        header.set_jwk(self.0.to_jwk_public_key());
        let mut claims = json!({
            "jti": uuid::Uuid::now_v7().to_string(),
            "htm": htm,
            "htu": htu,
            "iat": chrono::Utc::now().timestamp(),
        });
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        if let Some(t) = token {
            claims["ath"] = json!(URL_SAFE_NO_PAD.encode(laventecare_auth::secrets::sha256(t.as_bytes())));
        }
        let payload = JwtPayload::from_map(claims.as_object().unwrap().clone()).unwrap();
        let signer = ES256.signer_from_jwk(&self.0.to_jwk_private_key()).unwrap();
        josekit::jwt::encode_with_signer(&payload, &header, &signer).unwrap()
    }
}

/// Posts `form` to the token endpoint as the seeded client with `proof` as its `DPoP` header:
/// (status, body, `DPoP-Nonce`).
async fn token(p: &Provider, form: &[(&str, &str)], proof: Option<&str>) -> (u16, Value, Option<String>) {
    let mut req = p.http().post(p.url("/token")).basic_auth(&p.client_id, Some(&p.client_secret)).form(form);
    if let Some(proof) = proof {
        req = req.header("DPoP", proof);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let nonce = res.headers().get("dpop-nonce").map(|v| v.to_str().unwrap().to_owned());
    (status, res.json().await.unwrap(), nonce)
}

/// A code of the seeded client and its verifier.
async fn code(p: &Provider) -> (String, String) {
    let (verifier, challenge) = pkce();
    let step = Browser::new(p).sign_in_through(&authorize_url(p, &challenge, &[]), &p.email, PASSWORD).await;
    (step.param("code").unwrap(), verifier)
}

#[tokio::test]
async fn tokens_are_bound_to_the_proofs_key_and_proofs_work_once() {
    let p = Provider::start().await;
    let key = Key::new();
    let htu = p.url("/token");
    let (code, verifier) = code(&p).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", crate::flow::REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];

    // No nonce: the answer asks for one (and the code is not spent).
    let (status, body, nonce) = token(&p, &form, Some(&key.proof("POST", &htu, None, None))).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("use_dpop_nonce")), "{body}");
    let nonce = nonce.expect("a DPoP-Nonce header");
    let (status, body, _) = token(&p, &form, Some(&key.proof("POST", &htu, Some("made-up"), None))).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("use_dpop_nonce")), "a nonce not ours: {body}");

    let proof = key.proof("POST", &htu, Some(&nonce), None);
    let (status, body, fresh) = token(&p, &form, Some(&proof)).await;
    assert_eq!(status, 200, "{body}");
    assert!(fresh.is_some(), "a fresh nonce with the tokens");
    assert_eq!(body["token_type"], "DPoP");
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&access)["cnf"]["jkt"], key.jkt());
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();

    // The same proof again, for a refresh: a replay.
    let refresh_form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
    let (status, body, _) = token(&p, &refresh_form, Some(&proof)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_dpop_proof")), "{body}");
    // A proof for another URI, of another method, or signed by another key.
    for bad in [
        key.proof("POST", &p.url("/userinfo"), Some(&nonce), None),
        key.proof("GET", &htu, Some(&nonce), None),
        "not.a.proof".to_owned(),
    ] {
        let (status, body, _) = token(&p, &refresh_form, Some(&bad)).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_dpop_proof")), "{body}");
    }
    // The refresh token is bound: nothing without a proof, nothing with another key's.
    let (status, body, _) = token(&p, &refresh_form, None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    let other = Key::new();
    let (status, body, _) = token(&p, &refresh_form, Some(&other.proof("POST", &htu, Some(&nonce), None))).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    // With its key: a new pair, still bound (and the refusals spent nothing).
    let (status, body, _) = token(&p, &refresh_form, Some(&key.proof("POST", &htu, Some(&nonce), None))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(claims(body["access_token"].as_str().unwrap())["cnf"]["jkt"], key.jkt());

    // UserInfo: not as a Bearer token; as DPoP with a proof of the key bound to this token.
    let userinfo = p.url("/userinfo");
    let res = p.http().get(&userinfo).bearer_auth(&access).send().await.unwrap();
    assert_eq!(res.status(), 401, "a bound token is no Bearer token");
    let ask = |proof: String| {
        let (p, access, userinfo) = (&p, access.clone(), userinfo.clone());
        async move {
            let res = p
                .http()
                .get(&userinfo)
                .header("Authorization", format!("DPoP {access}"))
                .header("DPoP", proof)
                .send()
                .await
                .unwrap();
            let challenge = res.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
            (res.status().as_u16(), challenge, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let good = key.proof("GET", &userinfo, None, Some(&access));
    let (status, _, body) = ask(good.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sub"], claims(&access)["sub"]);
    let (status, challenge, _) = ask(good).await;
    assert_eq!(status, 401, "replayed");
    assert!(challenge.is_some_and(|c| c.starts_with("DPoP error=\"invalid_dpop_proof\"")));
    let (status, _, _) = ask(key.proof("GET", &userinfo, None, None)).await;
    assert_eq!(status, 401, "no ath");
    let (status, _, _) = ask(other.proof("GET", &userinfo, None, Some(&access))).await;
    assert_eq!(status, 401, "another key");

    // Introspection tells a resource server the key.
    let res = p
        .http()
        .post(p.url("/introspect"))
        .basic_auth(&p.client_id, Some(&p.client_secret))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    let intro: Value = res.json().await.unwrap();
    assert_eq!(
        (intro["token_type"].clone(), intro["cnf"]["jkt"].clone()),
        (json!("DPoP"), json!(key.jkt())),
        "{intro}"
    );
}

/// Without a proof nothing changes: Bearer tokens, unbound families; discovery lists the
/// algorithms.
#[tokio::test]
async fn without_a_proof_tokens_are_bearer_tokens() {
    let p = Provider::start().await;
    let (code, verifier) = code(&p).await;
    let (status, body) = p.redeem(&code, &verifier).await;
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "Bearer");
    assert!(claims(body["access_token"].as_str().unwrap()).get("cnf").is_none());
    let doc: Value =
        p.http().get(p.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["dpop_signing_alg_values_supported"], json!(["ES256", "EdDSA", "RS256", "PS256"]));
}

/// A nonce of the provider's, from a token request refused for want of one.
async fn nonce(p: &Provider, key: &Key) -> String {
    let form = [("grant_type", "refresh_token"), ("refresh_token", "none")];
    let (_, _, nonce) = token(p, &form, Some(&key.proof("POST", &p.url("/token"), None, None))).await;
    nonce.unwrap()
}

/// A code of the seeded client whose authorization request carries `extra`.
async fn code_with(p: &Provider, extra: &[(&str, &str)]) -> (String, String) {
    let (verifier, challenge) = pkce();
    let step = Browser::new(p).sign_in_through(&authorize_url(p, &challenge, extra), &p.email, PASSWORD).await;
    (step.param("code").unwrap_or_else(|| panic!("{step:?}")), verifier)
}

/// RFC 9449 §10: `dpop_jkt` on the authorization request, or a proof at `/par`, binds the
/// code: only a proof of that key redeems it.
#[tokio::test]
async fn the_code_is_bound_by_dpop_jkt_or_a_proof_at_par() {
    let p = Provider::start().await;
    let (key, other) = (Key::new(), Key::new());
    let htu = p.url("/token");
    let nonce = nonce(&p, &key).await;
    let redeem = |code: String, verifier: String, proof: Option<String>| {
        let p = &p;
        async move {
            let form = [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", crate::flow::REDIRECT),
                ("code_verifier", verifier.as_str()),
            ];
            token(p, &form, proof.as_deref()).await
        }
    };
    let jkt = key.jkt();
    for (proof, why) in [(None, "no proof"), (Some(other.proof("POST", &htu, Some(&nonce), None)), "another key")] {
        let (code, verifier) = code_with(&p, &[("dpop_jkt", &jkt)]).await;
        let (status, body, _) = redeem(code, verifier, proof).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{why}: {body}");
    }
    let (code, verifier) = code_with(&p, &[("dpop_jkt", &jkt)]).await;
    let (status, body, _) = redeem(code, verifier, Some(key.proof("POST", &htu, Some(&nonce), None))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(claims(body["access_token"].as_str().unwrap())["cnf"]["jkt"], jkt);

    // Not a thumbprint: refused at the redirect URI.
    let (_, challenge) = pkce();
    let step = Browser::new(&p).open(&authorize_url(&p, &challenge, &[("dpop_jkt", "short")])).await;
    assert_eq!(step.param("error").as_deref(), Some("invalid_request"));

    // A proof at /par binds the code the same way.
    let (verifier, challenge) = pkce();
    let par = |proof: String| {
        let (p, challenge) = (&p, challenge.clone());
        async move {
            let form = [
                ("response_type", "code"),
                ("redirect_uri", crate::flow::REDIRECT),
                ("scope", "openid"),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ];
            let res = p
                .http()
                .post(p.url("/par"))
                .basic_auth(&p.client_id, Some(&p.client_secret))
                .header("DPoP", proof)
                .form(&form)
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = par(key.proof("POST", &p.url("/par"), None, None)).await;
    assert_eq!(status, 201, "{body}");
    let mut url = url::Url::parse(&p.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &p.client_id)
        .append_pair("request_uri", body["request_uri"].as_str().unwrap());
    let step = Browser::new(&p).sign_in_through(url.as_str(), &p.email, PASSWORD).await;
    let code = step.param("code").unwrap();
    let (status, body, _) = redeem(code, verifier, None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "bound at /par: {body}");
    let (status, body) = par(key.proof("POST", &p.url("/token"), None, None)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_dpop_proof")), "a proof for another URI: {body}");
}
