//! The device authorization grant (RFC 8628) through real HTTP: a device asks for codes and
//! polls the token endpoint, a person approves in the scripted browser.

use std::time::Duration;

use laventecare_auth::{clients, identity, tenancy};
use serde_json::Value;
use uuid::Uuid;

use crate::flow::{Browser, PASSWORD, Provider, Step, claims, hidden};
use crate::mfa::audit_rows;

/// A device client of `acme`: public, with the device and refresh grants.
pub async fn device_client(p: &Provider) -> String {
    p.client(clients::ClientRequest {
        name: "Acme Thermostat".into(),
        grants: vec!["device_code".into(), "refresh_token".into()],
        public: true,
        ..Default::default()
    })
    .await
    .client_id
}

/// `POST /device_authorization` as a public client.
pub async fn request_codes(p: &Provider, client_id: &str, scope: &str) -> (u16, Value) {
    let res = p
        .http()
        .post(p.url("/device_authorization"))
        .form(&[("client_id", client_id), ("scope", scope)])
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

/// A token request of a public client (it names itself with `client_id`).
async fn public_token(p: &Provider, form: &[(&str, &str)]) -> (u16, Value) {
    let res = p.http().post(p.url("/token")).form(form).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

/// One poll of the token endpoint by a public client.
pub async fn poll(p: &Provider, client_id: &str, device_code: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", device_code),
        ("client_id", client_id),
    ];
    public_token(p, &form).await
}

/// A refresh by a public client.
pub async fn refresh(p: &Provider, client_id: &str, refresh_token: &str) -> (u16, Value) {
    public_token(p, &[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", client_id)])
        .await
}

/// Opens `verification_uri_complete` signed out, signs in, and confirms the prefilled code:
/// the page that asks to approve or deny.
pub async fn confirm_page(browser: &Browser, codes: &Value, email: &str) -> Step {
    let step = browser.open(codes["verification_uri_complete"].as_str().unwrap()).await;
    let step = browser.login(&step, email, PASSWORD).await;
    submit_code(browser, &step, &hidden(step.html(), "user_code")).await
}

/// Submits the code form with `code`.
async fn submit_code(browser: &Browser, page: &Step, code: &str) -> Step {
    let html = page.html();
    assert!(html.contains("action=\"/device\""), "not the device page: {html}");
    browser.post("/device", &[("csrf", &hidden(html, "csrf")), ("user_code", code)]).await
}

/// Approves or denies on the confirmation page.
pub async fn decide(browser: &Browser, page: &Step, approve: bool) -> Step {
    let html = page.html();
    assert!(html.contains("action=\"/device/decide\""), "not the confirmation page: {html}");
    let decision = if approve { "approve" } else { "deny" };
    browser
        .post(
            "/device/decide",
            &[("csrf", &hidden(html, "csrf")), ("user_code", &hidden(html, "user_code")), ("decision", decision)],
        )
        .await
}

async fn tenant_id(p: &Provider, slug: &str) -> Uuid {
    tenancy::find_tenant(&p.t.db, slug).await.unwrap().id
}

async fn user_id(p: &Provider, email: &str) -> Uuid {
    let mut tx = p.t.db.unscoped().await.unwrap();
    let id = laventecare_auth::db::users::by_email(&mut tx, email).await.unwrap().unwrap().id;
    tx.commit().await.unwrap();
    id
}

/// A device gets codes, polls (pending), the user approves after signing in, the device gets
/// tokens for the user's tenant and refreshes; both steps are audited.
#[tokio::test]
async fn approved_device_gets_tokens_and_refreshes() {
    let p = Provider::start().await;
    let device = device_client(&p).await;

    let discovery: Value =
        p.http().get(p.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(discovery["device_authorization_endpoint"], p.url("/device_authorization"));
    assert!(
        discovery["grant_types_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == "urn:ietf:params:oauth:grant-type:device_code")
    );

    let (status, codes) = request_codes(&p, &device, "openid offline_access").await;
    assert_eq!(status, 200, "{codes}");
    let user_code = codes["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9);
    assert_eq!(&user_code[4..5], "-");
    assert!(user_code.chars().filter(|c| *c != '-').all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c)), "{user_code}");
    assert_eq!(codes["verification_uri"], p.url("/device"));
    assert_eq!(codes["verification_uri_complete"], p.url(&format!("/device?user_code={user_code}")));
    assert_eq!(codes["expires_in"], 600);
    assert_eq!(codes["interval"], 5);
    let device_code = codes["device_code"].as_str().unwrap();
    assert_eq!(device_code.len(), 43);

    let (status, body) = poll(&p, &device, device_code).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("authorization_pending")));

    let browser = Browser::new(&p);
    let page = confirm_page(&browser, &codes, &p.email).await;
    let html = page.html();
    assert!(html.contains("Acme Thermostat") && html.contains(user_code), "{html}");
    assert!(html.contains("Stay connected when you are not using it"), "the scopes are shown: {html}");
    let done = decide(&browser, &page, true).await;
    assert!(done.html().contains("Device connected"), "{}", done.html());

    let (status, tokens) = poll(&p, &device, device_code).await;
    assert_eq!(status, 200, "{tokens}");
    let at = claims(tokens["access_token"].as_str().unwrap());
    let acme = tenant_id(&p, "acme").await;
    let ann = user_id(&p, &p.email).await;
    assert_eq!(at["sub"], ann.to_string());
    assert_eq!(at["tid"], acme.to_string());
    assert_eq!(at["tenant"], "acme");
    assert_eq!(at["roles"], serde_json::json!(["editor", "viewer"]));
    assert_eq!(at["acr"], laventecare_auth::session::ACR_PASSWORD);
    assert_eq!(at["amr"], serde_json::json!(["pwd"]));
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], device);

    // Months of refreshing: the refresh token rotates like any other.
    let (status, refreshed) = refresh(&p, &device, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(claims(refreshed["access_token"].as_str().unwrap())["tenant"], "acme");

    let requested = audit_rows(&p, acme, "device.authorization_requested").await;
    assert_eq!(requested.len(), 1);
    let r = &requested[0];
    assert_eq!((r.actor_kind.as_str(), r.actor_id.as_deref()), ("client", Some(device.as_str())));
    assert_eq!((r.target_kind.as_deref(), r.target_id.as_deref()), (Some("client"), Some(device.as_str())));
    assert_eq!(r.ip.as_deref(), Some("127.0.0.1"));
    assert!(r.details.get("user_code").is_none(), "a live user code stays out of the log");
    let approved = audit_rows(&p, acme, "device.approved").await;
    assert_eq!(approved.len(), 1);
    let a = &approved[0];
    assert_eq!((a.actor_kind.as_str(), a.actor_id.as_deref()), ("user", Some(ann.to_string().as_str())));
    assert_eq!((a.target_kind.as_deref(), a.target_id.as_deref()), (Some("client"), Some(device.as_str())));
    assert_eq!((a.outcome.as_str(), a.ip.as_deref()), ("success", Some("127.0.0.1")));
    assert_eq!(a.details["user_code"], user_code);
}

/// Approves a fresh request of `device` as the seeded user; returns the device code.
pub async fn approved(p: &Provider, device: &str) -> String {
    let (_, codes) = request_codes(p, device, "openid offline_access").await;
    let browser = Browser::new(p);
    let page = confirm_page(&browser, &codes, &p.email).await;
    decide(&browser, &page, true).await;
    codes["device_code"].as_str().unwrap().to_owned()
}

/// Polling sooner than the interval is `slow_down`, and each one adds 5 s to the interval.
#[tokio::test]
async fn polling_too_fast_is_slow_down() {
    let p = Provider::start().await;
    let device = device_client(&p).await;
    let (_, codes) = request_codes(&p, &device, "openid").await;
    let code = codes["device_code"].as_str().unwrap();
    assert_eq!(poll(&p, &device, code).await.1["error"], "authorization_pending");
    assert_eq!(poll(&p, &device, code).await.1["error"], "slow_down");
    assert_eq!(poll(&p, &device, code).await.1["error"], "slow_down");
    let mut owner = p.t.owner().await;
    let interval: i32 =
        sqlx::query_scalar("SELECT interval_secs FROM device_grants").fetch_one(&mut owner).await.unwrap();
    assert_eq!(interval, 15);
}

/// A denial reaches the device as `access_denied`, audited with the user code.
#[tokio::test]
async fn denied_request_is_access_denied() {
    let p = Provider::start().await;
    let device = device_client(&p).await;
    let (_, codes) = request_codes(&p, &device, "openid").await;
    let browser = Browser::new(&p);
    let page = confirm_page(&browser, &codes, &p.email).await;
    let done = decide(&browser, &page, false).await;
    assert!(done.html().contains("Device refused"));
    let (status, body) = poll(&p, &device, codes["device_code"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("access_denied")));
    let acme = tenant_id(&p, "acme").await;
    let ann = user_id(&p, &p.email).await;
    let rows = audit_rows(&p, acme, "device.denied").await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].actor_kind.as_str(), rows[0].actor_id.clone()), ("user", Some(ann.to_string())));
    assert_eq!(rows[0].target_id.as_deref(), Some(device.as_str()));
    assert_eq!(rows[0].ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(rows[0].details["user_code"], codes["user_code"]);
}

