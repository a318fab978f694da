//! Passkeys (issue 15, must-show 1) in headless Chromium with a virtual authenticator
//! (WebDriver's `addVirtualAuthenticator`): registered from the account page, signing in alone
//! through a code flow (`amr` says so), replayed and removed; an admin who must have a second
//! factor enrols a passkey in TOTP's place and signs in with it after the password. And the
//! ceremonies' endpoints over plain HTTP: what they refuse. Adding and removing one is mailed
//! to the account.

use laventecare_auth::clients::{ClientRequest, CreatedClient};
use laventecare_auth::db::audit::Actor;
use laventecare_auth::html::text::EN;
use laventecare_auth::vocabulary::Role;
use laventecare_auth::{identity, tenancy};

use crate::chrome::Chrome;
use crate::flow::{PASSWORD, Provider, claims, pkce};
use crate::mfa::{audit_rows, tenant_id, user_id};

const ACR_MFA: &str = "urn:laventecare:acr:mfa";

/// A client of acme whose callback is a loopback relying party; its callback URL and what the
/// callback received.
async fn app(p: &Provider) -> (CreatedClient, String, std::sync::Arc<std::sync::Mutex<Option<String>>>) {
    let (callback, seen) = crate::browser::relying_party().await;
    let client = p
        .client(ClientRequest {
            name: "Passkey App".into(),
            grants: vec!["authorization_code".into()],
            redirect_uris: vec![callback.clone()],
            ..Default::default()
        })
        .await;
    (client, callback, seen)
}

/// The authorization request of `client` (PKCE with `challenge`).
fn authorize_url(p: &Provider, client: &CreatedClient, callback: &str, challenge: &str) -> String {
    let mut url = url::Url::parse(&p.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.client_id)
        .append_pair("redirect_uri", callback)
        .append_pair("scope", "openid email")
        .append_pair("state", "st")
        .append_pair("nonce", "nn")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    url.into()
}

