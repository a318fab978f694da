//! The security stamp and what a browser session holds: a password step signs the previous
//! user out, a session holds every identity it carries, and sessions, half sign-ins, codes and
//! device approvals made under an old stamp are refused (ARCHITECTURE.md, "Security stamp");
//! and every form a session posts carries its CSRF token.

use laventecare_auth::db::audit::Actor;
use laventecare_auth::{identity, tenancy};
use uuid::Uuid;

use crate::flow::{Browser, PASSWORD, Provider, authorize_url, hidden, pkce};
use crate::mfa::{audit_rows, enrolled, tenant_id, user_id};

const BOB: &str = "bob@example.com";
const BOB_PASSWORD: &str = "quartz harbour fable 31";

/// Adds bob to acme as a viewer.
async fn add_bob(p: &Provider) -> Uuid {
    let hasher = identity::PasswordHasher::new();
    identity::create_user(&p.t.db, &hasher, BOB, BOB_PASSWORD).await.unwrap();
    tenancy::add_member(&p.t.db, "acme", BOB, laventecare_auth::vocabulary::Role::Viewer).await.unwrap();
    user_id(p, BOB).await
}

/// Gives a user a new stamp behind the provider's back, ending nothing: what a row missed by
/// "end every session" would see.
async fn bump_stamp_only(p: &Provider, user: Uuid) {
    let mut conn = p.t.owner().await;
    sqlx::query("UPDATE users SET security_stamp = gen_random_uuid() WHERE id = $1")
        .bind(user)
        .execute(&mut conn)
        .await
        .unwrap();
}

