//! NUL in every text field that reaches PostgreSQL, which refuses NUL in `text`: unhandled,
//! one is a 500. Each is a 400 (or the endpoint's own 4xx), and nothing is stored.
//! (In process, for `req`, the login email, the token `code`, the revoked token and the device
//! page's query: `http::control_characters_are_refused_at_the_edge`.)

use base64::Engine as _;
use laventecare_auth::vocabulary::Role;
use serde_json::json;

use super::{assert_clean, get_request, raw, send, signed_in, stored};
use crate::api::service_token;
use crate::flow::{PASSWORD, Provider};

/// Forms and queries of the protocol endpoints and the pages, one NUL at a time: email and
/// password, client id and secret (in the body and in Basic credentials), scope, code,
/// verifier, refresh token, device code, user code, tenant slug, `req`, logout's client id.
#[tokio::test]
async fn nul_in_forms_queries_and_credentials() {
    let p = Provider::start().await;
    let (browser, csrf) = signed_in(&p).await;
    let before = stored(&p).await;
    let id = p.client_id.as_str();
    let secret = p.client_secret.as_str();
    let form = |path: &str, body: String| (path.to_owned(), body);
    let forms = [
        form("/login", format!("csrf={csrf}&req=&email=ann%40example.com&password=a%00{PASSWORD}")),
        form("/token", format!("grant_type=client_credentials&client_id={id}%00&client_secret={secret}")),
        form("/token", format!("grant_type=client_credentials&client_id={id}&client_secret={secret}%00")),
        form("/token", format!("grant_type=client_credentials&client_id={id}&client_secret={secret}&scope=open%00id")),
        form("/token", format!("grant_type=authorization_code%00&client_id={id}&client_secret={secret}")),
        form(
            "/token",
            format!("grant_type=authorization_code&code=abc&code_verifier=%00&redirect_uri=x&client_id={id}"),
        ),
        form("/token", format!("grant_type=refresh_token&refresh_token=ab%00c&client_id={id}&client_secret={secret}")),
        form(
            "/token",
            format!("grant_type=urn:ietf:params:oauth:grant-type:device_code&device_code=%00&client_id={id}"),
        ),
        form("/introspect", format!("token=abc&token_type_hint=access%00token&client_id={id}&client_secret={secret}")),
        form("/introspect", format!("token=a%00bc&client_id={id}&client_secret={secret}")),
        form("/revoke", format!("token=abc&client_id={id}%00")),
        form("/device_authorization", format!("client_id={id}%00&scope=openid")),
        form("/device_authorization", format!("client_id={id}&scope=openid%00")),
        form("/device", format!("csrf={csrf}&user_code=BCDF-%00GHJ")),
        form("/device/decide", format!("csrf={csrf}&user_code=BCDF-GHJK%00&decision=approve")),
        form("/consent", format!("csrf={csrf}&req=%00&decision=allow")),
        form("/select-tenant", format!("csrf={csrf}&req=x&tenant=ac%00me")),
        form("/recover", format!("csrf={csrf}&token=a%00b&password={PASSWORD}")),
        form("/forgot", format!("csrf={csrf}&email=ann%00%40example.com")),
        form("/reset", format!("csrf={csrf}&token=a%00b&password={PASSWORD}")),
        form("/invite", format!("csrf={csrf}&token=a%00b&password={PASSWORD}")),
        form("/verify-email", format!("csrf={csrf}&token=a%00b")),
        form("/account/profile", format!("csrf={csrf}&name=Ann%00")),
        form("/account/password", format!("csrf={csrf}&current=%00&new=a+long+new+password")),
        form("/logout", format!("csrf={csrf}&confirm=yes&client_id={id}%00")),
        form("/authorize", format!("client_id={id}&tenant=ac%00me")),
    ];
    for (path, body) in forms {
        let req =
            browser.post(p.url(&path)).header("content-type", "application/x-www-form-urlencoded").body(body.clone());
        let (status, _, text) = send(req).await;
        // `/authorize` by POST is sent on as GET, where it is refused (below).
        if path != "/authorize" {
            assert_eq!(status, 400, "{path} {body}: {text}");
        }
        assert_clean(&format!("{path} {body}"), status.max(400), &text);
    }
    for query in [
        "/authorize?client_id=x&tenant=ac%00me",
        "/authorize?client_id=x&login_hint=ann%00%40example.com",
        "/logout?client_id=ab%00",
        "/consent?req=%00",
        "/select-tenant?req=%00",
        "/recover?token=%00",
        "/reset?token=%00",
        "/invite?token=%00",
        "/verify-email?token=%00",
        "/login/mfa?req=%00",
        "/api/v1/members?cursor=%00",
    ] {
        let (status, _, text) = send(browser.get(p.url(query))).await;
        assert!(status == 400 || status == 401, "{query}: {status} {text}");
        assert_clean(query, status, &text);
    }
    // Basic credentials are form-encoded inside base64 (RFC 6749 §2.3.1): the decoder is ours.
    let basic = |id: &str, secret: &str| {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
    };
    for auth in
        [basic(&format!("{id}%00"), secret), basic(id, &format!("{secret}%00")), basic(&format!("{id}\0"), secret)]
    {
        for path in ["/token", "/introspect", "/revoke"] {
            let req = p
                .http()
                .post(p.url(path))
                .header("authorization", &auth)
                .form(&[("grant_type", "client_credentials"), ("token", "abc")]);
            let (status, _, text) = send(req).await;
            assert!(status == 400 || status == 401, "{path} {auth}: {status} {text}");
            assert_clean(path, status, &text);
        }
    }
    // A NUL in a header value is the HTTP parser's 400.
    let answer = raw(&p, &get_request(&p, "/userinfo", "Authorization: Bearer a\0b\r\n")).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(stored(&p).await, before);
}

