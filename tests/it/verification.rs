//! Email verification (issue #14, "Email"): an account created with `user create` gets a
//! one-time link by mail (a real SMTP server on loopback, `smtp::Sink`); its owner can ask
//! for another on the account page, three an hour; following it (a GET that changes nothing,
//! then a POST) sets `email_verified`, which userinfo then says, once; a link
//! for an address the account no longer has does nothing; Chromium goes through it end to
//! end from the command line's mail.

use laventecare_auth::html::text::EN;
use serde_json::json;

use crate::chrome::Chrome;
use crate::flow::{Browser, PASSWORD, Provider, Step, hidden};
use crate::mfa::{audit_rows, tenant_id};
use crate::smtp::{Received, Sink, provider_with_mail};
use crate::support::{binary, run_with_stdin};

/// The link in a mail.
fn link_in(mail: &Received, issuer: &str) -> String {
    mail.link_to(issuer, "/verify-email")
}

/// Opens the link and presses its button, from a fresh browser; the final page.
async fn confirm(p: &Provider, link: &str) -> Step {
    let b = Browser::new(p);
    let page = b.open(link).await;
    if page.status() != 200 {
        return page;
    }
    let (csrf, token) = (hidden(page.html(), "csrf"), hidden(page.html(), "token"));
    b.post("/verify-email", &[("csrf", csrf.as_str()), ("token", token.as_str())]).await
}

async fn verified(p: &Provider, email: &str) -> bool {
    let mut db = p.t.owner().await;
    sqlx::query_scalar("SELECT email_verified FROM users WHERE lower(email) = lower($1)")
        .bind(email)
        .fetch_one(&mut db)
        .await
        .unwrap()
}

/// `user create` with the provider's mail server and issuer: the command's output. It runs on
/// a blocking thread: the SMTP server it mails to runs on this test's runtime.
async fn user_create(p: &Provider, sink: &Sink, email: &str, extra: &[&str]) -> serde_json::Value {
    let mut cmd = binary();
    let url = sink.url();
    p.t.database_env(&mut cmd)
        .env("LCA_SMTP_URL", &url)
        .env("LCA_ISSUER", &p.issuer)
        .args(["user", "create", "--email", email, "--password-stdin", "--json"])
        .args(extra);
    let out = tokio::task::spawn_blocking(move || run_with_stdin(cmd, &format!("{PASSWORD}\n"))).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Signed in at the account page, ann asks for a link: it verifies once; the page no longer
/// offers one; userinfo says `email_verified: true`; a fourth ask in the hour mails
/// nothing; the owner of the mailbox needs no session to follow the link.
#[tokio::test]
async fn the_account_page_mails_a_link_that_verifies_the_address_once() {
    let (p, sink) = provider_with_mail().await;
    let b = Browser::new(&p);
    let login = b.open(&p.url("/account")).await;
    let account = b.login(&login, &p.email, PASSWORD).await;
    assert!(account.html().contains(EN.account_profile_email_unverified));
    assert!(account.html().contains("action=\"/account/verify-email\""));
    let csrf = hidden(account.html(), "csrf");
    let asked = b.post("/account/verify-email", &[("csrf", csrf.as_str())]).await;
    assert!(asked.html().contains(EN.account_verify_sent), "{}", asked.html());
    // A forged ask (no CSRF token) is refused and sends nothing.
    let forged = b.post("/account/verify-email", &[]).await;
    assert!(forged.status() >= 400, "{}", forged.status());

    let mail = sink.nth_to(&p.email, 1).await;
    assert_eq!(mail.header("Subject").as_deref(), Some(EN.mail_verify_subject));
    let link = link_in(&mail, &p.issuer);
    // The GET changes nothing (a mail scanner that fetches it spends nothing).
    assert_eq!(Browser::new(&p).open(&link).await.status(), 200);
    assert!(!verified(&p, &p.email).await);
    let done = confirm(&p, &link).await;
    assert!(done.html().contains(EN.verify_done), "{}", done.html());
    assert!(verified(&p, &p.email).await);
    let again = confirm(&p, &link).await;
    assert_eq!(again.status(), 410, "once");
    let page = b.open(&p.url("/account")).await;
    assert!(page.html().contains(EN.account_profile_email_verified));
    assert!(!page.html().contains("action=\"/account/verify-email\""), "nothing left to verify");
    let acme = tenant_id(&p, "acme").await;
    assert_eq!(audit_rows(&p, acme, "email_verification.sent").await.len(), 1);
    assert_eq!(audit_rows(&p, acme, "email.verified").await.len(), 1);

    // Userinfo says so now.
    let (_, tokens) = crate::flow::tokens(&p).await;
    let access = tokens["access_token"].as_str().unwrap();
    let info: serde_json::Value =
        p.http().get(p.url("/userinfo")).bearer_auth(access).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["email_verified"], json!(true), "{info}");
}

