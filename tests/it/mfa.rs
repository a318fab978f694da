//! The second factor, through the hosted pages and the token endpoint: TOTP enrolment and
//! single use, backup codes, mandatory MFA for admins, password change, brute force and
//! administrator-assisted recovery.

use std::time::{Duration, Instant};

use laventecare_auth::{identity, tenancy};
use uuid::Uuid;

use crate::flow::{Browser, PASSWORD, Provider, Step, authorize_url, claims, pkce, totp_code};

/// An audit row, as the tests look at it.
#[derive(Debug, sqlx::FromRow)]
pub struct Row {
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub outcome: String,
    pub ip: Option<String>,
    pub details: serde_json::Value,
}

/// The rows of one action in one tenant's chain, oldest first.
pub async fn audit_rows(p: &Provider, tenant: Uuid, action: &str) -> Vec<Row> {
    audit_rows_in(&p.t, tenant, action).await
}

/// [`audit_rows`] of a bare test database.
pub async fn audit_rows_in(t: &crate::support::TestDb, tenant: Uuid, action: &str) -> Vec<Row> {
    let mut conn = t.owner().await;
    sqlx::query_as(
        "SELECT actor_kind, actor_id, target_kind, target_id, outcome, host(ip) AS ip, details \
         FROM audit_events WHERE tenant_id = $1 AND action = $2 ORDER BY seq",
    )
    .bind(tenant)
    .bind(action)
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

pub async fn tenant_id(p: &Provider, slug: &str) -> Uuid {
    laventecare_auth::tenancy::find_tenant(&p.t.db, slug).await.unwrap().id
}

pub async fn user_id(p: &Provider, email: &str) -> Uuid {
    let mut tx = p.t.db.unscoped().await.unwrap();
    let id = laventecare_auth::db::users::by_email(&mut tx, email).await.unwrap().unwrap().id;
    tx.commit().await.unwrap();
    id
}

/// Signs in at the login page (no client) and enrols TOTP from the account page; returns the
/// browser, the key and the backup codes.
pub async fn enrolled(p: &Provider, email: &str, password: &str) -> (Browser, String, Vec<String>) {
    let b = Browser::new(p);
    let login = b.open(&p.url("/account")).await;
    let after = b.login(&login, email, password).await;
    // Straight to enrolment for someone who must have MFA; else via the account page.
    let enrol = if after.html().contains("action=\"/mfa/enrol\"") {
        after
    } else {
        assert!(after.html().contains("id=\"enrol\""), "account page: {}", after.html());
        b.open(&p.url("/mfa/enrol")).await
    };
    let (secret, codes, shown) = b.enrol(&enrol).await;
    assert_eq!(codes.len(), 10, "{}", shown.html());
    (b, secret, codes)
}

/// Runs an authorization through login (and the second factor, with `code`, when asked) and
/// returns the step the browser ends at.
async fn authorize_with(p: &Provider, b: &Browser, password: &str, code: Option<&str>) -> (Step, String) {
    let (verifier, challenge) = pkce();
    let mut step = b.open(&authorize_url(p, &challenge, &[])).await;
    if step.html_opt().is_some_and(|h| h.contains("action=\"/login\"")) {
        step = b.login(&step, &p.email, password).await;
    }
    if let Some(code) = code
        && step.html_opt().is_some_and(|h| h.contains("action=\"/login/mfa\""))
    {
        step = b.second_factor(&step, code).await;
    }
    if step.html_opt().is_some_and(|h| h.contains("id=\"continue\"")) {
        step = b.continue_on(&step).await;
    }
    if step.html_opt().is_some_and(|h| h.contains("action=\"/consent\"")) {
        step = b.consent(&step, true).await;
    }
    (step, verifier)
}

/// Must-show 2: a TOTP code works once (a replay in its window fails), a backup code works
/// once and only once, and each is audited; ID tokens then say `amr` `otp` and the MFA `acr`.
#[tokio::test]
async fn totp_and_backup_codes_work_once() {
    let p = Provider::start().await;
    let acme = tenant_id(&p, "acme").await;
    let ann = user_id(&p, &p.email).await;
    let (_, secret, codes) = enrolled(&p, &p.email, PASSWORD).await;
    let enrolled_rows = audit_rows(&p, acme, "mfa.enrol").await;
    assert_eq!(enrolled_rows.len(), 1);
    assert_eq!(enrolled_rows[0].actor_id.as_deref(), Some(ann.to_string().as_str()));
    assert_eq!(enrolled_rows[0].ip.as_deref(), Some("127.0.0.1"));

    // The enrolment used this step's code: the next step's code signs in.
    let code = totp_code(&secret, 1);
    let b = Browser::new(&p);
    let (step, verifier) = authorize_with(&p, &b, PASSWORD, Some(&code)).await;
    let (status, body) = p.redeem(&step.code().expect("a code after the second factor"), &verifier).await;
    assert_eq!(status, 200, "{body}");
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp"]));
    assert_eq!(id["acr"], laventecare_auth::session::ACR_MFA);

    // The same code again, in another browser, within its window: refused.
    let other = Browser::new(&p);
    let (step, _) = authorize_with(&p, &other, PASSWORD, Some(&code)).await;
    assert!(step.html().contains("action=\"/login/mfa\""), "the replayed code must not pass");
    assert!(step.html().contains("That code did not work"));
    let failures = audit_rows(&p, acme, "mfa.failure").await;
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].details["reason"], "totp_replayed");
    assert_eq!(failures[0].actor_id.as_deref(), Some(ann.to_string().as_str()));

    // A backup code, typed in capitals: works, and says how many are left.
    let shown = other.second_factor(&step, &codes[3].to_uppercase()).await;
    assert!(shown.html().contains("Backup codes left: 9"), "{}", shown.html());
    let mut next = other.continue_on(&shown).await;
    if next.html_opt().is_some_and(|h| h.contains("action=\"/consent\"")) {
        next = other.consent(&next, true).await;
    }
    assert!(next.code().is_some(), "the backup code completes the sign-in");
    let used = audit_rows(&p, acme, "mfa.backup_code_used").await;
    assert_eq!(used.len(), 1);
    assert_eq!(used[0].details["remaining"], 9);
    assert_eq!((used[0].target_kind.as_deref(), used[0].ip.as_deref()), (Some("client"), Some("127.0.0.1")));

    // The same backup code a second time: refused.
    let third = Browser::new(&p);
    let (step, _) = authorize_with(&p, &third, PASSWORD, Some(&codes[3])).await;
    assert!(step.html().contains("That code did not work"), "a backup code works once");
    let failures = audit_rows(&p, acme, "mfa.failure").await;
    assert_eq!(failures.last().unwrap().details["reason"], "backup_code");
}