/// Signed in as ann, then bob's password in the same browser, then bob's recovery: the half
/// sign-in must not survive to enrol its own authenticator for bob, and ann is signed out.
#[tokio::test]
async fn a_half_sign_in_on_someone_elses_session_dies_with_recovery() {
    let p = Provider::start().await;
    let acme = tenant_id(&p, "acme").await;
    let bob = add_bob(&p).await;
    // Bob has an authenticator, so his password alone makes a half sign-in.
    enrolled(&p, BOB, BOB_PASSWORD).await;

    let shared = Browser::new(&p);
    let signed_in = shared.login(&shared.open(&p.url("/login")).await, &p.email, PASSWORD).await;
    assert!(signed_in.html().contains("You are signed in"), "{}", signed_in.html());
    let at_mfa = shared.login(&shared.open(&p.url("/login")).await, BOB, BOB_PASSWORD).await;
    assert!(at_mfa.html().contains("action=\"/login/mfa\""), "{}", at_mfa.html());
    // The password step signed ann out of this browser.
    let account = shared.open(&p.url("/account")).await;
    assert!(!account.html().contains("ann@example.com"), "ann is still signed in: {}", account.html());

    // Bob's recovery: an operator's link, used from bob's own browser. It removes his TOTP.
    let link = identity::recovery::issue_link(&p.t.db, &p.state.config, &Actor::operator("test"), acme, bob)
        .await
        .unwrap()
        .unwrap();
    let own = Browser::new(&p);
    let form = own.open(&link.link).await;
    let fields = [
        ("csrf", hidden(form.html(), "csrf")),
        ("token", hidden(form.html(), "token")),
        ("password", "granite meadow swift 9".to_owned()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let done = own.post("/recover", &fields).await;
    assert!(done.html().contains("Your password is set"), "{}", done.html());

    // The shared browser cannot enrol an authenticator for bob: it is sent to sign in.
    let enrol = shared.open(&p.url("/mfa/enrol")).await;
    assert!(enrol.html().contains("action=\"/login\""), "the half sign-in survived: {}", enrol.html());
    assert!(!enrol.html().contains("totp-secret"));
    let mut conn = p.t.owner().await;
    let (has_secret, enrol_required): (bool, bool) =
        sqlx::query_as("SELECT totp_secret IS NOT NULL, mfa_enrol_required FROM users WHERE id = $1")
            .bind(bob)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(!has_secret && enrol_required, "bob enrols again himself");
}

/// A session or half sign-in made under an old stamp is refused even when no row was ended;
/// a session older than the absolute lifetime is refused too.
#[tokio::test]
async fn stale_sessions_and_half_sign_ins_are_refused_without_their_rows_ending() {
    let p = Provider::start().await;
    let bob = add_bob(&p).await;
    let (enrolled_bob, _, _) = enrolled(&p, BOB, BOB_PASSWORD).await;
    let ann_browser = Browser::new(&p);
    ann_browser.login(&ann_browser.open(&p.url("/login")).await, &p.email, PASSWORD).await;
    assert_eq!(ann_browser.open(&p.url("/account")).await.status(), 200);
    let half = Browser::new(&p);
    let at_mfa = half.login(&half.open(&p.url("/login")).await, BOB, BOB_PASSWORD).await;
    assert!(at_mfa.html().contains("action=\"/login/mfa\""));
    assert_eq!(enrolled_bob.open(&p.url("/account")).await.status(), 200);

    bump_stamp_only(&p, bob).await;
    let mut conn = p.t.owner().await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM browser_sessions WHERE user_ids @> ARRAY[$1]")
        .bind(bob)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows, 2, "both of bob's sessions are still stored");
    assert!(enrolled_bob.open(&p.url("/account")).await.html().contains("action=\"/login\""));
    assert!(half.open(&p.url("/login/mfa")).await.html().contains("action=\"/login\""));
    // Ann's session is not bob's business.
    assert_eq!(ann_browser.open(&p.url("/account")).await.status(), 200);

    // The absolute lifetime counts from the sign-in, however active the session since.
    let ann = user_id(&p, &p.email).await;
    sqlx::query("UPDATE browser_sessions SET created_at = now() - interval '13 hours' WHERE user_ids @> ARRAY[$1]")
        .bind(ann)
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(ann_browser.open(&p.url("/account")).await.html().contains("action=\"/login\""));
}

/// A code issued before the stamp changed is refused at the token endpoint, and the refusal
/// is audited; so is an approved device request.
#[tokio::test]
async fn codes_and_device_approvals_from_before_the_stamp_are_refused() {
    let p = Provider::start().await;
    let acme = tenant_id(&p, "acme").await;
    let ann = user_id(&p, &p.email).await;
    let browser = Browser::new(&p);
    let (verifier, challenge) = pkce();
    let step = browser.sign_in_through(&authorize_url(&p, &challenge, &[]), &p.email, PASSWORD).await;
    let code = step.param("code").unwrap();
    bump_stamp_only(&p, ann).await;
    let (status, body) = p.redeem(&code, &verifier).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    let failed = audit_rows(&p, acme, "code.redemption_failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].details["reason"], "signed_out_since");
    failed[0].is(("client", Some(&p.client_id)), ("user", Some(&ann.to_string())), Some("127.0.0.1"));

    // The device grant: approved, then the stamp changes before the device polls.
    let device = crate::device::device_client(&p).await;
    let (_, codes) = crate::device::request_codes(&p, &device, "openid offline_access").await;
    let approver = Browser::new(&p);
    let confirm = crate::device::confirm_page(&approver, &codes, &p.email).await;
    crate::device::decide(&approver, &confirm, true).await;
    bump_stamp_only(&p, ann).await;
    let (status, body) = crate::device::poll(&p, &device, codes["device_code"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("access_denied")), "{body}");
    let failed = audit_rows(&p, acme, "device_code.redemption_failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].details["reason"], "signed_out_since");
}

/// "Sign out everywhere" from the account page ends every session (this one too) and every
/// token family; from the admin page an admin does the same to a member, and a tenant admin
/// cannot do it to someone outside their tenants. Both are audited.
#[tokio::test]
async fn sign_out_everywhere_from_the_account_and_admin_pages() {
    let p = Provider::start().await;
    let acme = tenant_id(&p, "acme").await;
    let ann = user_id(&p, &p.email).await;
    let (first, a) = crate::flow::tokens(&p).await;
    let (second, b) = crate::flow::tokens(&p).await;
    let account = first.open(&p.url("/account")).await;
    let done = first.post("/account/sign-out-everywhere", &[("csrf", &hidden(account.html(), "csrf"))]).await;
    assert!(done.html().contains("action=\"/login\""), "{}", done.html());
    for browser in [&first, &second] {
        assert!(browser.open(&p.url("/account")).await.html().contains("action=\"/login\""));
    }
    for tokens in [&a, &b] {
        let refresh = tokens["refresh_token"].as_str().unwrap();
        let (status, body) = p.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    }
    let rows = audit_rows(&p, acme, "user.signed_out_everywhere").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].details["sessions_ended"].as_u64(), rows[0].details["families_revoked"].as_u64()),
        (Some(2), Some(2))
    );
    rows[0].is(("user", Some(&ann.to_string())), ("user", Some(&ann.to_string())), Some("127.0.0.1"));

    // An admin of acme signs ann out everywhere; not bob, who is only in globex.
    let hasher = identity::PasswordHasher::new();
    identity::create_user(&p.t.db, &hasher, "root@example.com", "admin passphrase 2026").await.unwrap();
    tenancy::add_member(&p.t.db, "acme", "root@example.com", laventecare_auth::vocabulary::Role::Admin).await.unwrap();
    p.t.tenant("globex").await;
    identity::create_user(&p.t.db, &hasher, BOB, BOB_PASSWORD).await.unwrap();
    tenancy::add_member(&p.t.db, "globex", BOB, laventecare_auth::vocabulary::Role::Viewer).await.unwrap();
    let bob = user_id(&p, BOB).await;
    let (admin, _, _) = enrolled(&p, "root@example.com", "admin passphrase 2026").await;
    let (ann_browser, _) = crate::flow::tokens(&p).await;
    let page = admin.open(&p.url("/admin/t/acme/members")).await;
    let csrf = hidden(page.html(), "csrf");
    let refused = admin.post(&format!("/admin/t/acme/members/{bob}/sign-out"), &[("csrf", &csrf)]).await;
    assert_eq!(refused.status(), 404);
    let done = admin.post(&format!("/admin/t/acme/members/{ann}/sign-out"), &[("csrf", &csrf)]).await;
    assert!(done.html().contains("signed out everywhere"), "{}", done.html());
    assert!(ann_browser.open(&p.url("/account")).await.html().contains("action=\"/login\""));
    assert_eq!(admin.open(&p.url("/admin/t/acme")).await.status(), 200, "the admin stays signed in");
    let root = user_id(&p, "root@example.com").await;
    let rows = audit_rows(&p, acme, "user.signed_out_everywhere").await;
    assert_eq!(rows.len(), 2);
    rows[1].is(("user", Some(&root.to_string())), ("user", Some(&ann.to_string())), Some("127.0.0.1"));
}