/// The admin API: NUL in JSON names, emails, slugs and URIs, and in the path's client id and
/// tenant slug, and the admin pages' tenant slug.
#[tokio::test]
async fn nul_in_the_admin_api_and_pages() {
    let p = Provider::start().await;
    let admin = service_token(&p, "acme", Role::Admin).await;
    let before = stored(&p).await;
    let http = p.http();
    let client = format!("/api/v1/clients/{}", p.client_id);
    let bodies = [
        ("/api/v1/members", reqwest::Method::POST, json!({ "email": "n\u{0}w@example.com", "role": "viewer" })),
        (
            "/api/v1/clients",
            reqwest::Method::POST,
            json!({ "name": "j\u{0}b", "grant_types": ["client_credentials"], "role": "viewer" }),
        ),
        (
            "/api/v1/clients",
            reqwest::Method::POST,
            json!({ "name": "web", "grant_types": ["authorization_code"], "redirect_uris": ["https://rp.example/c\u{0}b"] }),
        ),
        (client.as_str(), reqwest::Method::PATCH, json!({ "name": "A\u{0}" })),
        (
            "/api/v1/platform/tenants",
            reqwest::Method::POST,
            json!({ "slug": "glo\u{0}bex", "name": "G", "admin_email": "h@g.example" }),
        ),
        ("/api/v1/settings", reqwest::Method::PATCH, json!({ "n\u{0}": true })),
    ];
    for (path, method, body) in bodies {
        let (status, _, text) = send(http.request(method, p.url(path)).bearer_auth(&admin).json(&body)).await;
        assert!(status == 400 || status == 404, "{path} {body}: {status} {text}");
        assert_clean(path, status, &text);
    }
    for (method, path) in [
        (reqwest::Method::GET, format!("{client}%00")),
        (reqwest::Method::PATCH, format!("{client}%00")),
        (reqwest::Method::DELETE, format!("{client}%00")),
        (reqwest::Method::POST, format!("{client}%00/rotate-secret")),
        (reqwest::Method::GET, "/api/v1/platform/tenants/ac%00me".to_owned()),
        (reqwest::Method::POST, "/api/v1/platform/tenants/ac%00me/suspend".to_owned()),
        (reqwest::Method::GET, "/admin/t/ac%00me".to_owned()),
        (reqwest::Method::GET, "/admin/t/ac%00me/members".to_owned()),
    ] {
        let mut req = http.request(method.clone(), p.url(&path)).bearer_auth(&admin);
        if method == reqwest::Method::PATCH {
            req = req.json(&json!({ "name": "x" }));
        }
        let (status, _, text) = send(req).await;
        assert_eq!(status, 400, "{method} {path}: {text}");
        assert_clean(&path, status, &text);
    }
    assert_eq!(stored(&p).await, before);
}