/// After `LCA_DEVICE_CODE_TTL_SECS` the device gets `expired_token`, and the user code is
/// unknown to the page.
#[tokio::test]
async fn expired_request_is_expired_token() {
    let p = Provider::start_with(&[("LCA_DEVICE_CODE_TTL_SECS", "1")]).await;
    let device = device_client(&p).await;
    let (_, codes) = request_codes(&p, &device, "openid").await;
    assert_eq!(codes["expires_in"], 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, body) = poll(&p, &device, codes["device_code"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("expired_token")));
    let browser = Browser::new(&p);
    let step = browser.open(codes["verification_uri_complete"].as_str().unwrap()).await;
    let step = browser.login(&step, &p.email, PASSWORD).await;
    let step = submit_code(&browser, &step, codes["user_code"].as_str().unwrap()).await;
    assert!(step.html().contains("That code did not work"));
}

/// Wrong codes get one generic message; after three, even the right code is refused until the
/// delay has passed; each failure is audited with the reason.
#[tokio::test]
async fn wrong_user_codes_are_throttled() {
    let p = Provider::start().await;
    let device = device_client(&p).await;
    let (_, codes) = request_codes(&p, &device, "openid").await;
    let browser = Browser::new(&p);
    let step = browser.open(&p.url("/device")).await;
    let entry = browser.login(&step, &p.email, PASSWORD).await;
    for wrong in ["BCDF-GHJK", "not a code", "ZZZZ-ZZZZ"] {
        let wrong = if wrong == codes["user_code"] { "XXXX-XXXX" } else { wrong };
        let step = submit_code(&browser, &entry, wrong).await;
        assert_eq!(step.status(), 200);
        assert!(step.html().contains("That code did not work"), "{}", step.html());
    }
    let right = codes["user_code"].as_str().unwrap();
    let step = submit_code(&browser, &entry, right).await;
    assert!(step.html().contains("That code did not work"), "throttled: the same message");
    let acme = tenant_id(&p, "acme").await;
    let ann = user_id(&p, &p.email).await;
    let rows = audit_rows(&p, acme, "device.user_code_failure").await;
    let reasons: Vec<&str> = rows.iter().map(|r| r.details["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["unknown", "unknown", "unknown", "throttled"]);
    assert!(rows.iter().all(|r| r.actor_id.as_deref() == Some(ann.to_string().as_str())
        && r.outcome == "failure"
        && r.ip.as_deref() == Some("127.0.0.1")));
    // The delay passes: the right code works (lower case, no dash is fine too).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let step = submit_code(&browser, &entry, &right.replace('-', "").to_lowercase()).await;
    assert!(step.html().contains("action=\"/device/decide\""), "{}", step.html());
}

/// A device code is bound to its client: another client presenting it learns nothing and
/// burns nothing; a client without the grant, an unknown client, a bad scope are refused.
#[tokio::test]
async fn device_codes_are_bound_to_their_client() {
    let p = Provider::start().await;
    let device = device_client(&p).await;
    let other = device_client(&p).await;
    let code = approved(&p, &device).await;
    let (status, body) = poll(&p, &other, &code).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(poll(&p, &device, &code).await.0, 200, "the code still works for its own client");

    // The seeded web client has no device grant.
    let res = p
        .http()
        .post(p.url("/device_authorization"))
        .basic_auth(&p.client_id, Some(&p.client_secret))
        .form(&[("scope", "openid")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "unauthorized_client");
    let (status, body) = request_codes(&p, "no-such-client", "openid").await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    let (status, body) = request_codes(&p, &device, "open\"id").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")));

    // A confidential device client authenticates.
    let conf = p
        .client(clients::ClientRequest {
            name: "Gateway".into(),
            grants: vec!["device_code".into()],
            ..Default::default()
        })
        .await;
    assert_eq!(request_codes(&p, &conf.client_id, "openid").await.0, 401, "no secret");
    let res = p
        .http()
        .post(p.url("/device_authorization"))
        .basic_auth(&conf.client_id, Some(conf.client_secret.as_ref().unwrap().expose()))
        .form(&[("scope", "openid")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// Twenty concurrent polls after approval: exactly one gets tokens.
#[tokio::test]
async fn concurrent_polls_get_tokens_once() {
    let p = Provider::start().await;
    let device = device_client(&p).await;
    let code = approved(&p, &device).await;
    let polls = (0..20).map(|_| poll(&p, &device, &code));
    let results = futures::future::join_all(polls).await;
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(ok, 1, "{results:?}");
    assert!(results.iter().filter(|(s, _)| *s != 200).all(|(s, b)| *s == 400 && b["error"] == "invalid_grant"));
}

/// Redeeming a device code again fails and revokes the family the first redemption began.
#[tokio::test]
async fn second_redemption_revokes_the_family() {
    let p = Provider::start().await;
    let device = device_client(&p).await;
    let code = approved(&p, &device).await;
    let (status, tokens) = poll(&p, &device, &code).await;
    assert_eq!(status, 200);
    let (status, body) = poll(&p, &device, &code).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let (status, _) = refresh(&p, &device, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 400, "the family is revoked");
    let acme = tenant_id(&p, "acme").await;
    let rows = audit_rows(&p, acme, "device_code.reuse_detected").await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].actor_kind.as_str(), rows[0].actor_id.as_deref()), ("client", Some(device.as_str())));
    assert_eq!(rows[0].target_kind.as_deref(), Some("token_family"));
    assert_eq!(rows[0].ip.as_deref(), Some("127.0.0.1"));
}

/// A user who is not a member of the client's tenant cannot approve: the page says only what
/// a mistyped code gets, the request stays pending for its rightful owner, and the refusal is
/// audited in the client's tenant.
#[tokio::test]
async fn non_member_cannot_approve() {
    let p = Provider::start().await;
    let device = device_client(&p).await;
    p.t.tenant("globex").await;
    let hasher = identity::PasswordHasher::new();
    identity::create_user(&p.t.db, &hasher, "bob@example.com", PASSWORD).await.unwrap();
    tenancy::add_member(&p.t.db, "globex", "bob@example.com", laventecare_auth::vocabulary::Role::Editor)
        .await
        .unwrap();
    let (_, codes) = request_codes(&p, &device, "openid").await;
    let browser = Browser::new(&p);
    let page = confirm_page(&browser, &codes, "bob@example.com").await;
    // The page says what a mistyped code gets: nothing about another tenant's request.
    assert!(page.html().contains("That code did not work"), "{}", page.html());
    let mistyped = submit_code(&browser, &page, "BCDF-GHJK").await;
    let blank = |h: &str| h.replace(&hidden(h, "csrf"), "CSRF");
    assert_eq!(blank(page.html()), blank(mistyped.html()), "a hit looks like a miss");
    // And a stranger cannot cancel the device's request: it is still pending.
    let (status, body) = poll(&p, &device, codes["device_code"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("authorization_pending")));
    let acme = tenant_id(&p, "acme").await;
    let bob = user_id(&p, "bob@example.com").await;
    let rows = audit_rows(&p, acme, "authorization.denied_no_membership").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].actor_id.as_deref(), Some(bob.to_string().as_str()));
    assert_eq!(rows[0].target_id.as_deref(), Some(device.as_str()));
    assert_eq!(rows[0].ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(rows[0].details["grant"], "device_code");
}

/// A session that signed in with a password only, of a user who is now an admin, is sent to
/// the second factor before it may approve; the request stays pending.
#[tokio::test]
async fn admin_without_mfa_is_sent_to_mfa() {
    let p = Provider::start().await;
    let device = device_client(&p).await;
    let (_, codes) = request_codes(&p, &device, "openid").await;
    let browser = Browser::new(&p);
    let step = browser.open(codes["verification_uri_complete"].as_str().unwrap()).await;
    let entry = browser.login(&step, &p.email, PASSWORD).await;
    let actor = laventecare_auth::db::audit::Actor::system();
    tenancy::set_role(&p.t.db, &actor, "acme", &p.email, laventecare_auth::vocabulary::Role::Admin).await.unwrap();
    let step = submit_code(&browser, &entry, &hidden(entry.html(), "user_code")).await;
    // No TOTP yet: the second-factor page sends on to enrolment.
    assert!(step.html().contains("action=\"/mfa/enrol\""), "{}", step.html());
    assert_eq!(poll(&p, &device, codes["device_code"].as_str().unwrap()).await.1["error"], "authorization_pending");
}

/// The account page lists the user's devices; revoking one there ends its tokens and writes
/// `device.revoked`; RFC 7009 revocation of its refresh token also takes it off the list.
#[tokio::test]
async fn account_page_lists_and_revokes_devices() {
    let p = Provider::start().await;
    let device = device_client(&p).await;
    let (_, codes) = request_codes(&p, &device, "openid offline_access").await;
    let browser = Browser::new(&p);
    let page = confirm_page(&browser, &codes, &p.email).await;
    decide(&browser, &page, true).await;
    let (_, tokens) = poll(&p, &device, codes["device_code"].as_str().unwrap()).await;
    let account = browser.open(&p.url("/account")).await;
    let html = account.html();
    assert!(html.contains("Acme Thermostat · since"), "{html}");
    let family = hidden(html, "family");
    let tenant = hidden(html, "tenant");
    let step = browser
        .post("/account/devices/revoke", &[("csrf", &hidden(html, "csrf")), ("tenant", &tenant), ("family", &family)])
        .await;
    assert!(step.html().contains("No devices are connected"), "{}", step.html());
    let (status, _) = refresh(&p, &device, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 400);
    let acme = tenant_id(&p, "acme").await;
    let ann = user_id(&p, &p.email).await;
    let rows = audit_rows(&p, acme, "device.revoked").await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].actor_kind.as_str(), rows[0].actor_id.clone()), ("user", Some(ann.to_string())));
    assert_eq!(
        (rows[0].target_kind.as_deref(), rows[0].target_id.as_deref()),
        (Some("token_family"), Some(family.as_str()))
    );
    assert_eq!(rows[0].details["client_id"], device);
    assert_eq!(rows[0].ip.as_deref(), Some("127.0.0.1"));

    // Another device, revoked by the device itself (RFC 7009).
    let code = approved(&p, &device).await;
    let (_, tokens) = poll(&p, &device, &code).await;
    assert!(browser.open(&p.url("/account")).await.html().contains("Acme Thermostat · since"));
    let res = p
        .http()
        .post(p.url("/revoke"))
        .form(&[("token", tokens["refresh_token"].as_str().unwrap()), ("client_id", &device)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(browser.open(&p.url("/account")).await.html().contains("No devices are connected"));
}

/// The janitor deletes device requests past their expiry and keeps pending ones.
#[tokio::test]
async fn janitor_sweeps_expired_device_grants() {
    let p = Provider::start().await;
    let acme = tenant_id(&p, "acme").await;
    let mut tx = p.t.db.tenant(acme).await.unwrap();
    for (i, minutes) in [(1u8, -5i64), (2, -1), (3, 10)] {
        let expires = chrono::Utc::now() + chrono::Duration::minutes(minutes);
        assert!(
            laventecare_auth::db::device_grants::insert(&mut tx, &[i; 32], &[i + 100; 32], "c", "openid", expires)
                .await
                .unwrap()
        );
    }
    tx.commit().await.unwrap();
    let report = laventecare_auth::janitor::run_once(&p.t.db, 1000).await.unwrap();
    assert_eq!(report.deleted_by("device_grants"), 2);
    let mut owner = p.t.owner().await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM device_grants").fetch_one(&mut owner).await.unwrap();
    assert_eq!(left, 1);
}

/// A right code gives back only the attempt it took: typing one's own code between guesses
/// does not reset the guess counter.
#[tokio::test]
async fn a_right_code_does_not_reset_the_guess_counter() {
    let p = Provider::start().await;
    let device = device_client(&p).await;
    let (_, codes) = request_codes(&p, &device, "openid").await;
    let right = codes["user_code"].as_str().unwrap().to_owned();
    let browser = Browser::new(&p);
    let entry = browser.login(&browser.open(&p.url("/device")).await, &p.email, PASSWORD).await;
    let wrong = if right == "BCDF-GHJK" { "ZZZZ-ZZZZ" } else { "BCDF-GHJK" };
    submit_code(&browser, &entry, wrong).await;
    submit_code(&browser, &entry, wrong).await;
    let own = submit_code(&browser, &entry, &right).await;
    assert!(own.html().contains("action=\"/device/decide\""), "{}", own.html());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Three guesses counted: the next one sets a wait, so the one after is refused unchecked.
    submit_code(&browser, &entry, wrong).await;
    submit_code(&browser, &entry, &right).await;
    let rows = audit_rows(&p, tenant_id(&p, "acme").await, "device.user_code_failure").await;
    assert_eq!(rows.last().unwrap().details["reason"], "throttled", "the counter was not reset");
}

/// A device approved but not yet redeemed gets nothing after the user changes their password:
/// the approval ends with their sessions and token families.
#[tokio::test]
async fn a_password_change_ends_an_unredeemed_approval() {
    let p = Provider::start().await;
    let device = device_client(&p).await;
    let (_, codes) = request_codes(&p, &device, "openid offline_access").await;
    let browser = Browser::new(&p);
    let page = confirm_page(&browser, &codes, &p.email).await;
    decide(&browser, &page, true).await;
    let account = browser.open(&p.url("/account")).await;
    let csrf = hidden(account.html(), "csrf");
    let changed = browser
        .post("/account/password", &[("csrf", &csrf), ("current", PASSWORD), ("new", "plum orbit lantern 77")])
        .await;
    assert!(changed.html().contains("Your password is changed"), "{}", changed.html());
    let (status, body) = poll(&p, &device, codes["device_code"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("access_denied")), "{body}");
}