/// Every form of the hosted pages refuses a post whose CSRF token is not the session's (a
/// 403 page), signed in or not, before doing anything: the check is the forms' extractor's.
#[tokio::test]
async fn every_page_form_checks_its_csrf_token() {
    let p = Provider::start().await;
    let ann = user_id(&p, &p.email).await;
    let acme = tenant_id(&p, "acme").await;
    let browser = Browser::new(&p);
    browser.login(&browser.open(&p.url("/login")).await, &p.email, PASSWORD).await;
    let forms: Vec<(String, Vec<(&str, String)>)> = vec![
        ("/account/password".into(), vec![("current", PASSWORD.into()), ("new", "another long passphrase".into())]),
        ("/account/backup-codes".into(), vec![]),
        ("/account/sessions/end".into(), vec![("session", "00".into())]),
        ("/account/sign-out-everywhere".into(), vec![]),
        ("/account/devices/revoke".into(), vec![("tenant", acme.to_string()), ("family", ann.to_string())]),
        ("/mfa/enrol".into(), vec![("req", String::new()), ("code", "123456".into())]),
        ("/login/mfa".into(), vec![("req", String::new()), ("code", "123456".into())]),
        ("/select-tenant".into(), vec![("req", "r".into()), ("tenant", "acme".into())]),
        ("/consent".into(), vec![("req", "r".into()), ("decision", "allow".into())]),
        ("/recover".into(), vec![("token", "t".into()), ("password", "another long passphrase".into())]),
        ("/device".into(), vec![("user_code", "BCDF-GHJK".into())]),
        ("/device/decide".into(), vec![("user_code", "BCDF-GHJK".into()), ("decision", "approve".into())]),
    ];
    for (path, fields) in &forms {
        for csrf in ["wrong", ""] {
            let mut form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            form.push(("csrf", csrf));
            let step = browser.post(path, &form).await;
            assert_eq!(step.status(), 403, "{path} with csrf {csrf:?}: {}", step.html());
            assert!(step.html().contains("This form has expired"), "{path}");
        }
    }
    // The admin forms, every one of them (`pages::admin::ROUTES`), posted by an admin of acme
    // who is a platform admin too, so that each reaches its CSRF check.
    tenancy::create_tenant(&p.t.db, "platform", "Platform", true).await.unwrap();
    let admin = crate::admin_pages::member(&p, "root@example.com", laventecare_auth::vocabulary::Role::Admin).await;
    tenancy::add_member(&p.t.db, "platform", "root@example.com", laventecare_auth::vocabulary::Role::Admin)
        .await
        .unwrap();
    let mut values = crate::admin_pages::targets(&p, "acme").await;
    values.insert("tenant", "platform".to_owned());
    for route in
        laventecare_auth::pages::admin::ROUTES.iter().filter(|r| r.verb == laventecare_auth::pages::admin::Verb::Post)
    {
        let path = crate::admin_pages::fill(route.path, &values);
        let fields = crate::admin_pages::sample_fields(route.path);
        for csrf in ["wrong", ""] {
            let mut form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            form.push(("csrf", csrf));
            let step = admin.post(&path, &form).await;
            assert_eq!(step.status(), 403, "{path} with csrf {csrf:?}: {}", step.html());
            assert!(step.html().contains("This form has expired"), "{path}");
        }
    }
    let events = crate::mfa::audit_rows(&p, acme, "membership.role_changed").await;
    assert!(events.is_empty(), "nothing was done");
    // Nothing happened: still signed in, same password.
    assert_eq!(browser.open(&p.url("/account")).await.status(), 200);
    let fresh = Browser::new(&p);
    let ok = fresh.login(&fresh.open(&p.url("/login")).await, &p.email, PASSWORD).await;
    assert!(ok.html().contains("You are signed in"), "{}", ok.html());
}
