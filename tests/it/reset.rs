//! "Forgot your password?" (issue #14, "Email"): a one-time link mailed to the account's
//! address (a real SMTP server on loopback, `smtp::Sink`) sets a new password once; the page
//! answers the same for an unknown address, which gets no mail; asks are bounded per account
//! and per IP; the second factor stays; every session ends; both steps are audited; and
//! Chromium goes through it end to end.

use laventecare_auth::html::text::EN;

use crate::chrome::Chrome;
use crate::flow::{Browser, PASSWORD, Provider, Step, hidden};
use crate::smtp::{Received, provider_with_mail};

const NEW_PASSWORD: &str = "a fresh passphrase 2026";

/// Asks for a link for `email` from a fresh browser; returns the answer page.
async fn ask(p: &Provider, email: &str) -> Step {
    let b = Browser::new(p);
    let form = b.open(&p.url("/forgot")).await;
    assert!(form.html().contains("action=\"/forgot\""), "{}", form.html());
    let csrf = hidden(form.html(), "csrf");
    b.post("/forgot", &[("csrf", csrf.as_str()), ("email", email)]).await
}

/// The link in a mail.
fn link_in(mail: &Received, issuer: &str) -> String {
    mail.link_to(issuer, "/reset")
}

/// Sets `password` through the link's form; returns the final page.
async fn set_through(p: &Provider, link: &str, password: &str) -> Step {
    let b = Browser::new(p);
    let form = b.open(link).await;
    assert_eq!(form.status(), 200, "{}", form.html());
    let (csrf, token) = (hidden(form.html(), "csrf"), hidden(form.html(), "token"));
    b.post("/reset", &[("csrf", csrf.as_str()), ("token", token.as_str()), ("password", password)]).await
}

async fn signs_in(p: &Provider, password: &str) -> Step {
    let b = Browser::new(p);
    let login = b.open(&p.url("/account")).await;
    b.login(&login, &p.email, password).await
}

#[tokio::test]
async fn a_mailed_link_sets_a_new_password_once_and_an_unknown_address_gets_the_same_answer() {
    let (p, sink) = provider_with_mail().await;
    // A session signed in elsewhere, to be ended by the reset.
    let elsewhere = Browser::new(&p);
    let login = elsewhere.open(&p.url("/account")).await;
    assert!(elsewhere.login(&login, &p.email, PASSWORD).await.html().contains("action=\"/account/password\""));

    let known = ask(&p, &p.email).await;
    let unknown = ask(&p, "nobody@example.com").await;
    assert_eq!((known.status(), unknown.status()), (200, 200));
    assert_eq!(known.html(), unknown.html(), "the same page, whether or not the address has an account");
    assert!(known.html().contains(EN.forgot_sent_body));

    let mail = sink.nth_to(&p.email, 1).await;
    assert_eq!(mail.header("Subject").as_deref(), Some(EN.mail_reset_subject));
    let link = link_in(&mail, &p.issuer);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(sink.all().iter().all(|m| m.rcpt_to != ["nobody@example.com"]), "no mail for an unknown address");

    // A password the rules refuse does not spend the link.
    let refused = set_through(&p, &link, "short").await;
    assert!(refused.html().contains("action=\"/reset\"") && refused.html().contains("alert"), "{}", refused.html());
    let done = set_through(&p, &link, NEW_PASSWORD).await;
    assert!(done.html().contains(EN.reset_done), "{}", done.html());
    // Once.
    let again = Browser::new(&p).open(&link).await;
    assert_eq!(again.status(), 410);
    assert!(again.html().contains(EN.reset_invalid));

    // The new password works, the old does not, and the other session has ended.
    assert!(signs_in(&p, NEW_PASSWORD).await.html().contains("action=\"/account/password\""));
    assert!(signs_in(&p, PASSWORD).await.html().contains(EN.bad_credentials));
    let ended = elsewhere.open(&p.url("/account")).await;
    assert!(ended.html().contains("action=\"/login\""), "signed out: {}", ended.html());

    // The notice of the change follows, and both steps are in the audit log.
    let notice = sink.nth_to(&p.email, 2).await;
    assert_eq!(notice.header("Subject").as_deref(), Some(EN.mail_password_changed_subject));
    let acme = crate::mfa::tenant_id(&p, "acme").await;
    assert_eq!(crate::mfa::audit_rows(&p, acme, "password_reset.requested").await.len(), 1);
    let used = crate::mfa::audit_rows(&p, acme, "password_reset.used").await;
    assert_eq!(used.len(), 1);
    assert!(used[0].details["sessions_ended"].as_i64().unwrap() >= 1, "{:?}", used[0].details);
}