/// Three links an hour; a link for an address the account no longer has does nothing; a
/// disabled account's link does nothing; every link dies once one is used.
#[tokio::test]
async fn links_are_bounded_bound_to_the_address_and_die_together() {
    let (p, sink) = provider_with_mail().await;
    let b = Browser::new(&p);
    let login = b.open(&p.url("/account")).await;
    let account = b.login(&login, &p.email, PASSWORD).await;
    let csrf = hidden(account.html(), "csrf");
    for _ in 0..3 {
        let asked = b.post("/account/verify-email", &[("csrf", csrf.as_str())]).await;
        assert!(asked.html().contains(EN.account_verify_sent));
    }
    let fourth = b.post("/account/verify-email", &[("csrf", csrf.as_str())]).await;
    assert!(fourth.html().contains(EN.account_verify_too_often), "{}", fourth.html());
    let links: Vec<String> = {
        let mut v = Vec::new();
        for n in 1..=3 {
            v.push(link_in(&sink.nth_to(&p.email, n).await, &p.issuer));
        }
        v
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sink.all().len(), 3, "the fourth ask mailed nothing");

    // The address changes (an operator edits it): the old links verify nothing.
    let mut db = p.t.owner().await;
    sqlx::query("UPDATE users SET email = 'ann.new@example.com' WHERE email = $1")
        .bind(&p.email)
        .execute(&mut db)
        .await
        .unwrap();
    let page = confirm(&p, &links[0]).await;
    assert_eq!(page.status(), 410, "{}", page.html());
    assert!(!verified(&p, "ann.new@example.com").await);
    // Back to the address: a link works, and spends the others.
    sqlx::query("UPDATE users SET email = $1 WHERE email = 'ann.new@example.com'")
        .bind(&p.email)
        .execute(&mut db)
        .await
        .unwrap();
    assert!(confirm(&p, &links[1]).await.html().contains(EN.verify_done));
    assert_eq!(confirm(&p, &links[2]).await.status(), 410, "the others are spent");

    // A disabled account's link does nothing (a link made before it was disabled, with the
    // hour's allowance given back).
    let user = crate::mfa::user_id(&p, &p.email).await;
    sqlx::query("UPDATE users SET email_verified = false WHERE id = $1").bind(user).execute(&mut db).await.unwrap();
    sqlx::query("DELETE FROM rate_limits").execute(&mut db).await.unwrap();
    let issued = laventecare_auth::identity::verification::issue(
        &p.t.db,
        &p.state.config,
        user,
        &laventecare_auth::db::audit::Actor::system(),
    )
    .await
    .unwrap()
    .expect("a link");
    use laventecare_auth::secrets::ExposeSecret;
    let link = issued.link.expose_secret().to_owned();
    sqlx::query("UPDATE users SET status = 'disabled' WHERE id = $1").bind(user).execute(&mut db).await.unwrap();
    assert_eq!(confirm(&p, &link).await.status(), 410);
    assert!(!verified(&p, &p.email).await);
    // Malformed tokens.
    assert_eq!(Browser::new(&p).open(&p.url("/verify-email")).await.status(), 410);
    let long = format!("/verify-email?token={}", "x".repeat(4000));
    assert_eq!(Browser::new(&p).open(&p.url(&long)).await.status(), 410);
}

/// Must-show 3 in Chromium: an operator creates an account on the command line; the mail
/// with the link reaches the SMTP server; Chromium follows it and confirms; the account page
/// shows the address verified. `--no-verification-mail` sends nothing.
#[tokio::test]
async fn chromium_verifies_a_new_accounts_address_through_the_mailed_link() {
    let (p, sink) = provider_with_mail().await;
    let out = user_create(&p, &sink, "fresh@example.com", &[]).await;
    assert_eq!(out["verification_mailed"], json!(true), "{out}");
    let quiet = user_create(&p, &sink, "quiet@example.com", &["--no-verification-mail"]).await;
    assert_eq!(quiet["verification_mailed"], json!(false), "{quiet}");
    let role = laventecare_auth::vocabulary::Role::Viewer;
    laventecare_auth::tenancy::add_member(&p.t.db, "acme", "fresh@example.com", role).await.unwrap();

    let mail = sink.nth_to("fresh@example.com", 1).await;
    let link = link_in(&mail, &p.issuer);
    let chrome = Chrome::start().await;
    chrome.c().goto(&link).await.unwrap();
    chrome.wait_for_title(&format!("{} · LaventeCare", EN.verify_title)).await;
    chrome.wait_for("#verify button[type=submit]").await.click().await.unwrap();
    let next = chrome.wait_for("a#continue").await;
    assert!(chrome.source().await.contains(EN.verify_done));
    next.click().await.unwrap();
    chrome.wait_for("input#email").await.send_keys("fresh@example.com").await.unwrap();
    chrome.wait_for("input#password").await.send_keys(PASSWORD).await.unwrap();
    chrome.wait_for("button[type=submit]").await.click().await.unwrap();
    let shown = chrome.wait_for("#email-verified").await.text().await.unwrap();
    assert_eq!(shown, EN.account_profile_email_verified);
    chrome.close().await;
    assert!(verified(&p, "fresh@example.com").await);
    assert!(sink.all().iter().all(|m| m.rcpt_to != ["quiet@example.com"]), "no mail for --no-verification-mail");
}
