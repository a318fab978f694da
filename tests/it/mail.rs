//! Mail (issue #14, "Email"): the provider's SMTP client (lettre) delivers to a real SMTP
//! server on loopback (`smtp::Sink`). A password change is mailed to the account, in the
//! user's language, saying when and from where; so are an administrator's reset of the
//! second factor and a device the user connected; a mail server that is down does not fail
//! the change; a password for the mail server never travels in the clear to another machine.

use laventecare_auth::html::text::{EN, NL};
use laventecare_auth::mail::Mailer;

use crate::flow::{Browser, PASSWORD, Provider, hidden};
use crate::smtp::Sink;
use crate::support::{free_port, test_config};

const NEW_PASSWORD: &str = "a brand new passphrase 99";

/// Signs ann in at the account page and changes her password; returns the page.
async fn change_password(p: &Provider, current: &str, new: &str) -> String {
    let b = Browser::new(p);
    let login = b.open(&p.url("/account")).await;
    let account = b.login(&login, &p.email, current).await;
    let csrf = hidden(account.html(), "csrf");
    let changed = b.post("/account/password", &[("csrf", csrf.as_str()), ("current", current), ("new", new)]).await;
    assert_eq!(changed.status(), 200);
    changed.html().to_owned()
}

#[tokio::test]
async fn a_password_change_is_mailed_to_the_account_in_its_language() {
    let sink = Sink::start().await;
    let url = sink.url();
    let p = Provider::start_with(&[("LCA_SMTP_URL", &url), ("LCA_MAIL_FROM", "LaventeCare <auth@example.com>")]).await;
    let page = change_password(&p, PASSWORD, NEW_PASSWORD).await;
    assert!(page.contains(EN.account_password_changed), "{page}");

    let mail = sink.nth_to(&p.email, 1).await;
    assert_eq!(mail.mail_from, "auth@example.com");
    assert_eq!(mail.header("Subject").as_deref(), Some(EN.mail_password_changed_subject));
    let body = mail.body();
    for part in [EN.mail_password_changed_body, EN.mail_not_you, p.email.as_str(), "127.0.0.1", " UTC"] {
        assert!(body.contains(part), "{part:?} in {body}");
    }
    for secret in [PASSWORD, NEW_PASSWORD] {
        assert!(!mail.data.contains(secret), "no password in the mail");
    }

    // A Dutch user gets it in Dutch.
    let mut db = p.t.owner().await;
    sqlx::query("UPDATE users SET locale = 'nl' WHERE email = $1").bind(&p.email).execute(&mut db).await.unwrap();
    change_password(&p, NEW_PASSWORD, "yet another passphrase 7").await;
    let mail = sink.nth_to(&p.email, 2).await;
    assert_eq!(mail.header("Subject").as_deref(), Some(NL.mail_password_changed_subject));
    assert!(mail.body().contains(NL.mail_not_you), "{}", mail.body());
    assert_eq!(sink.all().len(), 2, "one mail per change");
}

/// Ann approves a device: she is told which, in her language. An administrator resets her
/// second factor through the admin API: she is told that too.
#[tokio::test]
async fn an_mfa_reset_and_a_connected_device_are_mailed_to_the_user() {
    let sink = Sink::start().await;
    let url = sink.url();
    let p = Provider::start_with(&[("LCA_SMTP_URL", &url)]).await;
    let ann = crate::mfa::user_id(&p, &p.email).await;
    let mut db = p.t.owner().await;
    sqlx::query("UPDATE users SET locale = 'nl-BE' WHERE id = $1").bind(ann).execute(&mut db).await.unwrap();

    let device = crate::device::device_client(&p).await;
    crate::device::approved(&p, &device).await;
    let mail = sink.nth_to(&p.email, 1).await;
    assert_eq!(mail.header("Subject").as_deref(), Some(NL.mail_device_subject));
    let name = laventecare_auth::clients::find(&p.t.db, &device).await.unwrap().unwrap().name;
    assert!(mail.body().contains(&format!("{} {name}", NL.mail_device_body)), "{}", mail.body());
    let admin = crate::api::service_token(&p, "acme", laventecare_auth::vocabulary::Role::Admin).await;
    let res =
        p.http().post(p.url(&format!("/api/v1/members/{ann}/reset-mfa"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let mail = sink.nth_to(&p.email, 2).await;
    assert_eq!(mail.header("Subject").as_deref(), Some(NL.mail_mfa_reset_subject));
    assert!(mail.body().contains(NL.mail_mfa_reset_body), "{}", mail.body());

    assert_eq!(sink.all().len(), 2);
}

/// The mail server is down: the change is made and answered all the same (the notice is sent
/// in the background and its failure logged).
#[tokio::test]
async fn a_mail_server_that_is_down_does_not_fail_the_change() {
    let closed = format!("smtp://127.0.0.1:{}", free_port());
    let p = Provider::start_with(&[("LCA_SMTP_URL", &closed)]).await;
    let started = std::time::Instant::now();
    let page = change_password(&p, PASSWORD, NEW_PASSWORD).await;
    assert!(page.contains(EN.account_password_changed), "{page}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "not held up by the mail server");
    // The new password is the one that works.
    let b = Browser::new(&p);
    let login = b.open(&p.url("/account")).await;
    let account = b.login(&login, &p.email, NEW_PASSWORD).await;
    assert!(account.html().contains("action=\"/account/password\""), "signed in with the new password");
}

/// (In a runtime: lettre's connection pool lives on one.)
#[tokio::test]
async fn the_mail_settings_are_checked_at_start() {
    let mailer = |vars: &[(&str, &str)]| Mailer::from_config(&test_config(vars));
    assert!(mailer(&[]).is_ok(), "no SMTP: mail is logged");
    assert!(mailer(&[("LCA_SMTP_URL", "smtp://relay.internal:25")]).is_ok());
    assert!(mailer(&[("LCA_SMTP_URL", "smtps://user:secret@mail.example.com")]).is_ok());
    assert!(mailer(&[("LCA_SMTP_URL", "smtp://user:secret@mail.example.com:587?tls=required")]).is_ok());
    let loopback = mailer(&[("LCA_SMTP_URL", "smtp://user:secret@127.0.0.1:25")]);
    assert!(loopback.is_ok(), "loopback may be plain: {:?}", loopback.err());
    assert!(mailer(&[("LCA_SMTP_URL", "smtp://user:secret@localhost:25")]).is_ok());
    assert!(mailer(&[("LCA_SMTP_URL", "smtp://user:secret@127.0.0.1.example.com:25")]).is_err(), "not loopback");
    let plain = mailer(&[("LCA_SMTP_URL", "smtp://user:secret@mail.example.com:25")]).unwrap_err().to_string();
    assert!(plain.contains("TLS") && !plain.contains("secret"), "{plain}");
    let odd = mailer(&[("LCA_SMTP_URL", "ftp://user:secret@mail.example.com")]).unwrap_err().to_string();
    assert!(!odd.contains("secret"), "{odd}");
    assert!(mailer(&[("LCA_MAIL_FROM", "not a mailbox")]).is_err());
}