#[tokio::test]
async fn a_reset_keeps_the_second_factor_and_ends_other_links() {
    let (p, sink) = provider_with_mail().await;
    let _ = crate::mfa::enrolled(&p, &p.email, PASSWORD).await;
    ask(&p, &p.email).await;
    ask(&p, &p.email).await;
    let first = link_in(&sink.nth_to(&p.email, 1).await, &p.issuer);
    let second = link_in(&sink.nth_to(&p.email, 2).await, &p.issuer);
    assert_ne!(first, second);
    assert!(set_through(&p, &second, NEW_PASSWORD).await.html().contains(EN.reset_done));
    assert_eq!(Browser::new(&p).open(&first).await.status(), 410, "setting a password ends the other links");
    let step = signs_in(&p, NEW_PASSWORD).await;
    assert!(step.html().contains("action=\"/login/mfa\""), "still asks for the second factor: {}", step.html());
}

#[tokio::test]
async fn asks_are_bounded_per_account_and_per_ip_and_links_expire() {
    let (p, sink) = provider_with_mail().await;
    for _ in 0..4 {
        assert_eq!(ask(&p, &p.email).await.status(), 200);
    }
    // All four asks were counted (the work runs after the answer), and three links were made.
    let ann = crate::mfa::user_id(&p, &p.email).await;
    let key = laventecare_auth::secrets::sha256(format!("password_reset:{ann}").as_bytes());
    let mut db = p.t.owner().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let hits: Option<i32> = sqlx::query_scalar("SELECT hits FROM rate_limits WHERE key_hash = $1")
            .bind(key.as_slice())
            .fetch_optional(&mut db)
            .await
            .unwrap();
        if hits == Some(4) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "asks counted: {hits:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let links: i64 = sqlx::query_scalar("SELECT count(*) FROM password_resets").fetch_one(&mut db).await.unwrap();
    assert_eq!(links, i64::from(laventecare_auth::identity::reset::PER_ACCOUNT_PER_HOUR), "three an hour");
    sink.nth_to(&p.email, 3).await;

    // Twenty asks an hour per address, known or not; then 429 with Retry-After.
    let limit = laventecare_auth::pages::reset::ASKS_PER_IP_PER_HOUR as usize;
    for i in 4..limit {
        assert_eq!(ask(&p, &format!("x{i}@example.com")).await.status(), 200, "ask {i}");
    }
    let over = ask(&p, "one-more@example.com").await;
    assert_eq!(over.status(), 429, "{}", over.html());

    // An expired link is refused.
    let link = link_in(&sink.nth_to(&p.email, 1).await, &p.issuer);
    sqlx::query("UPDATE password_resets SET expires_at = now() - interval '1 second'").execute(&mut db).await.unwrap();
    assert_eq!(Browser::new(&p).open(&link).await.status(), 410);
}

