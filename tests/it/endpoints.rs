//! UserInfo, introspection, revocation, client credentials and RP-initiated logout.

use crate::flow::{Browser, PASSWORD, POST_LOGOUT, Provider, Step, authorize_url, pkce, tokens};

/// UserInfo answers GET and POST (header or form body), gives claims by scope, and refuses
/// a missing, forged or revoked token with a Bearer challenge.
#[tokio::test]
async fn userinfo_get_post_and_refusals() {
    let p = Provider::start().await;
    let (_, body) = tokens(&p).await;
    let at = body["access_token"].as_str().unwrap();
    let http = p.http();
    let get: serde_json::Value =
        http.get(p.url("/userinfo")).bearer_auth(at).send().await.unwrap().json().await.unwrap();
    assert_eq!(get["email"], "ann@example.com");
    assert_eq!(get["preferred_username"], "ann@example.com");
    assert_eq!(get["tenant"], "acme");
    let post: serde_json::Value =
        http.post(p.url("/userinfo")).form(&[("access_token", at)]).send().await.unwrap().json().await.unwrap();
    assert_eq!(post, get);

    let none = http.get(p.url("/userinfo")).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert!(none.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let id_token = body["id_token"].as_str().unwrap();
    let wrong_typ = http.get(p.url("/userinfo")).bearer_auth(id_token).send().await.unwrap();
    assert_eq!(wrong_typ.status(), 401, "an ID token is not an access token");
    // Change a character well inside the signature (the last one may hold only padding bits).
    let mut forged = at.as_bytes().to_vec();
    let i = forged.len() - 10;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(http.get(p.url("/userinfo")).bearer_auth(&forged).send().await.unwrap().status(), 401);

    // Revoked access token.
    let res = http
        .post(p.url("/revoke"))
        .basic_auth(&p.client_id, Some(&p.client_secret))
        .form(&[("token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(http.get(p.url("/userinfo")).bearer_auth(at).send().await.unwrap().status(), 401);
}

/// Only the email scope gives the email claim.
#[tokio::test]
async fn userinfo_claims_follow_scope() {
    let p = Provider::start().await;
    let browser = Browser::new(&p);
    let (verifier, challenge) = pkce();
    let url = authorize_url(&p, &challenge, &[("scope", "openid")]);
    let url = url.replace("scope=openid+email+profile+offline_access&", "");
    let step = browser.sign_in_through(&url, &p.email, PASSWORD).await;
    let code = step.param("code").unwrap();
    let (_, body) = p.redeem(&code, &verifier).await;
    assert_eq!(body["scope"], "openid");
    let info: serde_json::Value = p
        .http()
        .get(p.url("/userinfo"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(info.get("email").is_none(), "{info}");
    assert!(info["sub"].is_string());
}

/// A client of another tenant learns nothing from introspection; the owner's client does.
#[tokio::test]
async fn introspection_stays_inside_the_tenant() {
    let p = Provider::start().await;
    let (_, body) = tokens(&p).await;
    let at = body["access_token"].as_str().unwrap();
    p.t.tenant("globex").await;
    let foreign = laventecare_auth::clients::create_client(
        &p.t.db,
        laventecare_auth::clients::ClientRequest {
            tenant: "globex".into(),
            name: "Globex API".into(),
            grants: vec!["client_credentials".into()],
            role: Some(laventecare_auth::vocabulary::Role::Viewer),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let res: serde_json::Value = p
        .http()
        .post(p.url("/introspect"))
        .basic_auth(&foreign.client_id, Some(foreign.client_secret.as_ref().unwrap().expose()))
        .form(&[("token", at)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(res, serde_json::json!({ "active": false }));
    let unauthenticated = p.http().post(p.url("/introspect")).form(&[("token", at)]).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
}

/// A service account gets an access token for its own tenant with its expanded role, and
/// no ID or refresh token.
#[tokio::test]
async fn client_credentials_for_a_service_account() {
    let p = Provider::start().await;
    let svc = p
        .client(laventecare_auth::clients::ClientRequest {
            name: "Nightly job".into(),
            grants: vec!["client_credentials".into()],
            role: Some(laventecare_auth::vocabulary::Role::Admin),
            auth_method: Some("client_secret_post".into()),
            ..Default::default()
        })
        .await;
    let secret = svc.client_secret.as_ref().unwrap().expose();
    let res = p
        .http()
        .post(p.url("/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", &svc.client_id), ("client_secret", secret)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body.get("id_token").is_none() && body.get("refresh_token").is_none());
    let claims = crate::flow::claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], svc.client_id.as_str());
    assert_eq!(claims["tenant"], "acme");
    assert_eq!(claims["roles"], serde_json::json!(["admin", "editor", "viewer"]));
    let (status, refused) = {
        let res = p
            .http()
            .post(p.url("/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &svc.client_id),
                ("client_secret", secret),
                ("scope", "openid"),
            ])
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json::<serde_json::Value>().await.unwrap())
    };
    assert_eq!((status, refused["error"].as_str()), (400, Some("invalid_scope")));

    // Only the registered authentication method works: this client's secret in the
    // Authorization header is refused, as is the seeded client's (client_secret_basic) in the
    // body.
    let basic = p
        .http()
        .post(p.url("/token"))
        .basic_auth(&svc.client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    assert_eq!(basic.json::<serde_json::Value>().await.unwrap()["error"], "invalid_client");
    let posted = p
        .http()
        .post(p.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("client_id", &p.client_id),
            ("client_secret", &p.client_secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 401);
    assert_eq!(posted.json::<serde_json::Value>().await.unwrap()["error"], "invalid_client");
}

/// RP-initiated logout: a valid hint and a registered URI redirect with the state and end the
/// session; an unregistered URI or a forged or `alg: none` hint get an error page; no
/// parameters get a confirmation page.
#[tokio::test]
async fn rp_initiated_logout() {
    let p = Provider::start().await;
    let (browser, body) = tokens(&p).await;
    let hint = body["id_token"].as_str().unwrap();
    let logout = |extra: &[(&str, &str)]| {
        let mut url = url::Url::parse(&p.url("/logout")).unwrap();
        url.query_pairs_mut().extend_pairs(extra);
        url.to_string()
    };

    // Missing parameters: a page asking to confirm, no redirect, still signed in.
    let page = browser.open(&logout(&[])).await;
    assert!(page.html().contains("Sign out?"));
    // Not registered: an error page.
    let bad = browser
        .open(&logout(&[("id_token_hint", hint), ("post_logout_redirect_uri", "https://evil.example.com/")]))
        .await;
    assert_eq!(bad.status(), 400);
    // Forged signature and alg none.
    let mut forged = hint.as_bytes().to_vec();
    let i = forged.len() - 10;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let parts: Vec<&str> = hint.split('.').collect();
    let none_header = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#)
    };
    let alg_none = format!("{none_header}.{}.", parts[1]);
    for h in [forged.as_str(), alg_none.as_str()] {
        let step = browser.open(&logout(&[("id_token_hint", h), ("post_logout_redirect_uri", POST_LOGOUT)])).await;
        let Step::Page { status, html, .. } = &step else { panic!("{step:?}") };
        assert_eq!(*status, 400);
        assert!(html.contains("id_token_hint"), "{html}");
    }
    // Still signed in after all of that: prompt=none gives a code.
    let (_, challenge) = pkce();
    assert!(browser.open(&authorize_url(&p, &challenge, &[("prompt", "none")])).await.param("code").is_some());

    // The real thing: redirect with state (URL-encoded), session over.
    let step = browser
        .open(&logout(&[("id_token_hint", hint), ("post_logout_redirect_uri", POST_LOGOUT), ("state", "a b&c")]))
        .await;
    assert!(step.left().as_str().starts_with(POST_LOGOUT));
    assert_eq!(step.param("state").as_deref(), Some("a b&c"));
    assert!(step.left().as_str().contains("state=a+b%26c"));
    let after = browser.open(&authorize_url(&p, &challenge, &[("prompt", "none")])).await;
    assert_eq!(after.param("error").as_deref(), Some("login_required"));
}

/// Confirming the logout page signs the user out and shows the signed-out page.
#[tokio::test]
async fn logout_confirmation_page() {
    let p = Provider::start().await;
    let (browser, _) = tokens(&p).await;
    let page = browser.open(&p.url("/logout")).await;
    let csrf = crate::flow::hidden(page.html(), "csrf");
    let done = browser.post("/logout", &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert!(done.html().contains("You are signed out"));
    let (_, challenge) = pkce();
    let after = browser.open(&authorize_url(&p, &challenge, &[("prompt", "none")])).await;
    assert_eq!(after.param("error").as_deref(), Some("login_required"));
    // A forged CSRF token is refused.
    let forged = browser.post("/logout", &[("csrf", "nope"), ("confirm", "yes")]).await;
    assert_eq!(forged.status(), 403);
}

/// A valid hint for someone else does not sign this user out without asking, and the
/// confirmation page keeps the redirect and state; a POST from the relying party becomes a GET.
#[tokio::test]
async fn logout_with_another_users_hint_asks_first() {
    let p = Provider::start().await;
    // Bob's ID token, obtained in his own browser.
    let hasher = laventecare_auth::identity::PasswordHasher::new();
    laventecare_auth::identity::create_user(&p.t.db, &hasher, "bob@example.com", PASSWORD).await.unwrap();
    laventecare_auth::tenancy::add_member(
        &p.t.db,
        "acme",
        "bob@example.com",
        laventecare_auth::vocabulary::Role::Viewer,
    )
    .await
    .unwrap();
    let bob = Browser::new(&p);
    let (verifier, challenge) = pkce();
    let step = bob.sign_in_through(&authorize_url(&p, &challenge, &[]), "bob@example.com", PASSWORD).await;
    let (_, bob_tokens) = p
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &step.param("code").unwrap()),
            ("redirect_uri", crate::flow::REDIRECT),
            ("code_verifier", &verifier),
        ])
        .await;
    let bob_hint = bob_tokens["id_token"].as_str().unwrap();

    let (ann, _) = tokens(&p).await;
    let mut url = url::Url::parse(&p.url("/logout")).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", bob_hint)
        .append_pair("post_logout_redirect_uri", POST_LOGOUT)
        .append_pair("state", "s1");
    let page = ann.open(url.as_str()).await;
    assert!(page.html().contains("Sign out?"), "asks instead of signing Ann out");
    let (_, challenge) = pkce();
    assert!(
        ann.open(&authorize_url(&p, &challenge, &[("prompt", "none")])).await.param("code").is_some(),
        "still signed in"
    );
    // Confirming goes back to the relying party with the state.
    let html = page.html();
    let done = ann
        .post(
            "/logout",
            &[
                ("csrf", &crate::flow::hidden(html, "csrf")),
                ("confirm", "yes"),
                ("client_id", &crate::flow::hidden(html, "client_id")),
                ("post_logout_redirect_uri", &crate::flow::hidden(html, "post_logout_redirect_uri")),
                ("state", &crate::flow::hidden(html, "state")),
            ],
        )
        .await;
    assert!(done.left().as_str().starts_with(POST_LOGOUT));
    assert_eq!(done.param("state").as_deref(), Some("s1"));

    // A relying party's POST is turned into a GET.
    let res =
        p.http().post(p.url("/logout")).form(&[("id_token_hint", bob_hint), ("state", "x")]).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(res.headers()["location"].to_str().unwrap().starts_with("/logout?id_token_hint="));
}

/// Introspection needs an authenticated confidential client; a multi-tenant client sees its
/// own tokens in the user's tenant; refresh token `exp` is the token's own.
#[tokio::test]
async fn introspection_callers() {
    let p = Provider::start().await;
    let (_, body) = tokens(&p).await;
    let at = body["access_token"].as_str().unwrap();
    let public = p
        .client(laventecare_auth::clients::ClientRequest {
            name: "SPA".into(),
            grants: vec!["authorization_code".into()],
            public: true,
            redirect_uris: vec![crate::flow::REDIRECT.into()],
            ..Default::default()
        })
        .await;
    let res = p
        .http()
        .post(p.url("/introspect"))
        .form(&[("token", at), ("client_id", &public.client_id)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "a public client cannot introspect");
    let rt = body["refresh_token"].as_str().unwrap();
    let v: serde_json::Value = p
        .http()
        .post(p.url("/introspect"))
        .basic_auth(&p.client_id, Some(&p.client_secret))
        .form(&[("token", rt), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["active"], true);
    let exp = v["exp"].as_i64().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(exp <= now + 30 * 86400 + 5, "the refresh token's own (30-day) expiry, not the family's");
    // Revocation ignores an unknown hint.
    let res = p
        .http()
        .post(p.url("/revoke"))
        .basic_auth(&p.client_id, Some(&p.client_secret))
        .form(&[("token", rt), ("token_type_hint", "something_else")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
