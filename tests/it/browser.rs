//! Headless Chromium (Debian's `chromium` + `chromium-driver`, driven over WebDriver by
//! fantoccini) through the real hosted pages.

use std::sync::{Arc, Mutex};

use crate::chrome::Chrome;
use crate::flow::{PASSWORD, Provider, pkce};

/// A relying party on loopback that records what arrives at its callback.
pub async fn relying_party() -> (String, Arc<Mutex<Option<String>>>) {
    let seen = Arc::new(Mutex::new(None));
    let store = seen.clone();
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(move |axum::extract::RawQuery(q): axum::extract::RawQuery| {
            let store = store.clone();
            async move {
                *store.lock().unwrap() = q;
                axum::response::Html("<h1 id=done>Signed in to the app</h1>")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/callback"), seen)
}

/// What the relying party at `callback` does with the code it received: redeems it at the
/// token endpoint (a 200 is required) and returns the token response.
async fn redeem(
    p: &Provider,
    client: &laventecare_auth::clients::CreatedClient,
    code: &str,
    callback: &str,
    verifier: &str,
) -> serde_json::Value {
    let res = p
        .http()
        .post(p.url("/token"))
        .basic_auth(&client.client_id, Some(client.client_secret.as_ref().unwrap().expose()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", callback),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// A person signs in through the login and consent pages in Chromium; the app receives a
/// code that the token endpoint accepts.
#[tokio::test]
async fn chromium_signs_in_through_the_pages() {
    let p = Provider::start().await;
    let (callback, seen) = relying_party().await;
    let client = p
        .client(laventecare_auth::clients::ClientRequest {
            name: "Browser App".into(),
            grants: vec!["authorization_code".into()],
            redirect_uris: vec![callback.clone()],
            ..Default::default()
        })
        .await;
    let (verifier, challenge) = pkce();
    let mut url = url::Url::parse(&p.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.client_id)
        .append_pair("redirect_uri", &callback)
        .append_pair("scope", "openid email")
        .append_pair("state", "xyz")
        .append_pair("nonce", "nnn")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");

    let chrome = Chrome::start().await;
    chrome.c().goto(url.as_str()).await.unwrap();
    assert_eq!(chrome.c().title().await.unwrap(), "Sign in · LaventeCare");
    // Labels are tied to their inputs (accessibility).
    chrome.wait_for("label[for=email]").await;
    chrome.wait_for("input#email").await.send_keys(&p.email).await.unwrap();
    chrome.wait_for("input#password").await.send_keys(PASSWORD).await.unwrap();
    chrome.wait_for("button[type=submit]").await.click().await.unwrap();
    chrome.wait_for("button[value=allow]").await.click().await.unwrap();
    chrome.wait_for("#done").await;
    let landed = chrome.c().current_url().await.unwrap();
    assert!(landed.as_str().starts_with(&callback), "{landed}");
    chrome.close().await;

    let query = seen.lock().unwrap().clone().unwrap();
    let params: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    assert_eq!(params["state"], "xyz");
    let body = redeem(&p, &client, &params["code"], &callback, &verifier).await;
    let id = crate::flow::claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["nonce"], "nnn");
    assert_eq!(id["tenant"], "acme");
}

/// The pages' cookies as Chromium stores them (HttpOnly, SameSite=Lax, path /), and their
/// security headers.
#[tokio::test]
async fn chromium_sees_safe_cookies_and_headers() {
    let p = Provider::start().await;
    let (_, challenge) = pkce();
    let url = crate::flow::authorize_url(&p, &challenge, &[]);
    let chrome = Chrome::start().await;
    chrome.c().goto(&url).await.unwrap();
    chrome.wait_for("input#email").await;
    let cookies = chrome.c().get_all_cookies().await.unwrap();
    let session = cookies.iter().find(|c| c.name() == "lca_session").expect("a session cookie");
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(session.same_site(), Some(tower_sessions::cookie::SameSite::Lax));
    assert_eq!(session.path(), Some("/"));
    // JavaScript on the page cannot read it.
    let visible = chrome.c().execute("return document.cookie", vec![]).await.unwrap();
    assert!(!visible.as_str().unwrap_or("").contains("lca_session"));
    chrome.close().await;

    // The same page's headers.
    let res = p.http().get(&url).send().await.unwrap();
    let login = res.headers()["location"].to_str().unwrap().to_owned();
    let cookie = res.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let page = p.http().get(p.url(&login)).header("cookie", &cookie).send().await.unwrap();
    let h = page.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
}

/// With an https issuer the cookie is `__Host-`, `Secure`, and a login replaces the session id.
#[tokio::test]
async fn https_cookies_and_a_new_session_id_on_login() {
    use tower::ServiceExt;
    let t = crate::support::TestDb::new().await;
    let state = t.state_with(&[("LCA_ISSUER", "https://id.example.com")]).await;
    t.tenant("acme").await;
    let hasher = laventecare_auth::identity::PasswordHasher::new();
    laventecare_auth::identity::create_user(&t.db, &hasher, "ann@example.com", PASSWORD).await.unwrap();
    let app = laventecare_auth::app(state);
    let get = axum::http::Request::get("/login").body(axum::body::Body::empty()).unwrap();
    let res = app.clone().oneshot(get).await.unwrap();
    assert_eq!(res.headers()["strict-transport-security"], "max-age=63072000", "HSTS on an https issuer");
    let set = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.starts_with("__Host-lca_session="), "{set}");
    for attr in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attr), "{attr} in {set}");
    }
    assert!(!set.contains("Domain="), "__Host- cookies have no Domain");
    let before = set.split(';').next().unwrap().to_owned();
    let html = String::from_utf8(axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
    let csrf = crate::flow::hidden(&html, "csrf");
    let body = format!("csrf={csrf}&req=&email=ann%40example.com&password={}", PASSWORD.replace(' ', "+"));
    let post = axum::http::Request::post("/login")
        .header("cookie", &before)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(body))
        .unwrap();
    let res = app.oneshot(post).await.unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    let after = res.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    assert_ne!(after, before, "signing in issues a new session id");
}

/// Issue #5, must-show 1: in Chromium, a person enrols TOTP from the account page (the key is
/// read off the page, the QR code is an inline SVG), signs out, signs in to an app with the
/// password and a code computed here, and the app's ID token says `amr` `otp`.
#[tokio::test]
async fn chromium_enrols_totp_and_signs_in_with_it() {
    let p = Provider::start().await;
    let (callback, seen) = relying_party().await;
    let client = p
        .client(laventecare_auth::clients::ClientRequest {
            name: "Browser App".into(),
            grants: vec!["authorization_code".into()],
            redirect_uris: vec![callback.clone()],
            ..Default::default()
        })
        .await;
    let chrome = Chrome::start().await;
    chrome.c().goto(&p.url("/account")).await.unwrap();
    chrome.wait_for("input#email").await.send_keys(&p.email).await.unwrap();
    chrome.wait_for("input#password").await.send_keys(PASSWORD).await.unwrap();
    chrome.wait_for("button[type=submit]").await.click().await.unwrap();
    chrome.wait_for("a#enrol").await.click().await.unwrap();
    chrome.wait_for(".qr svg").await;
    let secret = chrome.wait_for("#totp-secret").await.text().await.unwrap();
    chrome.wait_for("input#code").await.send_keys(&crate::flow::totp_code(&secret, 0)).await.unwrap();
    chrome.wait_for("button[type=submit]").await.click().await.unwrap();
    let codes = chrome.wait_for("#backup-codes").await.text().await.unwrap();
    assert_eq!(codes.lines().filter(|l| !l.trim().is_empty()).count(), 10, "{codes}");
    chrome.wait_for("a#continue").await.click().await.unwrap();
    chrome.wait_for("#backup-left").await;
    chrome.wait_for("button#sign-out").await.click().await.unwrap();
    chrome.wait_for_title("You are signed out · LaventeCare").await;

    let (verifier, challenge) = pkce();
    let mut url = url::Url::parse(&p.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.client_id)
        .append_pair("redirect_uri", &callback)
        .append_pair("scope", "openid email")
        .append_pair("state", "xyz")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    chrome.c().goto(url.as_str()).await.unwrap();
    chrome.wait_for("input#email").await.send_keys(&p.email).await.unwrap();
    chrome.wait_for("input#password").await.send_keys(PASSWORD).await.unwrap();
    chrome.wait_for("button[type=submit]").await.click().await.unwrap();
    // The enrolment used this step's code; the next step's is accepted (one step of skew).
    chrome.wait_for("input#code[autocomplete=one-time-code]").await;
    assert!(chrome.c().current_url().await.unwrap().path().starts_with("/login/mfa"));
    chrome.wait_for("input#code").await.send_keys(&crate::flow::totp_code(&secret, 1)).await.unwrap();
    chrome.wait_for("button[type=submit]").await.click().await.unwrap();
    chrome.wait_for("button[value=allow]").await.click().await.unwrap();
    chrome.wait_for("#done").await;
    chrome.close().await;

    let query = seen.lock().unwrap().clone().unwrap();
    let params: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let body = redeem(&p, &client, &params["code"], &callback, &verifier).await;
    let id = crate::flow::claims(body["id_token"].as_str().unwrap());
    let amr: Vec<&str> = id["amr"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert!(amr.contains(&"otp") && amr.contains(&"pwd"), "{amr:?}");
    assert_eq!(id["acr"], laventecare_auth::session::ACR_MFA);
}

/// A person connects a device in Chromium: opens the verification URI, signs in, types the
/// user code the device shows (lower case, no dash), approves; the device's poll gets tokens.
#[tokio::test]
async fn chromium_approves_a_device() {
    let p = Provider::start().await;
    let device = p
        .client(laventecare_auth::clients::ClientRequest {
            name: "Chromium Thermostat".into(),
            grants: vec!["device_code".into()],
            public: true,
            ..Default::default()
        })
        .await;
    let codes: serde_json::Value = p
        .http()
        .post(p.url("/device_authorization"))
        .form(&[("client_id", device.client_id.as_str()), ("scope", "openid")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let chrome = Chrome::start().await;
    chrome.c().goto(codes["verification_uri"].as_str().unwrap()).await.unwrap();
    chrome.wait_for("input#email").await.send_keys(&p.email).await.unwrap();
    chrome.wait_for("input#password").await.send_keys(PASSWORD).await.unwrap();
    chrome.wait_for("button[type=submit]").await.click().await.unwrap();
    let typed = codes["user_code"].as_str().unwrap().replace('-', "").to_lowercase();
    chrome.wait_for("label[for=user_code]").await;
    chrome.wait_for("input#user_code").await.send_keys(&typed).await.unwrap();
    chrome.wait_for("#device-continue").await.click().await.unwrap();
    let shown = chrome.wait_for("#device-user-code").await.text().await.unwrap();
    assert_eq!(shown, codes["user_code"].as_str().unwrap());
    assert_eq!(chrome.wait_for("#device-client").await.text().await.unwrap(), "Chromium Thermostat");
    chrome.wait_for("#device-approve").await.click().await.unwrap();
    chrome.wait_for_title("Device connected · LaventeCare").await;
    chrome.close().await;

    let res = p
        .http()
        .post(p.url("/token"))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", codes["device_code"].as_str().unwrap()),
            ("client_id", device.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(crate::flow::claims(body["access_token"].as_str().unwrap())["tenant"], "acme");
}