/// Two requests with one link at once: one sets the password, the other is refused.
#[tokio::test]
async fn a_link_raced_twice_sets_the_password_once() {
    let (p, sink) = provider_with_mail().await;
    ask(&p, &p.email).await;
    let link = link_in(&sink.nth_to(&p.email, 1).await, &p.issuer);
    let (a, b) = (Browser::new(&p), Browser::new(&p));
    let (fa, fb) = (a.open(&link).await, b.open(&link).await);
    let post = |br: &Browser, form: &Step, password: &'static str| {
        let (csrf, token) = (hidden(form.html(), "csrf"), hidden(form.html(), "token"));
        let br = br.clone();
        async move { br.post("/reset", &[("csrf", csrf.as_str()), ("token", token.as_str()), ("password", password)]).await }
    };
    let (ra, rb) = tokio::join!(post(&a, &fa, NEW_PASSWORD), post(&b, &fb, "the other passphrase 55"));
    let mut statuses = [ra.status(), rb.status()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 410], "{} / {}", ra.html(), rb.html());
    let winner = if ra.status() == 200 { NEW_PASSWORD } else { "the other passphrase 55" };
    assert!(signs_in(&p, winner).await.html().contains("action=\"/account/password\""));
}

/// A link stops working when its account is disabled, and when the password is changed
/// another way.
#[tokio::test]
async fn a_link_dies_with_a_disabled_account_or_another_password_change() {
    let (p, sink) = provider_with_mail().await;
    ask(&p, &p.email).await;
    let link = link_in(&sink.nth_to(&p.email, 1).await, &p.issuer);
    let mut db = p.t.owner().await;
    sqlx::query("UPDATE users SET status = 'disabled' WHERE email = $1").bind(&p.email).execute(&mut db).await.unwrap();
    assert_eq!(set_through(&p, &link, NEW_PASSWORD).await.status(), 410);
    sqlx::query("UPDATE users SET status = 'active' WHERE email = $1").bind(&p.email).execute(&mut db).await.unwrap();

    ask(&p, &p.email).await;
    let link = link_in(&sink.nth_to(&p.email, 2).await, &p.issuer);
    let b = Browser::new(&p);
    let login = b.open(&p.url("/account")).await;
    let account = b.login(&login, &p.email, PASSWORD).await;
    let csrf = hidden(account.html(), "csrf");
    let changed =
        b.post("/account/password", &[("csrf", csrf.as_str()), ("current", PASSWORD), ("new", NEW_PASSWORD)]).await;
    assert!(changed.html().contains(EN.account_password_changed));
    assert_eq!(Browser::new(&p).open(&link).await.status(), 410, "the account page's change spent it");
}

#[tokio::test]
async fn chromium_resets_a_forgotten_password_through_the_mailed_link() {
    let (p, sink) = provider_with_mail().await;
    let chrome = Chrome::start().await;
    chrome.c().goto(&p.url("/account")).await.unwrap();
    chrome.wait_for("a#forgot").await.click().await.unwrap();
    chrome.wait_for_title(&format!("{} · LaventeCare", EN.forgot_title)).await;
    chrome.wait_for("input#email").await.send_keys(&p.email).await.unwrap();
    chrome.wait_for("button[type=submit]").await.click().await.unwrap();
    chrome.wait_for_title(&format!("{} · LaventeCare", EN.forgot_sent_title)).await;

    let link = link_in(&sink.nth_to(&p.email, 1).await, &p.issuer);
    chrome.c().goto(&link).await.unwrap();
    chrome.wait_for("input#password").await.send_keys(NEW_PASSWORD).await.unwrap();
    chrome.wait_for("button[type=submit]").await.click().await.unwrap();
    chrome.wait_for("a#continue").await.click().await.unwrap();
    chrome.wait_for("input#email").await.send_keys(&p.email).await.unwrap();
    chrome.wait_for("input#password").await.send_keys(NEW_PASSWORD).await.unwrap();
    chrome.wait_for("button[type=submit]").await.click().await.unwrap();
    chrome.wait_for_title(&format!("{} · LaventeCare", EN.signed_in_title)).await;
    chrome.close().await;
}