/// Must-show 3: a member made admin of a tenant, without TOTP, gets no token at all until
/// enrolled: not by refreshing what they had, not by signing in with the password.
#[tokio::test]
async fn a_new_admin_gets_no_token_until_enrolled() {
    let p = Provider::start().await;
    let (_, before) = crate::flow::tokens(&p).await;
    let refresh = before["refresh_token"].as_str().unwrap().to_owned();
    let mut owner = p.t.owner().await;
    sqlx::query("UPDATE memberships SET role = 'admin'").execute(&mut owner).await.unwrap();

    // The family began on a password alone: it ends instead of giving an admin token.
    let (status, body) = p.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");

    // A session that signed in with the password only: sent to enrolment, no code.
    let b = Browser::new(&p);
    let (step, verifier) = authorize_with(&p, &b, PASSWORD, None).await;
    assert!(step.html().contains("action=\"/mfa/enrol\""), "{}", step.html());
    // prompt=none cannot skip it either.
    let (_, challenge) = pkce();
    let silent = b.open(&authorize_url(&p, &challenge, &[("prompt", "none")])).await;
    assert!(silent.code().is_none());
    assert!(silent.param("error").is_some(), "prompt=none without MFA is an error");

    // Enrolled, the same request goes through and the token says admin.
    let (_, _, shown) = b.enrol(&step).await;
    let mut next = b.continue_on(&shown).await;
    if next.html_opt().is_some_and(|h| h.contains("action=\"/consent\"")) {
        next = b.consent(&next, true).await;
    }
    let code = next.code().expect("a code once enrolled");
    let (status, body) = p.redeem(&code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    let access = claims(body["access_token"].as_str().unwrap());
    assert_eq!(access["roles"], serde_json::json!(["admin", "editor", "viewer"]));
    assert_eq!(claims(body["id_token"].as_str().unwrap())["amr"], serde_json::json!(["pwd", "otp"]));
}

/// Must-show 4: changing the password ends the user's other sessions and every refresh-token
/// family, tried through the token endpoint; the session that changed it stays.
#[tokio::test]
async fn password_change_ends_other_sessions_and_families() {
    let p = Provider::start().await;
    let acme = tenant_id(&p, "acme").await;
    let (first, a) = crate::flow::tokens(&p).await;
    let (second, b) = crate::flow::tokens(&p).await;
    let account = first.open(&p.url("/account")).await;
    assert_eq!(account.status(), 200);
    let csrf = crate::flow::hidden(account.html(), "csrf");
    let new_password = "plum orbit lantern 77";

    // The current password is needed.
    let refused =
        first.post("/account/password", &[("csrf", &csrf), ("current", "wrong one"), ("new", new_password)]).await;
    assert!(refused.html().contains("The current password is incorrect"));
    // New passwords follow the rules.
    let weak =
        first.post("/account/password", &[("csrf", &csrf), ("current", PASSWORD), ("new", "password1234")]).await;
    assert!(weak.html().contains("too common"), "{}", weak.html());

    let done = first.post("/account/password", &[("csrf", &csrf), ("current", PASSWORD), ("new", new_password)]).await;
    assert!(done.html().contains("Your password is changed"), "{}", done.html());
    for tokens in [&a, &b] {
        let (status, body) = p
            .token(&[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())])
            .await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
        assert!(!p.introspect(tokens["access_token"].as_str().unwrap()).await, "access tokens end with the family");
    }
    // The other browser is signed out; this one is not.
    let other = second.open(&p.url("/account")).await;
    assert!(other.html().contains("action=\"/login\""), "the other session ended");
    assert_eq!(first.open(&p.url("/account")).await.status(), 200);
    // Only the new password signs in.
    let fresh = Browser::new(&p);
    let login = fresh.open(&p.url("/login")).await;
    assert!(fresh.login(&login, &p.email, PASSWORD).await.html().contains("is incorrect"));
    let ok = fresh.login(&fresh.open(&p.url("/login")).await, &p.email, new_password).await;
    assert!(ok.html().contains("You are signed in"), "{}", ok.html());

    let rows = audit_rows(&p, acme, "password.change").await;
    let outcomes: Vec<&str> = rows.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(outcomes, ["failure", "success"]);
    assert_eq!(rows[1].details["families_revoked"], 2);
    assert_eq!(rows[1].details["sessions_ended"], 1);
    assert_eq!(rows[1].ip.as_deref(), Some("127.0.0.1"));
    let ann = user_id(&p, &p.email).await.to_string();
    rows[1].is(("user", Some(&ann)), ("user", Some(&ann)), Some("127.0.0.1"));
}

