//! The authorization endpoint and the token endpoint refuse what they must, each the way the
//! specs say: an error page where the redirect URI is not trusted, an error at the redirect URI
//! once it is, RFC 6749 §5.2 JSON at the token endpoint.

use crate::flow::{Browser, PASSWORD, Provider, REDIRECT, Step, authorize_url, pkce};

fn url_with(p: &Provider, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&p.url("/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

/// An unregistered or missing redirect URI, or an unknown client, get an HTML error page and
/// no redirect anywhere.
#[tokio::test]
async fn untrusted_redirect_uri_gets_a_page_not_a_redirect() {
    let p = Provider::start().await;
    let (_, challenge) = pkce();
    let browser = Browser::new(&p);
    let base = [
        ("response_type", "code"),
        ("scope", "openid"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("client_id", &p.client_id), ("redirect_uri", "https://evil.example.com/callback")],
        vec![("client_id", &p.client_id), ("redirect_uri", "https://rp.example.com/callback/extra")],
        vec![("client_id", &p.client_id)],
        vec![("client_id", "no-such-client"), ("redirect_uri", REDIRECT)],
        vec![("redirect_uri", REDIRECT)],
    ];
    for extra in cases {
        let mut params = base.to_vec();
        params.extend(extra.iter().copied());
        let step = browser.open(&url_with(&p, &params)).await;
        let Step::Page { status, html, headers, .. } = &step else { panic!("redirected for {extra:?}: {step:?}") };
        assert_eq!(*status, 400, "{extra:?}");
        assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(html.contains("invalid") || html.contains("not registered"), "{html}");
        assert!(!html.contains("evil.example.com"));
    }
}

/// Malformed requests with a trusted redirect URI: the error goes back to the client with
/// `state` and `iss`.
#[tokio::test]
async fn bad_requests_go_back_to_the_client() {
    let p = Provider::start().await;
    let (_, challenge) = pkce();
    let browser = Browser::new(&p);
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("code_challenge_method", "plain")], "invalid_request"),
        (&[("response_type", "token")], "unsupported_response_type"),
        (&[("response_type", "code id_token")], "unsupported_response_type"),
        (&[("request", "eyJhbGciOiJub25lIn0.e30.")], "request_not_supported"),
        (&[("request_uri", "https://rp.example.com/req.jwt")], "request_uri_not_supported"),
        (&[("prompt", "none login")], "invalid_request"),
        (&[("max_age", "-1")], "invalid_request"),
        (&[("code_challenge", "too-short")], "invalid_request"),
        (&[("id_token_hint", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")], "invalid_request"),
    ];
    for (extra, error) in cases {
        // Later values win in our url builder only if the name is new: rebuild without dupes.
        let mut params: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", &p.client_id),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", "s t&1"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ];
        for (k, v) in extra.iter() {
            params.retain(|(name, _)| name != k);
            params.push((k, v));
        }
        let step = browser.open(&url_with(&p, &params)).await;
        assert_eq!(step.param("error").as_deref(), Some(*error), "{extra:?}: {step:?}");
        assert_eq!(step.param("state").as_deref(), Some("s t&1"), "state returned intact");
        assert_eq!(step.param("iss").as_deref(), Some(p.issuer.as_str()));
        let description = step.param("error_description").unwrap_or_default();
        assert!(description.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'));
        assert!(step.left().as_str().starts_with(REDIRECT));
    }
}

/// A public client must send PKCE; a confidential one too by default.
#[tokio::test]
async fn pkce_is_required() {
    let p = Provider::start().await;
    let public = p
        .client(laventecare_auth::clients::ClientRequest {
            name: "SPA".into(),
            grants: vec!["authorization_code".into()],
            public: true,
            redirect_uris: vec![REDIRECT.into()],
            ..Default::default()
        })
        .await;
    let browser = Browser::new(&p);
    for client_id in [public.client_id.as_str(), p.client_id.as_str()] {
        let step = browser
            .open(&url_with(
                &p,
                &[("response_type", "code"), ("client_id", client_id), ("redirect_uri", REDIRECT), ("scope", "openid")],
            ))
            .await;
        assert_eq!(step.param("error").as_deref(), Some("invalid_request"));
        assert!(step.param("error_description").unwrap().contains("PKCE"));
    }
}

/// A confidential client registered with `pkce_optional` may leave PKCE out (the OpenID
/// conformance suite does); a public client cannot be registered so, nor one without a login.
#[tokio::test]
async fn pkce_optional_for_a_confidential_client_only() {
    let p = Provider::start().await;
    let web = |public: bool, grants: &[&str]| laventecare_auth::clients::ClientRequest {
        tenant: "acme".into(),
        name: "Suite".into(),
        grants: grants.iter().map(|g| (*g).to_owned()).collect(),
        public,
        redirect_uris: vec![REDIRECT.into()],
        pkce_optional: true,
        ..Default::default()
    };
    let relaxed = p.client(web(false, &["authorization_code"])).await;
    assert!(!relaxed.require_pkce);
    let browser = Browser::new(&p);
    let step = browser
        .sign_in_through(
            &url_with(
                &p,
                &[
                    ("response_type", "code"),
                    ("client_id", &relaxed.client_id),
                    ("redirect_uri", REDIRECT),
                    ("scope", "openid"),
                ],
            ),
            &p.email,
            PASSWORD,
        )
        .await;
    let code = step.param("code").expect("a code without PKCE");
    let res = p
        .http()
        .post(p.url("/token"))
        .basic_auth(&relaxed.client_id, Some(relaxed.client_secret.as_ref().unwrap().expose()))
        .form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let service = laventecare_auth::clients::ClientRequest {
        role: Some(laventecare_auth::vocabulary::Role::Viewer),
        redirect_uris: vec![],
        ..web(false, &["client_credentials"])
    };
    for refused in [web(true, &["authorization_code"]), service] {
        let err = laventecare_auth::clients::create_client(&p.t.db, refused).await.unwrap_err();
        assert!(err.to_string().contains("pkce-optional"), "{err}");
    }
}

/// At the token endpoint: a wrong verifier, a missing verifier, a verifier with no challenge,
/// a wrong secret (401 + WWW-Authenticate), an unknown grant.
#[tokio::test]
async fn token_endpoint_refusals() {
    let p = Provider::start().await;
    let browser = Browser::new(&p);
    let (verifier, challenge) = pkce();

    // Wrong verifier: invalid_grant, and the code is spent.
    let step = browser.sign_in_through(&authorize_url(&p, &challenge, &[]), &p.email, PASSWORD).await;
    let code = step.param("code").unwrap();
    let (other_verifier, _) = pkce();
    let (status, body) = p.redeem(&code, &other_verifier).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let (status, _) = p.redeem(&code, &verifier).await;
    assert_eq!(status, 400, "a failed redemption burns the code");

    // Missing verifier.
    let step = browser.open(&authorize_url(&p, &challenge, &[])).await;
    let code = step.param("code").unwrap();
    let (status, body) =
        p.token(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));

    // Wrong client secret: 401 with a Basic challenge.
    let res = p
        .http()
        .post(p.url("/token"))
        .basic_auth(&p.client_id, Some("not-the-secret"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");

    // Unknown grant type, and a grant the client is not allowed.
    let (status, body) = p.token(&[("grant_type", "password"), ("username", "a"), ("password", "b")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unsupported_grant_type")));
    let (status, body) = p.token(&[("grant_type", "client_credentials")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unauthorized_client")));
    // A repeated parameter is refused (RFC 6749 §3.1).
    let (status, body) = p.token(&[("grant_type", "refresh_token"), ("grant_type", "refresh_token")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")));
}

/// prompt=none without a session: login_required at the redirect URI; with one, a code and
/// the same sub and auth_time.
#[tokio::test]
async fn prompt_none() {
    let p = Provider::start().await;
    let (verifier, challenge) = pkce();
    let fresh = Browser::new(&p);
    let step = fresh.open(&authorize_url(&p, &challenge, &[("prompt", "none")])).await;
    assert_eq!(step.param("error").as_deref(), Some("login_required"));
    assert_eq!(step.param("state").as_deref(), Some("st-123"));

    let (browser, first) = crate::flow::tokens(&p).await;
    let id = crate::flow::claims(first["id_token"].as_str().unwrap());
    let step = browser.open(&authorize_url(&p, &challenge, &[("prompt", "none")])).await;
    let code = step.param("code").expect("a code without any page");
    let (_, second) = p.redeem(&code, &verifier).await;
    let id2 = crate::flow::claims(second["id_token"].as_str().unwrap());
    assert_eq!(id2["sub"], id["sub"]);
    assert_eq!(id2["auth_time"], id["auth_time"]);

    // id_token_hint with the same user: still silent, same sub.
    let hint = first["id_token"].as_str().unwrap();
    let step = browser.open(&authorize_url(&p, &challenge, &[("prompt", "none"), ("id_token_hint", hint)])).await;
    assert!(step.param("code").is_some(), "{step:?}");
}

/// prompt=login and max_age force a new login, and the new auth_time is strictly later.
#[tokio::test]
async fn prompt_login_and_max_age_force_a_new_login() {
    let p = Provider::start().await;
    let (browser, first) = crate::flow::tokens(&p).await;
    let first_auth = crate::flow::claims(first["id_token"].as_str().unwrap())["auth_time"].as_i64().unwrap();
    for extra in [[("prompt", "login")], [("max_age", "0")]] {
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let (verifier, challenge) = pkce();
        let step = browser.open(&authorize_url(&p, &challenge, &extra)).await;
        assert!(step.html().contains("action=\"/login\""), "{extra:?} asks for the password again");
        let step = browser.login(&step, &p.email, PASSWORD).await;
        let code = step.param("code").unwrap();
        let (_, body) = p.redeem(&code, &verifier).await;
        let auth = crate::flow::claims(body["id_token"].as_str().unwrap())["auth_time"].as_i64().unwrap();
        assert!(auth > first_auth, "{extra:?}: {auth} > {first_auth}");
    }
    // max_age large enough: no login page.
    let (_, challenge) = pkce();
    let step = browser.open(&authorize_url(&p, &challenge, &[("max_age", "3600")])).await;
    assert!(step.param("code").is_some());
}

/// An expired code is invalid_grant.
#[tokio::test]
async fn expired_code_is_refused() {
    let p = Provider::start_with(&[("LCA_CODE_TTL_SECS", "1")]).await;
    let browser = Browser::new(&p);
    let (verifier, challenge) = pkce();
    let step = browser.sign_in_through(&authorize_url(&p, &challenge, &[]), &p.email, PASSWORD).await;
    let code = step.param("code").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, body) = p.redeem(&code, &verifier).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

/// A wrong password shows the same message as an unknown email, and no code is issued.
#[tokio::test]
async fn wrong_password_and_unknown_email_look_the_same() {
    let p = Provider::start().await;
    let (_, challenge) = pkce();
    let mut bodies = Vec::new();
    for (email, password) in [(p.email.as_str(), "wrong password here"), ("nobody@example.com", PASSWORD)] {
        let browser = Browser::new(&p);
        let page = browser.open(&authorize_url(&p, &challenge, &[])).await;
        let step = browser.login(&page, email, password).await;
        let Step::Page { status, html, .. } = &step else { panic!("{step:?}") };
        assert_eq!(*status, 200);
        assert!(html.contains("The email address or password is incorrect"), "{html}");
        let normalised = html
            .replace(email, "EMAIL")
            .replace(&crate::flow::hidden(html, "csrf"), "CSRF")
            .replace(&crate::flow::hidden(html, "req"), "REQ");
        bodies.push(normalised);
    }
    assert_eq!(bodies[0], bodies[1]);
}

/// The user denies consent: access_denied at the redirect URI.
#[tokio::test]
async fn denied_consent() {
    let p = Provider::start().await;
    let browser = Browser::new(&p);
    let (_, challenge) = pkce();
    let page = browser.open(&authorize_url(&p, &challenge, &[])).await;
    let consent = browser.login(&page, &p.email, PASSWORD).await;
    let step = browser.consent(&consent, false).await;
    assert_eq!(step.param("error").as_deref(), Some("access_denied"));
}

/// A user with no membership in the client's tenant gets access_denied, audited, no code.
#[tokio::test]
async fn non_member_is_denied_and_audited() {
    let p = Provider::start().await;
    let hasher = laventecare_auth::identity::PasswordHasher::new();
    laventecare_auth::identity::create_user(&p.t.db, &hasher, "outsider@example.com", PASSWORD).await.unwrap();
    let browser = Browser::new(&p);
    let (_, challenge) = pkce();
    let step = browser.sign_in_through(&authorize_url(&p, &challenge, &[]), "outsider@example.com", PASSWORD).await;
    assert_eq!(step.param("error").as_deref(), Some("access_denied"));
    assert!(step.param("code").is_none());
    let mut owner = p.t.owner().await;
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'authorization.denied_no_membership'")
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert_eq!(n, 1);
    let codes: i64 =
        sqlx::query_scalar("SELECT count(*) FROM authorization_codes").fetch_one(&mut owner).await.unwrap();
    assert_eq!(codes, 0);
}

/// response_mode=form_post answers with a page that posts the code to the client, under a
/// CSP that allows no inline script.
#[tokio::test]
async fn form_post_response_mode() {
    let p = Provider::start().await;
    let browser = Browser::new(&p);
    let (_, challenge) = pkce();
    let step = browser
        .sign_in_through(&authorize_url(&p, &challenge, &[("response_mode", "form_post")]), &p.email, PASSWORD)
        .await;
    let Step::Page { status, html, headers, .. } = &step else { panic!("{step:?}") };
    assert_eq!(*status, 200);
    assert!(html.contains(&format!("action=\"{REDIRECT}\"")));
    assert!(crate::flow::hidden(html, "code").len() >= 43);
    assert_eq!(crate::flow::hidden(html, "state"), "st-123");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("form-action 'self' https://rp.example.com"), "{csp}");
}

/// Codes, refresh tokens and client secrets carry more than 128 bits.
#[tokio::test]
async fn secrets_have_enough_entropy() {
    let p = Provider::start().await;
    let (_, body) = crate::flow::tokens(&p).await;
    let rt = body["refresh_token"].as_str().unwrap();
    // 43 base64url characters = 256 bits.
    assert!(rt.len() >= 43 && p.client_secret.len() >= 43);
}

/// display, ui_locales, claims_locales, acr_values, claims and unknown parameters are
/// accepted without changing the outcome.
#[tokio::test]
async fn optional_parameters_are_accepted() {
    let p = Provider::start().await;
    let (_, challenge) = pkce();
    let extra = [
        ("display", "page"),
        ("ui_locales", "nl-NL en"),
        ("claims_locales", "en"),
        ("acr_values", "urn:laventecare:acr:pwd"),
        ("claims", r#"{"userinfo":{"email":{"essential":true}}}"#),
        ("login_hint", "ann@example.com"),
        ("something_new", "ignored"),
    ];
    let browser = Browser::new(&p);
    let page = browser.open(&authorize_url(&p, &challenge, &extra)).await;
    assert!(page.html().contains("value=\"ann@example.com\""), "login_hint fills in the email");
    let step = browser.login(&page, &p.email, PASSWORD).await;
    let step = browser.consent(&step, true).await;
    assert!(step.param("code").is_some(), "{step:?}");
}

/// A multi-tenant client: a user in two tenants chooses one (or names it with `tenant=`), and
/// the tokens are for that tenant with that tenant's role; a user's choice is limited to their
/// own memberships.
#[tokio::test]
async fn multi_tenant_client_lets_the_user_choose() {
    let p = Provider::start().await;
    p.t.tenant("globex").await;
    laventecare_auth::tenancy::add_member(&p.t.db, "globex", &p.email, laventecare_auth::vocabulary::Role::Viewer)
        .await
        .unwrap();
    let shared = p
        .client(laventecare_auth::clients::ClientRequest {
            name: "Family App".into(),
            grants: vec!["authorization_code".into()],
            redirect_uris: vec![REDIRECT.into()],
            multi_tenant: true,
            ..Default::default()
        })
        .await;
    let url = |challenge: &str, extra: &[(&str, &str)]| {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", shared.client_id.as_str()),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ];
        params.extend_from_slice(extra);
        url_with(&p, &params)
    };
    let redeem = |code: String, verifier: String| {
        let p = &p;
        let shared = &shared;
        async move {
            let res = p
                .http()
                .post(p.url("/token"))
                .basic_auth(&shared.client_id, Some(shared.client_secret.as_ref().unwrap().expose()))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", &verifier),
                ])
                .send()
                .await
                .unwrap();
            let body: serde_json::Value = res.json().await.unwrap();
            crate::flow::claims(body["access_token"].as_str().unwrap())
        }
    };

    let browser = Browser::new(&p);
    let (verifier, challenge) = pkce();
    let page = browser.open(&url(&challenge, &[])).await;
    let choice = browser.login(&page, &p.email, PASSWORD).await;
    let html = choice.html();
    assert!(
        html.contains("Choose an organisation") && html.contains("value=\"acme\"") && html.contains("value=\"globex\"")
    );
    let csrf = crate::flow::hidden(html, "csrf");
    let req = crate::flow::hidden(html, "req");
    // A tenant the user does not belong to cannot be chosen.
    let refused = browser.post("/select-tenant", &[("csrf", &csrf), ("req", &req), ("tenant", "initech")]).await;
    assert_eq!(refused.status(), 400);
    let consent = browser.post("/select-tenant", &[("csrf", &csrf), ("req", &req), ("tenant", "globex")]).await;
    let step = browser.consent(&consent, true).await;
    let claims = redeem(step.param("code").unwrap(), verifier).await;
    assert_eq!(claims["tenant"], "globex");
    assert_eq!(claims["roles"], serde_json::json!(["viewer"]));

    // The hint picks the tenant without asking.
    let (verifier, challenge) = pkce();
    let step = browser.open(&url(&challenge, &[("tenant", "acme")])).await;
    let step = if step.status() == 200 { browser.consent(&step, true).await } else { step };
    let claims = redeem(step.param("code").unwrap(), verifier).await;
    assert_eq!(claims["tenant"], "acme");
    assert_eq!(claims["roles"], serde_json::json!(["editor", "viewer"]));
}

/// Unknown scopes are ignored (OIDC Core §3.1.2.1); a known scope the client may not have is
/// invalid_scope.
#[tokio::test]
async fn unknown_scopes_are_ignored_known_ones_enforced() {
    let p = Provider::start().await;
    let mut owner = p.t.owner().await;
    sqlx::query("UPDATE clients SET scopes = '{openid,email}' WHERE client_id = $1")
        .bind(&p.client_id)
        .execute(&mut owner)
        .await
        .unwrap();
    let browser = Browser::new(&p);
    let (verifier, challenge) = pkce();
    let step = browser.open(&authorize_url(&p, &challenge, &[("scope", "openid offline_access")])).await;
    assert_eq!(step.param("error").as_deref(), Some("invalid_scope"));
    let step = browser
        .sign_in_through(&authorize_url(&p, &challenge, &[("scope", "openid address x:y")]), &p.email, PASSWORD)
        .await;
    let (_, body) = p.redeem(&step.param("code").unwrap(), &verifier).await;
    assert_eq!(body["scope"], "openid");
}

/// A single-tenant client's request cannot be pointed at another tenant through the tenant
/// choice page.
#[tokio::test]
async fn tenant_choice_is_refused_for_a_single_tenant_client() {
    let p = Provider::start().await;
    p.t.tenant("globex").await;
    let hasher = laventecare_auth::identity::PasswordHasher::new();
    laventecare_auth::identity::create_user(&p.t.db, &hasher, "mallory@example.com", PASSWORD).await.unwrap();
    laventecare_auth::tenancy::add_member(
        &p.t.db,
        "globex",
        "mallory@example.com",
        laventecare_auth::vocabulary::Role::Editor,
    )
    .await
    .unwrap();
    let browser = Browser::new(&p);
    let (_, challenge) = pkce();
    // Signed in (and denied: not a member of acme).
    let denied = browser.sign_in_through(&authorize_url(&p, &challenge, &[]), "mallory@example.com", PASSWORD).await;
    assert_eq!(denied.param("error").as_deref(), Some("access_denied"));
    // A live request (prompt=login shows the login page), then a forged tenant choice.
    let page = browser.open(&authorize_url(&p, &challenge, &[("prompt", "login")])).await;
    let csrf = crate::flow::hidden(page.html(), "csrf");
    let req = crate::flow::hidden(page.html(), "req");
    let forged = browser.post("/select-tenant", &[("csrf", &csrf), ("req", &req), ("tenant", "globex")]).await;
    assert_eq!(forged.status(), 400);
    let step = browser.login(&page, "mallory@example.com", PASSWORD).await;
    assert_eq!(step.param("error").as_deref(), Some("access_denied"));
}

/// A form POST to /authorize is answered with a 303 to the same request as GET, where the
/// session cookie is sent even from another site.
#[tokio::test]
async fn authorize_post_becomes_get() {
    let p = Provider::start().await;
    let res = p
        .http()
        .post(p.url("/authorize"))
        .form(&[("response_type", "code"), ("client_id", p.client_id.as_str()), ("scope", "openid email")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("/authorize?response_type=code&client_id="), "{location}");
    assert!(location.contains("scope=openid+email"));
    // A repeated parameter is an error page, not a guess.
    let res = p.http().get(format!("{}/authorize?client_id=a&client_id=b", p.issuer)).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
}