/// Consents in Chromium, then redeems the code the callback received: the ID token's claims.
async fn consent_and_redeem(
    p: &Provider,
    chrome: &Chrome,
    client: &CreatedClient,
    callback: &str,
    seen: &std::sync::Mutex<Option<String>>,
    verifier: &str,
) -> serde_json::Value {
    chrome.wait_for("button[value=allow]").await.click().await.unwrap();
    chrome.wait_for("#done").await;
    let query = seen.lock().unwrap().take().unwrap();
    let params: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let res = p
        .http()
        .post(p.url("/token"))
        .basic_auth(&client.client_id, Some(client.client_secret.as_ref().unwrap().expose()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", params["code"].as_str()),
            ("redirect_uri", callback),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    claims(body["id_token"].as_str().unwrap())
}

/// Types the email and password on the login page Chromium shows.
async fn password_step(chrome: &Chrome, email: &str) {
    chrome.wait_for("input#email").await.send_keys(email).await.unwrap();
    chrome.wait_for("input#password").await.send_keys(PASSWORD).await.unwrap();
    chrome.wait_for("form[action='/login'] button[type=submit]").await.click().await.unwrap();
}

/// In a signed-in page: begins a sign-in with a passkey alone for the authorization request
/// `arguments[0]` (its tenant offers it), has the authenticator answer, posts the answer twice
/// (the second time under a fresh CSRF token and a new ceremony, since the first signs in),
/// and returns both HTTP statuses and the second body.
const REPLAY: &str = r#"
const done = arguments[arguments.length - 1];
const decode = (t) => Uint8Array.from(atob(t.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((t.length + 3) % 4)), (c) => c.charCodeAt(0)).buffer;
const encode = (b) => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const post = (url, body) => fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
const csrfOf = async () => { const html = await (await fetch("/account")).text(); return html.match(/name="csrf" value="([^"]+)"/)[1]; };
(async () => {
  let csrf = await csrfOf();
  const req = arguments[0];
  const options = await (await post("/login/passkey/begin", { csrf, req })).json();
  const key = options.publicKey;
  key.challenge = decode(key.challenge);
  const c = await navigator.credentials.get({ publicKey: key });
  const credential = {
    id: c.id, rawId: encode(c.rawId), type: c.type, extensions: {},
    response: {
      authenticatorData: encode(c.response.authenticatorData),
      clientDataJSON: encode(c.response.clientDataJSON),
      signature: encode(c.response.signature),
      userHandle: encode(c.response.userHandle),
    },
  };
  const first = await post("/login/passkey/finish", { csrf, req, credential });
  csrf = await csrfOf();
  await post("/login/passkey/begin", { csrf, req });
  const second = await post("/login/passkey/finish", { csrf, req, credential });
  done([first.status, second.status, await second.text()]);
})().catch((e) => done(["error", String(e)]));
"#;

/// Must-show 1: a passkey registered on the account page signs in alone through a code flow
/// (the tenant offers it); the ID token's `amr` is `hwk`, `user`, `mfa` and its `acr` the MFA
/// one. The account page lists it with its last use; a replayed assertion is refused; once
/// removed (audited) it no longer signs in.
#[tokio::test]
async fn a_passkey_from_the_account_page_signs_in_alone() {
    let sink = crate::smtp::Sink::start().await;
    let url = sink.url();
    let p = Provider::start_on_localhost(&[("LCA_SMTP_URL", &url), ("LCA_MAIL_FROM", "auth@example.com")]).await;
    let acme = tenant_id(&p, "acme").await;
    tenancy::set_passkey_sign_in(&p.t.db, &Actor::operator("test"), "acme", true).await.unwrap();
    let (client, callback, seen) = app(&p).await;
    let chrome = Chrome::start().await;
    let authenticator = chrome.add_virtual_authenticator().await;

    // A password sign-in, then a passkey from the account page.
    chrome.c().goto(&p.url("/account")).await.unwrap();
    password_step(&chrome, &p.email).await;
    chrome.wait_for("#passkeys-none").await;
    chrome.wait_for("input#passkey-name").await.send_keys("Work laptop").await.unwrap();
    chrome.wait_for("#passkey-add").await.click().await.unwrap();
    let line = chrome.wait_for("#passkeys li span").await.text().await.unwrap();
    assert!(line.starts_with("Work laptop · added"), "{line}");
    assert!(line.ends_with("not used yet"), "{line}");
    let held = chrome.virtual_credentials(&authenticator).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["isResidentCredential"], true, "a discoverable credential: {held:?}");
    let registered = audit_rows(&p, acme, "passkey.registered").await;
    assert_eq!(registered.len(), 1);
    assert_eq!(registered[0].details["name"], "Work laptop");
    assert_eq!(registered[0].details["first_factor"], true);
    // The owner is told, by mail.
    let mail = sink.nth_to(&p.email, 1).await;
    assert_eq!(mail.header("Subject").as_deref(), Some(EN.mail_passkey_added_subject));
    assert!(mail.body().contains("Work laptop"), "{}", mail.body());

    // Signed out, a code flow signs in with the passkey alone: no email, no password.
    chrome.c().delete_all_cookies().await.unwrap();
    let (verifier, challenge) = pkce();
    chrome.c().goto(&authorize_url(&p, &client, &callback, &challenge)).await.unwrap();
    chrome.wait_for("#passkey-sign-in").await.click().await.unwrap();
    let id = consent_and_redeem(&p, &chrome, &client, &callback, &seen, &verifier).await;
    assert_eq!(id["amr"], serde_json::json!(["hwk", "user", "mfa"]), "{id}");
    assert_eq!(id["acr"], ACR_MFA);
    assert_eq!(id["sub"], user_id(&p, &p.email).await.to_string());
    let signed_in = audit_rows(&p, acme, "login.success").await;
    assert_eq!(signed_in.last().unwrap().details["method"], "passkey");

    // The account page shows its last use (the passkey session passed MFA: no step-up).
    chrome.c().goto(&p.url("/account")).await.unwrap();
    let line = chrome.wait_for("#passkeys li span").await.text().await.unwrap();
    assert!(line.contains("last used"), "{line}");

    // One assertion signs in once: a request of acme is waiting at the login page.
    let (_, challenge) = pkce();
    let again = format!("{}&prompt=login", authorize_url(&p, &client, &callback, &challenge));
    chrome.c().goto(&again).await.unwrap();
    chrome.wait_for("#passkey-sign-in").await;
    let login = chrome.c().current_url().await.unwrap();
    let req = login.query_pairs().find(|(k, _)| k == "req").map(|(_, v)| v.into_owned()).unwrap();
    chrome.c().goto(&p.url("/account")).await.unwrap();
    chrome.wait_for("#passkeys").await;
    let replay = chrome.c().execute_async(REPLAY, vec![req.into()]).await.unwrap();
    assert_eq!(replay[0], 200, "{replay}");
    assert_eq!(replay[1], 400, "{replay}");
    assert!(replay[2].as_str().unwrap().contains("not accepted"), "{replay}");

    // Removed, audited, and no longer a way in.
    chrome.c().goto(&p.url("/account")).await.unwrap();
    chrome.wait_for("form[action='/account/passkeys/remove'] button").await.click().await.unwrap();
    chrome.wait_for("#passkeys-none").await;
    let removed = audit_rows(&p, acme, "passkey.removed").await;
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].details["name"], "Work laptop");
    assert_eq!(removed[0].target_id, registered[0].target_id);
    let mail = sink.nth_to(&p.email, 2).await;
    assert_eq!(mail.header("Subject").as_deref(), Some(EN.mail_passkey_removed_subject));
    chrome.c().delete_all_cookies().await.unwrap();
    let (_, challenge) = pkce();
    chrome.c().goto(&authorize_url(&p, &client, &callback, &challenge)).await.unwrap();
    chrome.wait_for("#passkey-sign-in").await.click().await.unwrap();
    let problem = chrome.wait_for("#passkey-problem:not([hidden])").await.text().await.unwrap();
    assert!(problem.contains("not accepted"), "{problem}");
    chrome.close().await;
}