/// One login attempt: (status, body with the email and CSRF token blanked, time taken).
async fn attempt(p: &Provider, email: &str, password: &str) -> (u16, String, Duration) {
    let b = Browser::new(p);
    let page = b.open(&p.url("/login")).await;
    let csrf = crate::flow::hidden(page.html(), "csrf");
    let started = Instant::now();
    let step = b.post("/login", &[("csrf", &csrf), ("req", ""), ("email", email), ("password", password)]).await;
    let took = started.elapsed();
    let body = step.html_opt().unwrap_or_default().replace(email, "EMAIL").replace(&csrf, "CSRF");
    (step.status(), body, took)
}

/// Must-show 5: wrong passwords lead to delays, then a lock; the right password is refused
/// while waiting or locked; every step is audited; and an unknown email, a wrong password
/// and a locked account look the same to the caller: status and body; an unknown email and a
/// wrong password also in time (within one bcrypt), while a locked key skips bcrypt.
#[tokio::test]
async fn brute_force_delays_then_locks_and_looks_the_same() {
    let p = Provider::start_with(&[
        ("LCA_LOGIN_FREE_FAILURES", "2"),
        ("LCA_LOGIN_LOCK_AFTER", "4"),
        ("LCA_LOGIN_MAX_DELAY_SECS", "1"),
        ("LCA_LOGIN_LOCK_SECS", "60"),
    ])
    .await;
    // Sign-ins straight at the login page are audited in the platform tenant's chain.
    let platform = tenancy::create_tenant(&p.t.db, "platform", "Platform", true).await.unwrap().tenant_id;
    let hasher = identity::PasswordHasher::new();
    identity::create_user(&p.t.db, &hasher, "dan@example.com", "dan's own passphrase").await.unwrap();
    let ann = user_id(&p, &p.email).await;
    let wrong = "not the password!";
    let (s1, wrong_body, _) = attempt(&p, &p.email, wrong).await;
    attempt(&p, &p.email, wrong).await;
    // Two failures: the next attempt must wait a second, so even the right password fails now…
    let (s_delayed, delayed_body, _) = attempt(&p, &p.email, PASSWORD).await;
    assert_eq!((s_delayed, &delayed_body), (s1, &wrong_body), "refused while waiting, with the same page");
    // …and passes after the wait (it was a delay, not a lock), which clears the count.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, ok, _) = attempt(&p, &p.email, PASSWORD).await;
    assert!(ok.contains("You are signed in"), "{ok}");

    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        attempt(&p, &p.email, wrong).await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s_locked, locked_body, _) = attempt(&p, &p.email, PASSWORD).await;
    assert!(!locked_body.contains("You are signed in"), "the right password is refused while locked");
    let (s_wrong, wrong_body, _) = attempt(&p, "dan@example.com", wrong).await;
    let (s_unknown, unknown_body, _) = attempt(&p, "nobody@example.com", wrong).await;
    assert_eq!(s_locked, 200);
    assert_eq!((s_wrong, s_unknown), (s_locked, s_locked));
    assert_eq!(locked_body, wrong_body, "locked and wrong password look alike");
    assert_eq!(unknown_body, wrong_body, "unknown email and wrong password look alike");
    assert!(locked_body.contains("too many attempts"));
    // Each does one bcrypt: the medians of five rounds differ by less than one bcrypt's time
    // (a fresh account and a fresh unknown address each round, so neither ever waits).
    let hasher = identity::PasswordHasher::new();
    for round in 0..5 {
        identity::create_user(&p.t.db, &hasher, &format!("dan{round}@example.com"), "dan's own passphrase")
            .await
            .unwrap();
    }
    let hash = hasher.hash("measure one bcrypt").await.unwrap();
    let (mut locked, mut wrong_pw, mut unknown, mut bcrypt) = (vec![], vec![], vec![], vec![]);
    for round in 0..5 {
        locked.push(attempt(&p, &p.email, PASSWORD).await.2);
        wrong_pw.push(attempt(&p, &format!("dan{round}@example.com"), wrong).await.2);
        unknown.push(attempt(&p, &format!("nobody{round}@example.com"), wrong).await.2);
        let started = Instant::now();
        hasher.verify("measure one bcrypt", Some(&hash)).await.unwrap();
        bcrypt.push(started.elapsed());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let one_bcrypt = median(&mut bcrypt);
    let times = [median(&mut wrong_pw), median(&mut unknown)];
    let (fastest, slowest) = (times.iter().min().unwrap(), times.iter().max().unwrap());
    assert!(*fastest >= one_bcrypt / 2, "every checked answer did the bcrypt work: {times:?} vs {one_bcrypt:?}");
    assert!(*slowest - *fastest < one_bcrypt, "{times:?} vs one bcrypt {one_bcrypt:?}");
    // A locked key is refused without bcrypt (issue #9, item 5): its state does not depend
    // on whether the account exists, so the shortcut tells nothing about that.
    let locked = median(&mut locked);
    assert!(locked < one_bcrypt / 2, "a locked key skips bcrypt: {locked:?} vs {one_bcrypt:?}");

    // Audited: the failures, the refusals, and the lock, with the user and the IP.
    let failures = audit_rows(&p, platform, "login.failure").await;
    assert!(failures.iter().filter(|r| r.details["reason"] == "credentials").count() >= 6);
    assert!(failures.iter().any(|r| r.details["reason"] == "throttled"));
    let locks = audit_rows(&p, platform, "login.lockout").await;
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0].actor_id.as_deref(), Some(ann.to_string().as_str()));
    assert_eq!(locks[0].target_id.as_deref(), Some(p.email.as_str()));
    assert_eq!(locks[0].ip.as_deref(), Some("127.0.0.1"));
}