/// Must-show 1: an admin (who must pass a second factor) enrols a passkey in TOTP's place at
/// the first sign-in, which completes it; next time the password and the passkey satisfy
/// mandatory MFA for the admin pages and for tokens (`amr` `pwd`, `hwk`, `user`; `acr` MFA).
#[tokio::test]
async fn an_admin_satisfies_mandatory_mfa_with_a_passkey() {
    let p = Provider::start_on_localhost(&[]).await;
    let hasher = identity::PasswordHasher::new();
    identity::create_user(&p.t.db, &hasher, "root@example.com", PASSWORD).await.unwrap();
    tenancy::add_member(&p.t.db, "acme", "root@example.com", Role::Admin).await.unwrap();
    let (client, callback, seen) = app(&p).await;
    let chrome = Chrome::start().await;
    chrome.add_virtual_authenticator().await;

    // The first sign-in must enrol a second factor: a passkey instead of TOTP completes it.
    chrome.c().goto(&p.url("/admin")).await.unwrap();
    password_step(&chrome, "root@example.com").await;
    chrome.wait_for("#totp-secret").await;
    chrome.wait_for("input#passkey-name").await.send_keys("Security key").await.unwrap();
    chrome.wait_for("#passkey-add").await.click().await.unwrap();
    chrome.wait_for("#organisations").await;
    assert_eq!(chrome.c().current_url().await.unwrap().path(), "/admin");

    // Next time: the password, then the passkey (the page has no code form: no TOTP).
    chrome.c().delete_all_cookies().await.unwrap();
    chrome.c().goto(&p.url("/admin")).await.unwrap();
    password_step(&chrome, "root@example.com").await;
    chrome.wait_for("#passkey-use").await.click().await.unwrap();
    chrome.wait_for("#organisations").await;
    assert!(!chrome.source().await.contains("id=\"code\""));

    // Tokens for the admin say how they signed in.
    let (verifier, challenge) = pkce();
    chrome.c().goto(&authorize_url(&p, &client, &callback, &challenge)).await.unwrap();
    let id = consent_and_redeem(&p, &chrome, &client, &callback, &seen, &verifier).await;
    assert_eq!(id["amr"], serde_json::json!(["pwd", "hwk", "user"]), "{id}");
    assert_eq!(id["acr"], ACR_MFA);
    // Its last use is the sign-in's.
    let mut conn = p.t.owner().await;
    let used: Vec<Option<chrono::DateTime<chrono::Utc>>> =
        sqlx::query_scalar("SELECT last_used_at FROM passkeys").fetch_all(&mut conn).await.unwrap();
    assert!(matches!(used.as_slice(), [Some(_)]), "{used:?}");
    // The admin surface counts it as the member's second factor.
    let mut tx = p.t.db.tenant(tenant_id(&p, "acme").await).await.unwrap();
    let members = laventecare_auth::db::memberships::members(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
    let root = members.iter().find(|m| m.1 == "root@example.com").unwrap();
    assert!(root.3, "{members:?}");
    assert!(!members.iter().find(|m| m.1 == p.email).unwrap().3);
    chrome.close().await;
}

/// The CSRF token of a page, from its passkey button or its forms.
fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

/// The ceremonies' endpoints over plain HTTP: signing in with a passkey alone only where the
/// tenant offers it; an answer without a ceremony, a forged one, one without CSRF or not in
/// JSON are refused (the forged one spends the ceremony); on an IP-address issuer there are no
/// passkeys at all.
#[tokio::test]
async fn passkey_endpoints_refuse_what_they_did_not_begin() {
    let p = Provider::start_on_localhost(&[]).await;
    let acme = tenant_id(&p, "acme").await;
    let http = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let (_, challenge) = pkce();
    let url = crate::flow::authorize_url(&p, &challenge, &[]);
    let login = http.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(login.contains("name=\"password\""), "the login page");
    assert!(!login.contains("passkey-sign-in"), "not offered until the tenant turns it on");
    let csrf = csrf_of(&login);
    let req = crate::flow::hidden(&login, "req");
    let begin = |body: serde_json::Value| http.post(p.url("/login/passkey/begin")).json(&body).send();
    let finish = |body: serde_json::Value| http.post(p.url("/login/passkey/finish")).json(&body).send();

    // Acme does not offer it yet.
    let res = begin(serde_json::json!({ "csrf": csrf, "req": req })).await.unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("not offered"), "{body}");
    tenancy::set_passkey_sign_in(&p.t.db, &Actor::operator("test"), "acme", true).await.unwrap();
    let login = http.get(p.url(&format!("/login?req={req}"))).send().await.unwrap().text().await.unwrap();
    assert!(login.contains("passkey-sign-in"));
    let changed = audit_rows(&p, acme, "tenant.sign_in_policy_changed").await;
    assert_eq!(changed[0].details["passkey_sign_in"], true);

    // No CSRF token, or not JSON: refused before anything begins.
    assert_eq!(begin(serde_json::json!({ "csrf": "forged" })).await.unwrap().status(), 403);
    let form = http.post(p.url("/login/passkey/begin")).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(form.status(), 415);

    let forged = serde_json::json!({
        "csrf": csrf,
        "req": req,
        "credential": {
            "id": "AAAA", "rawId": "AAAA", "type": "public-key", "extensions": {},
            "response": { "authenticatorData": "AAAA", "clientDataJSON": "AAAA", "signature": "AAAA", "userHandle": null },
        },
    });
    // An answer with no ceremony begun.
    let res = finish(forged.clone()).await.unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("too long"), "{body}");

    // A ceremony: discoverable (no credentials listed), user verification required.
    let res = begin(serde_json::json!({ "csrf": csrf, "req": req })).await.unwrap();
    assert_eq!(res.status(), 200);
    let options: serde_json::Value = res.json().await.unwrap();
    assert_eq!(options["publicKey"]["rpId"], "localhost", "{options}");
    assert_eq!(options["publicKey"]["userVerification"], "required");
    assert!(options["publicKey"]["allowCredentials"].as_array().is_none_or(Vec::is_empty), "{options}");
    assert!(options.get("mediation").is_none());
    // It finishes only for the request it began for (whose tenant offered it).
    let mut elsewhere = forged.clone();
    elsewhere["req"] = "".into();
    let body: serde_json::Value = finish(elsewhere).await.unwrap().json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("too long"), "{body}");
    let res = begin(serde_json::json!({ "csrf": csrf, "req": req })).await.unwrap();
    assert_eq!(res.status(), 200);
    // A forged answer fails, audited, and spends the ceremony: the next answer finds none.
    let res = finish(forged.clone()).await.unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("not accepted"), "{body}");
    let failures = audit_rows(&p, acme, "login.failure").await;
    let failure = failures.last().unwrap();
    assert_eq!(failure.details["method"], "passkey");
    // Who a forged answer claims to be is no actor of the row.
    assert_eq!(failure.actor_id, None);
    let body: serde_json::Value = finish(forged).await.unwrap().json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("too long"), "{body}");

    // A second factor needs a sign-in halfway: without one, the page is sent to log in.
    let res = http.post(p.url("/login/mfa/passkey/begin")).json(&serde_json::json!({ "csrf": csrf })).send().await;
    let body: serde_json::Value = res.unwrap().json().await.unwrap();
    assert_eq!(body["next"], "/login");
    // Registering needs a signed-in user too.
    let res = http
        .post(p.url("/account/passkeys/begin"))
        .json(&serde_json::json!({ "csrf": csrf, "name": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["next"], "/login");

    // Discovery lists the methods `amr` can show.
    let discovery = |p: &Provider| p.http().get(p.url("/.well-known/openid-configuration")).send();
    let doc: serde_json::Value = discovery(&p).await.unwrap().json().await.unwrap();
    assert_eq!(doc["amr_values_supported"], serde_json::json!(["pwd", "otp", "hwk", "swk", "user", "mfa"]));

    // An issuer on an IP address has no WebAuthn relying party: no passkeys anywhere.
    let ip = Provider::start().await;
    let doc: serde_json::Value = discovery(&ip).await.unwrap().json().await.unwrap();
    assert_eq!(doc["amr_values_supported"], serde_json::json!(["pwd", "otp"]));
    let http = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let login = http.get(crate::flow::authorize_url(&ip, &challenge, &[])).send().await.unwrap().text().await;
    let csrf = csrf_of(&login.unwrap());
    let res = http.post(ip.url("/login/passkey/begin")).json(&serde_json::json!({ "csrf": csrf })).send().await;
    assert_eq!(res.unwrap().status(), 404);
}