/// Must-show 6: an admin issues a recovery link from the admin pages (and the CLI can too);
/// the user sets a new password with it and enrols again; the link works once and not after
/// expiry; an admin of one tenant cannot recover someone who is only in another, nor someone
/// who also administers another tenant.
#[tokio::test]
async fn recovery_link_end_to_end() {
    let p = Provider::start().await;
    let acme = tenant_id(&p, "acme").await;
    let hasher = identity::PasswordHasher::new();
    let admin_password = "admin passphrase 2026";
    for (email, tenant, role) in [
        ("root@example.com", "acme", laventecare_auth::vocabulary::Role::Admin),
        ("bob@example.com", "globex", laventecare_auth::vocabulary::Role::Viewer),
        ("carol@example.com", "acme", laventecare_auth::vocabulary::Role::Viewer),
        ("carol@example.com", "globex", laventecare_auth::vocabulary::Role::Admin),
    ] {
        if laventecare_auth::tenancy::find_tenant(&p.t.db, tenant).await.is_err() {
            p.t.tenant(tenant).await;
        }
        let _ = identity::create_user(&p.t.db, &hasher, email, admin_password).await;
        tenancy::add_member(&p.t.db, tenant, email, role).await.unwrap();
    }
    let ann = user_id(&p, &p.email).await;
    let (_, _ann_secret, _) = enrolled(&p, &p.email, PASSWORD).await;
    // The admin must enrol before the admin pages open.
    let (admin, _, _) = enrolled(&p, "root@example.com", admin_password).await;
    let root = user_id(&p, "root@example.com").await;
    let page = admin.open(&p.url("/admin/t/acme/members")).await;
    assert_eq!(page.status(), 200, "{}", page.html());
    assert!(page.html().contains("data-email=\"ann@example.com\""));
    let csrf = crate::flow::hidden(page.html(), "csrf");

    // Not across tenants: bob is only in globex, carol administers globex.
    for who in ["bob@example.com", "carol@example.com"] {
        let id = user_id(&p, who).await;
        for slug in ["acme", "globex"] {
            let refused = admin.post(&format!("/admin/t/{slug}/members/{id}/recovery-link"), &[("csrf", &csrf)]).await;
            assert_eq!(refused.status(), 404, "{who} via {slug}");
        }
    }

    // Someone with ann's old password, stopped at her second factor.
    let intruder = Browser::new(&p);
    let at_mfa = intruder.login(&intruder.open(&p.url("/login")).await, &p.email, PASSWORD).await;
    assert!(at_mfa.html().contains("action=\"/login/mfa\""));

    let shown = admin.post(&format!("/admin/t/acme/members/{ann}/recovery-link"), &[("csrf", &csrf)]).await;
    let link = crate::flow::between(shown.html(), "<code id=\"notice-code\" class=\"wrap\">", "</code>");
    assert!(link.starts_with(&p.url("/recover?token=")), "{link}");
    let issued = audit_rows(&p, acme, "recovery.issued").await;
    assert_eq!(issued.len(), 1);
    assert_eq!((issued[0].actor_kind.as_str(), issued[0].actor_id.clone()), ("user", Some(root.to_string())));
    assert_eq!((issued[0].target_id.clone(), issued[0].ip.as_deref()), (Some(ann.to_string()), Some("127.0.0.1")));

    // The user: a weak password is refused without spending the link, then a good one.
    let user = Browser::new(&p);
    let form = user.open(&link).await;
    let csrf_u = crate::flow::hidden(form.html(), "csrf");
    let token = crate::flow::hidden(form.html(), "token");
    let weak = user.post("/recover", &[("csrf", &csrf_u), ("token", &token), ("password", "qwerty123456")]).await;
    assert!(weak.html().contains("too common"), "{}", weak.html());
    let new_password = "granite meadow swift 9";
    let done = user.post("/recover", &[("csrf", &csrf_u), ("token", &token), ("password", new_password)]).await;
    assert!(done.html().contains("Your password is set"), "{}", done.html());
    // Twice: no.
    assert_eq!(user.open(&link).await.status(), 410);
    let late = Browser::new(&p);
    let csrf_l = crate::flow::hidden(late.open(&p.url("/login")).await.html(), "csrf");
    let again =
        late.post("/recover", &[("csrf", &csrf_l), ("token", &token), ("password", "another fine passphrase")]).await;
    assert_eq!(again.status(), 410);
    let used = audit_rows(&p, acme, "recovery.used").await;
    assert_eq!(used.len(), 1);
    used[0].is(("user", Some(&ann.to_string())), ("user", Some(&ann.to_string())), Some("127.0.0.1"));

    // The half sign-in ended with the recovery: it cannot enrol a factor of its own now.
    assert!(intruder.open(&p.url("/mfa/enrol")).await.html().contains("action=\"/login\""));

    // The new password signs in, and the second factor must be enrolled again.
    let b = Browser::new(&p);
    let login = b.open(&p.url("/login")).await;
    let next = b.login(&login, &p.email, new_password).await;
    assert!(next.html().contains("action=\"/mfa/enrol\""), "{}", next.html());

    // The command line issues links too; an expired one does not work.
    let out = crate::support::cli(&p.t, &["user", "recover", "--email", &p.email, "--tenant", "acme", "--json"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli_link = crate::support::json_out(&out)["link"].as_str().unwrap().to_owned();
    let mut owner = p.t.owner().await;
    sqlx::query("UPDATE recovery_links SET expires_at = now() - interval '1 second' WHERE used_at IS NULL")
        .execute(&mut owner)
        .await
        .unwrap();
    let cli_link = cli_link.replace(&cli_link[..cli_link.find("/recover").unwrap()], &p.issuer);
    assert_eq!(Browser::new(&p).open(&cli_link).await.status(), 410, "expired");
    let by_cli = audit_rows(&p, acme, "recovery.issued").await;
    assert_eq!(by_cli.last().unwrap().actor_kind, "operator");
    assert_eq!(by_cli.last().unwrap().ip, None);
    let out =
        crate::support::cli(&p.t, &["user", "recover", "--email", "bob@example.com", "--tenant", "acme", "--json"], "");
    assert!(!out.status.success(), "bob is not a member of acme");

    // Resetting MFA from the admin page: audited, and ann must enrol again.
    let reset = admin.post(&format!("/admin/t/acme/members/{ann}/reset-mfa"), &[("csrf", &csrf)]).await;
    assert!(reset.html().contains("Two-step verification is reset"), "{}", reset.html());
    let rows = audit_rows(&p, acme, "mfa.reset").await;
    assert_eq!(rows.len(), 1);
    rows[0].is(("user", Some(&root.to_string())), ("user", Some(&ann.to_string())), Some("127.0.0.1"));
}

/// `acr_values` naming MFA alone (tests/it/acr.rs has the rest of its rule), the tenant's
/// policy (`tenant require-mfa`) and the client's (`--require-mfa`) each make a member who
/// signs in with a password alone enrol first; with none of them, the password is enough and
/// the ID token says so.
#[tokio::test]
async fn acr_values_tenant_and_client_policies_require_mfa() {
    use laventecare_auth::session::{ACR_MFA, ACR_PASSWORD};
    let p = Provider::start().await;
    let enrol_page = |step: &Step| step.html_opt().is_some_and(|h| h.contains("action=\"/mfa/enrol\""));

    let (_, challenge) = pkce();
    let asked = Browser::new(&p)
        .sign_in_through(
            &authorize_url(&p, &challenge, &[("acr_values", ACR_MFA)]),
            &p.email,
            PASSWORD,
        )
        .await;
    assert!(enrol_page(&asked), "acr_values naming MFA alone forces the step");

    let (verifier, challenge) = pkce();
    let plain = Browser::new(&p).sign_in_through(&authorize_url(&p, &challenge, &[]), &p.email, PASSWORD).await;
    let (_, body) = p.redeem(&plain.code().expect("a password is enough here"), &verifier).await;
    assert_eq!(claims(body["id_token"].as_str().unwrap())["acr"], ACR_PASSWORD);
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();

    let out = crate::support::cli(&p.t, &["tenant", "require-mfa", "--slug", "acme", "--json"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(crate::support::json_out(&out)["require_mfa"], true);
    let (_, challenge) = pkce();
    let tenant_policy = Browser::new(&p).sign_in_through(&authorize_url(&p, &challenge, &[]), &p.email, PASSWORD).await;
    assert!(enrol_page(&tenant_policy), "the tenant requires MFA");
    // A family begun with the password alone does not outlive the new policy.
    let (status, refreshed) = p.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!((status, refreshed["error"].as_str()), (400, Some("invalid_grant")), "{refreshed}");
    let changed = audit_rows(&p, tenant_id(&p, "acme").await, "tenant.mfa_policy_changed").await;
    assert_eq!((changed.len(), changed[0].actor_kind.as_str()), (1, "operator"));
    let acme = tenant_id(&p, "acme").await.to_string();
    assert_eq!(
        (changed[0].target_kind.as_deref(), changed[0].target_id.as_deref()),
        (Some("tenant"), Some(acme.as_str()))
    );
    assert_eq!(changed[0].ip, None, "the command line has no IP");
    let out = crate::support::cli(&p.t, &["tenant", "require-mfa", "--slug", "acme", "--off", "--json"], "");
    assert!(out.status.success());

    let strict = p
        .client(laventecare_auth::clients::ClientRequest {
            name: "Strict".into(),
            grants: vec!["authorization_code".into()],
            redirect_uris: vec![crate::flow::REDIRECT.into()],
            require_mfa: true,
            ..Default::default()
        })
        .await;
    let (_, challenge) = pkce();
    let mut url = url::Url::parse(&authorize_url(&p, &challenge, &[])).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "client_id" { strict.client_id.clone() } else { v.into_owned() };
            (k.into_owned(), v)
        })
        .filter(|(k, _)| k != "scope")
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs).append_pair("scope", "openid");
    let client_policy = Browser::new(&p).sign_in_through(url.as_str(), &p.email, PASSWORD).await;
    assert!(enrol_page(&client_policy), "the client requires MFA");
}

/// Attempts are counted before they are checked: a burst of parallel wrong passwords gets only
/// the free attempts checked; the rest are refused unchecked (and look the same).
#[tokio::test]
async fn parallel_guesses_cannot_outrun_the_counter() {
    let p = Provider::start_with(&[("LCA_LOGIN_FREE_FAILURES", "3"), ("LCA_LOGIN_LOCK_AFTER", "100")]).await;
    let acme = tenant_id(&p, "acme").await;
    let mut pages = Vec::new();
    for _ in 0..12 {
        let b = Browser::new(&p);
        let (_, challenge) = pkce();
        let page = b.open(&authorize_url(&p, &challenge, &[])).await;
        pages.push((b, page));
    }
    let guesses = pages.iter().map(|(b, page)| b.login(page, &p.email, "a wrong guess!"));
    let steps = futures::future::join_all(guesses).await;
    // One address has a bounded share of the password hasher: the ones past it are told to
    // retry (429) without being counted or checked.
    let (refused, failed): (Vec<_>, Vec<_>) = steps.iter().partition(|s| s.status() == 429);
    assert!(failed.iter().all(|s| s.html().contains("is incorrect")), "{steps:?}");
    assert!(failed.len() >= 4, "{} answered, {} told to retry", failed.len(), refused.len());
    let rows = audit_rows(&p, acme, "login.failure").await;
    let checked = rows.iter().filter(|r| r.details["reason"] == "credentials").count();
    assert!(checked <= 3, "only the free attempts are checked, got {checked}");
    // The refused ones: one row for the wait, not one each.
    assert_eq!(rows.len() - checked, 1, "{rows:?}");
}

/// A session shown no secret cannot see or activate another session's pending one, and
/// enrolling ends the user's other sessions (which never passed the new factor).
#[tokio::test]
async fn enrolment_belongs_to_the_session_that_started_it() {
    let p = Provider::start().await;
    let sign_in = || async {
        let b = Browser::new(&p);
        let login = b.open(&p.url("/account")).await;
        let account = b.login(&login, &p.email, PASSWORD).await;
        assert_eq!(account.status(), 200);
        b
    };
    let (owner, other) = (sign_in().await, sign_in().await);
    let enrol = owner.open(&p.url("/mfa/enrol")).await;
    let secret = crate::flow::between(enrol.html(), "<code id=\"totp-secret\">", "</code>");
    let page = other.open(&p.url("/account")).await;
    let csrf = crate::flow::hidden(page.html(), "csrf");
    let probe = other.post("/mfa/enrol", &[("csrf", &csrf), ("req", ""), ("code", "000000")]).await;
    assert!(!probe.html().contains(&secret), "another session's secret is never shown");
    let steal = other.post("/mfa/enrol", &[("csrf", &csrf), ("req", ""), ("code", &totp_code(&secret, 0))]).await;
    assert!(!steal.html().contains("backup-codes"), "nor activated by it");
    // The owner enrols; the other session (a new pending secret of its own now) has ended.
    let fresh = owner.open(&p.url("/mfa/enrol")).await;
    let (_, codes, _) = owner.enrol(&fresh).await;
    assert_eq!(codes.len(), 10);
    assert!(other.open(&p.url("/account")).await.html().contains("action=\"/login\""), "other session ended");
    assert_eq!(owner.open(&p.url("/account")).await.status(), 200);
}

impl Row {
    /// Asserts who did it to what, from where.
    pub fn is(&self, actor: (&str, Option<&str>), target: (&str, Option<&str>), ip: Option<&str>) {
        assert_eq!((self.actor_kind.as_str(), self.actor_id.as_deref()), actor, "actor of {self:?}");
        assert_eq!(
            (self.target_kind.as_deref(), self.target_id.as_deref()),
            (Some(target.0), target.1),
            "target of {self:?}"
        );
        assert_eq!(self.ip.as_deref(), ip, "ip of {self:?}");
    }
}

/// The account page lists the user's sessions and signs another one out; backup codes are
/// made anew on demand (the old ones stop working); the second-factor events are audited
/// with actor, target, tenant and IP; and failures from one client IP, over any accounts, lock
/// that IP.
#[tokio::test]
async fn account_sessions_backup_codes_and_the_ip_lock() {
    let p = Provider::start_with(&[("LCA_LOGIN_IP_LOCK_AFTER", "3")]).await;
    let acme = tenant_id(&p, "acme").await;
    let ann = user_id(&p, &p.email).await.to_string();
    let client = p.client_id.clone();
    let local = Some("127.0.0.1");
    let (first, secret, old_codes) = enrolled(&p, &p.email, PASSWORD).await;
    let (second, verifier) = {
        let b = Browser::new(&p);
        let (step, verifier) = authorize_with(&p, &b, PASSWORD, Some(&totp_code(&secret, 1))).await;
        let (status, _) = p.redeem(&step.code().unwrap(), &verifier).await;
        assert_eq!(status, 200);
        (b, verifier)
    };
    let _ = verifier;
    let verify = audit_rows(&p, acme, "mfa.verify").await;
    verify[0].is(("user", Some(&ann)), ("client", Some(&client)), local);
    assert_eq!(verify[0].details["method"], "totp");
    audit_rows(&p, acme, "mfa.enrol").await[0].is(("user", Some(&ann)), ("user", Some(&ann)), local);

    // Two sessions listed; the other one signed out from here.
    let account = first.open(&p.url("/account")).await;
    let html = account.html();
    assert_eq!(html.matches("name=\"session\"").count(), 1, "one other session, with a sign-out button");
    assert!(html.contains("(this session)"));
    let csrf = crate::flow::hidden(html, "csrf");
    let handle = crate::flow::hidden(html, "session");
    first.post("/account/sessions/end", &[("csrf", &csrf), ("session", &handle)]).await;
    assert!(second.open(&p.url("/account")).await.html().contains("action=\"/login\""), "signed out");
    audit_rows(&p, acme, "session.ended").await[0].is(("user", Some(&ann)), ("session", Some(&handle)), local);

    // New backup codes: the old ones stop working.
    let regenerated = first.post("/account/backup-codes", &[("csrf", &csrf)]).await;
    let new_codes = crate::flow::backup_codes(regenerated.html());
    assert_eq!(new_codes.len(), 10);
    assert!(new_codes.iter().all(|c| !old_codes.contains(c)));
    audit_rows(&p, acme, "mfa.backup_codes_regenerated").await[0].is(("user", Some(&ann)), ("user", Some(&ann)), local);
    let b = Browser::new(&p);
    let (step, _) = authorize_with(&p, &b, PASSWORD, Some(&old_codes[0])).await;
    assert!(step.html().contains("That code did not work"), "an old backup code no longer works");
    let failure = audit_rows(&p, acme, "mfa.failure").await;
    failure[0].is(("user", Some(&ann)), ("client", Some(&client)), local);
    assert_eq!(failure[0].details["reason"], "backup_code");
    let used = b.second_factor(&step, &new_codes[0]).await;
    assert!(used.html().contains("Backup codes left: 9"));
    audit_rows(&p, acme, "mfa.backup_code_used").await[0].is(("user", Some(&ann)), ("client", Some(&client)), local);

    // Three failures from this IP, for three different addresses: the IP is locked, so even a
    // right password from it is refused, and the lock is audited.
    for email in ["x1@example.com", "x2@example.com", "x3@example.com"] {
        let b = Browser::new(&p);
        let (_, challenge) = pkce();
        let page = b.open(&authorize_url(&p, &challenge, &[])).await;
        b.login(&page, email, "wrong password!").await;
    }
    let b = Browser::new(&p);
    let (_, challenge) = pkce();
    let page = b.open(&authorize_url(&p, &challenge, &[])).await;
    let refused = b.login(&page, &p.email, PASSWORD).await;
    assert!(refused.html().contains("is incorrect"), "the IP is locked");
    let locks = audit_rows(&p, acme, "login.ip_lockout").await;
    assert_eq!(locks.len(), 1);
    locks[0].is(("system", None), ("ip", Some("127.0.0.1")), local);
}
