//! Invitations (issue #14, "Email"): an administrator invites an address with a role; the
//! link mailed to it (a real SMTP server on loopback, `smtp::Sink`) creates the account with
//! the password the invitee chooses, or links the account the address has, adds the
//! membership and verifies the address, once. Inviting answers the same whether or not the
//! address has an account; inviting again replaces the open invitation; a withdrawn,
//! expired, replayed or raced link does nothing; so does one for a disabled account or a
//! suspended tenant; another tenant's administrator cannot touch it; and Chromium goes
//! through it end to end, from the admin page to the invitee's first sign-in.

use laventecare_auth::html::text::{ADMIN, EN, NL};
use laventecare_auth::vocabulary::Role;
use serde_json::{Value, json};

use crate::chrome::Chrome;
use crate::flow::{Browser, Provider, Step, hidden};
use crate::mfa::{audit_rows, tenant_id, user_id};
use crate::smtp::{Received, provider_with_mail};

const CHOSEN: &str = "an invited passphrase 31";

/// The link in a mail.
fn link_in(mail: &Received, issuer: &str) -> String {
    mail.link_to(issuer, "/invite")
}

/// Invites `email` with `role` through the admin API of `tenant`; the status and body.
async fn invite(p: &Provider, token: &str, email: &str, role: &str) -> (u16, Value) {
    let res = p
        .http()
        .post(p.url("/api/v1/invitations"))
        .bearer_auth(token)
        .json(&json!({ "email": email, "role": role }))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Accepts through the link's form from a fresh browser (with `password` when asked for).
async fn accept(p: &Provider, link: &str, password: Option<&str>) -> Step {
    let b = Browser::new(p);
    let page = b.open(link).await;
    post_accept(&b, &page, password).await
}

/// Posts the accept form of `page`, the invitation page `b` has open.
async fn post_accept(b: &Browser, page: &Step, password: Option<&str>) -> Step {
    assert_eq!(page.status(), 200, "{}", page.html());
    assert!(page.html().contains("action=\"/invite\""), "{}", page.html());
    let (csrf, token) = (hidden(page.html(), "csrf"), hidden(page.html(), "token"));
    let mut form = vec![("csrf", csrf.as_str()), ("token", token.as_str())];
    if let Some(password) = password {
        form.push(("password", password));
    }
    b.post("/invite", &form).await
}

/// Opens the link, follows its sign-in button, signs in, and comes back to the invitation:
/// the browser, signed in.
async fn signed_in_through(p: &Provider, link: &str, email: &str, password: &str) -> Browser {
    let b = Browser::new(p);
    let page = b.open(link).await;
    assert!(page.html().contains("href=\"/login\""), "{}", page.html());
    let login = b.open(&p.url("/login")).await;
    let back = b.login(&login, email, password).await;
    assert!(back.html().contains("action=\"/invite\""), "back at the invitation: {}", back.html());
    b
}

async fn role_in(p: &Provider, tenant: &str, email: &str) -> Option<String> {
    let mut db = p.t.owner().await;
    sqlx::query_scalar(
        "SELECT m.role FROM memberships m JOIN users u ON u.id = m.user_id JOIN tenants t ON t.id = m.tenant_id \
         WHERE t.slug = $1 AND lower(u.email) = lower($2)",
    )
    .bind(tenant)
    .bind(email)
    .fetch_optional(&mut db)
    .await
    .unwrap()
}

async fn verified(p: &Provider, email: &str) -> Option<bool> {
    let mut db = p.t.owner().await;
    sqlx::query_scalar("SELECT email_verified FROM users WHERE lower(email) = lower($1)")
        .bind(email)
        .fetch_optional(&mut db)
        .await
        .unwrap()
}

/// A newcomer's invitation creates their account with the password they choose (a refused
/// password spends nothing), verifies the address and adds the membership, once; an address
/// with an account is linked without a password; the two invitations answer alike.
#[tokio::test]
async fn an_invitation_creates_or_links_the_account_once_and_answers_alike() {
    let (p, sink) = provider_with_mail().await;
    p.t.tenant("beta").await;
    let admin = crate::api::service_token(&p, "beta", Role::Admin).await;

    let (s1, newcomer) = invite(&p, &admin, "New.Comer@example.com", "editor").await;
    let (s2, existing) = invite(&p, &admin, &p.email, "viewer").await;
    assert_eq!((s1, s2), (201, 201), "{newcomer} {existing}");
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&newcomer), keys(&existing), "the same answer whether or not the address has an account");
    assert!(!newcomer.to_string().contains("token"), "the link is never shown to the inviter: {newcomer}");
    assert!(newcomer["invited_by"].as_str().unwrap().starts_with("client:"), "{newcomer}");
    assert_eq!(role_in(&p, "beta", "new.comer@example.com").await, None, "nobody is a member before accepting");
    assert_eq!(verified(&p, "new.comer@example.com").await, None, "and no account exists yet");

    // The newcomer: the mail, in the language of the request (English), then the form.
    let mail = sink.nth_to("New.Comer@example.com", 1).await;
    assert!(mail.header("Subject").unwrap().starts_with(EN.mail_invite_subject), "{:?}", mail.header("Subject"));
    assert!(mail.body().contains("(editor)"), "{}", mail.body());
    let link = link_in(&mail, &p.issuer);
    let form = Browser::new(&p).open(&link).await;
    assert!(form.html().contains("name=\"password\"") && form.html().contains("id=\"tenant-name\""));
    let refused = accept(&p, &link, Some("short")).await;
    assert!(refused.html().contains("role=\"alert\"") && refused.html().contains("action=\"/invite\""));
    let done = accept(&p, &link, Some(CHOSEN)).await;
    assert_eq!(done.status(), 200, "{}", done.html());
    assert!(done.html().contains(EN.invite_done), "{}", done.html());
    assert_eq!(role_in(&p, "beta", "new.comer@example.com").await.as_deref(), Some("editor"));
    assert_eq!(verified(&p, "new.comer@example.com").await, Some(true));
    // Once.
    assert_eq!(Browser::new(&p).open(&link).await.status(), 410);
    // The chosen password signs in.
    let b = Browser::new(&p);
    let login = b.open(&p.url("/account")).await;
    let account = b.login(&login, "new.comer@example.com", CHOSEN).await;
    assert!(account.html().contains(EN.account_profile_email_verified), "{}", account.html());

    // Ann has an account with a password: the link alone does not link it (whoever set that
    // password may not own the mailbox); signed in as Ann, it does, as a viewer, verified.
    let link = link_in(&sink.nth_to(&p.email, 1).await, &p.issuer);
    let stranger = Browser::new(&p);
    let page = stranger.open(&link).await;
    assert!(page.html().contains("id=\"sign-in\"") && !page.html().contains("action=\"/invite\""), "{}", page.html());
    let csrf = hidden(stranger.open(&p.url("/forgot")).await.html(), "csrf");
    let token = link.split("token=").nth(1).unwrap();
    let forced = stranger.post("/invite", &[("csrf", csrf.as_str()), ("token", token)]).await;
    assert!(forced.html().contains("id=\"sign-in\""), "{}", forced.html());
    assert_eq!(role_in(&p, "beta", &p.email).await, None, "not without signing in");
    let ann = signed_in_through(&p, &link, &p.email, crate::flow::PASSWORD).await;
    let form = ann.open(&link).await;
    assert!(form.html().contains(EN.invite_existing_account) && !form.html().contains("name=\"password\""));
    let done = post_accept(&ann, &form, None).await;
    assert!(done.html().contains(EN.invite_done), "{}", done.html());
    assert_eq!(role_in(&p, "beta", &p.email).await.as_deref(), Some("viewer"));
    assert_eq!(role_in(&p, "acme", &p.email).await.as_deref(), Some("editor"), "her other membership stays");
    assert_eq!(verified(&p, &p.email).await, Some(true));

    // Audited in beta's chain.
    let beta = tenant_id(&p, "beta").await;
    assert_eq!(audit_rows(&p, beta, "invitation.created").await.len(), 2);
    let accepted = audit_rows(&p, beta, "invitation.accepted").await;
    assert_eq!(accepted.len(), 2);
    assert_eq!(accepted[0].details["created"], json!(true));
    assert_eq!(accepted[1].details["created"], json!(false));
    let newcomer_id = user_id(&p, "new.comer@example.com").await;
    let created = audit_rows(&p, beta, "user.created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].target_id.as_deref(), Some(newcomer_id.to_string().as_str()));
    assert_eq!(audit_rows(&p, beta, "membership.added").await.len(), 2);
    // Accepting again after joining: the link is spent; a new invitation of a member says so.
    let (status, _) = invite(&p, &admin, &p.email, "admin").await;
    assert_eq!(status, 201);
    let again = post_accept(&ann, &ann.open(&link_in(&sink.nth_to(&p.email, 2).await, &p.issuer)).await, None).await;
    assert!(again.html().contains(EN.invite_already), "{}", again.html());
    assert_eq!(
        role_in(&p, "beta", &p.email).await.as_deref(),
        Some("viewer"),
        "a role changes by the admin, not by a link"
    );
}

/// Inviting again replaces the open invitation; a withdrawn or expired one does nothing;
/// another tenant's admin can neither list nor withdraw it; a viewer may not invite.
#[tokio::test]
async fn invitations_are_replaced_withdrawn_expire_and_stay_in_their_tenant() {
    let (p, sink) = provider_with_mail().await;
    let admin = crate::api::service_token(&p, "acme", Role::Admin).await;
    p.t.tenant("beta").await;
    let other = crate::api::service_token(&p, "beta", Role::Admin).await;
    let viewer = crate::api::service_token(&p, "acme", Role::Viewer).await;

    let (_, first) = invite(&p, &admin, "zoe@example.com", "viewer").await;
    let (_, second) = invite(&p, &admin, "ZOE@example.com", "editor").await;
    let old = link_in(&sink.nth_to("zoe@example.com", 1).await, &p.issuer);
    let new = link_in(&sink.nth_to("ZOE@example.com", 1).await, &p.issuer);
    assert_eq!(Browser::new(&p).open(&old).await.status(), 410, "replaced");
    assert_eq!(Browser::new(&p).open(&new).await.status(), 200);
    let list: Value =
        p.http().get(p.url("/api/v1/invitations")).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["id"], second["id"]);
    assert_eq!(list["items"][0]["role"], "editor");
    assert_ne!(first["id"], second["id"]);

    // Another tenant sees none of it, and cannot withdraw it.
    let theirs: Value =
        p.http().get(p.url("/api/v1/invitations")).bearer_auth(&other).send().await.unwrap().json().await.unwrap();
    assert_eq!(theirs["items"], json!([]));
    let path = format!("/api/v1/invitations/{}", second["id"].as_str().unwrap());
    assert_eq!(p.http().delete(p.url(&path)).bearer_auth(&other).send().await.unwrap().status(), 404);
    assert_eq!(p.http().delete(p.url(&path)).bearer_auth(&viewer).send().await.unwrap().status(), 403);
    assert_eq!(invite(&p, &viewer, "x@example.com", "viewer").await.0, 403);
    assert_eq!(Browser::new(&p).open(&new).await.status(), 200, "still open");
    // Its own admin can.
    assert_eq!(p.http().delete(p.url(&path)).bearer_auth(&admin).send().await.unwrap().status(), 204);
    assert_eq!(Browser::new(&p).open(&new).await.status(), 410, "withdrawn");
    assert_eq!(p.http().delete(p.url(&path)).bearer_auth(&admin).send().await.unwrap().status(), 404);
    let acme = tenant_id(&p, "acme").await;
    assert_eq!(audit_rows(&p, acme, "invitation.revoked").await.len(), 1);

    // Expired.
    invite(&p, &admin, "yves@example.com", "viewer").await;
    let link = link_in(&sink.nth_to("yves@example.com", 1).await, &p.issuer);
    let mut db = p.t.owner().await;
    sqlx::query("UPDATE invitations SET expires_at = now() - interval '1 second' WHERE email = 'yves@example.com'")
        .execute(&mut db)
        .await
        .unwrap();
    let page = Browser::new(&p).open(&link).await;
    assert_eq!(page.status(), 410);
    assert!(page.html().contains(EN.invite_invalid));

    // Bad input: no token, an oversized one, a malformed address, an unknown role.
    assert_eq!(Browser::new(&p).open(&p.url("/invite")).await.status(), 410);
    assert_eq!(Browser::new(&p).open(&p.url(&format!("/invite?token={}", "a".repeat(5000)))).await.status(), 410);
    assert_eq!(invite(&p, &admin, "not an address", "viewer").await.0, 400);
    assert_eq!(invite(&p, &admin, "ok@example.com", "owner").await.0, 400);
}

/// One link raced by two browsers makes one account and one membership; a disabled account
/// or a suspended tenant makes a link do nothing.
#[tokio::test]
async fn a_raced_link_joins_once_and_a_disabled_account_or_suspended_tenant_joins_nobody() {
    let (p, sink) = provider_with_mail().await;
    let admin = crate::api::service_token(&p, "acme", Role::Admin).await;
    invite(&p, &admin, "race@example.com", "viewer").await;
    let link = link_in(&sink.nth_to("race@example.com", 1).await, &p.issuer);
    let (a, b) = (Browser::new(&p), Browser::new(&p));
    let (pa, pb) = tokio::join!(a.open(&link), b.open(&link));
    let form = |s: &Step| (hidden(s.html(), "csrf"), hidden(s.html(), "token"));
    let ((ca, ta), (cb, tb)) = (form(&pa), form(&pb));
    let fa = [("csrf", ca.as_str()), ("token", ta.as_str()), ("password", CHOSEN)];
    let fb = [("csrf", cb.as_str()), ("token", tb.as_str()), ("password", "another passphrase 44")];
    let (ra, rb) = tokio::join!(a.post("/invite", &fa), b.post("/invite", &fb));
    let mut statuses = [ra.status(), rb.status()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 410], "{} / {}", ra.html(), rb.html());
    let mut db = p.t.owner().await;
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE email = 'race@example.com'")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(accounts, 1);

    // Ann, disabled after being invited to beta: her link does nothing.
    p.t.tenant("beta").await;
    let beta_admin = crate::api::service_token(&p, "beta", Role::Admin).await;
    invite(&p, &beta_admin, &p.email, "viewer").await;
    let link = link_in(&sink.nth_to(&p.email, 1).await, &p.issuer);
    sqlx::query("UPDATE users SET status = 'disabled' WHERE email = $1").bind(&p.email).execute(&mut db).await.unwrap();
    assert_eq!(Browser::new(&p).open(&link).await.status(), 410);
    assert_eq!(role_in(&p, "beta", &p.email).await, None);

    // A suspended tenant's invitations do nothing.
    invite(&p, &beta_admin, "sam@example.com", "viewer").await;
    let link = link_in(&sink.nth_to("sam@example.com", 1).await, &p.issuer);
    sqlx::query("UPDATE tenants SET status = 'suspended' WHERE slug = 'beta'").execute(&mut db).await.unwrap();
    assert_eq!(Browser::new(&p).open(&link).await.status(), 410);
    sqlx::query("UPDATE tenants SET status = 'active' WHERE slug = 'beta'").execute(&mut db).await.unwrap();
    let done = accept(&p, &link, Some(CHOSEN)).await;
    assert!(done.html().contains(EN.invite_done), "active again, the link works: {}", done.html());
}

/// The invitation mail speaks the inviter's language (`Accept-Language` of the API request).
#[tokio::test]
async fn the_invitation_mail_speaks_the_inviters_language() {
    let (p, sink) = provider_with_mail().await;
    let admin = crate::api::service_token(&p, "acme", Role::Admin).await;
    let res = p
        .http()
        .post(p.url("/api/v1/invitations"))
        .bearer_auth(&admin)
        .header("accept-language", "nl-NL,nl;q=0.9,en;q=0.5")
        .json(&json!({ "email": "nina@example.com", "role": "viewer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let mail = sink.nth_to("nina@example.com", 1).await;
    assert!(mail.header("Subject").unwrap().starts_with(NL.mail_invite_subject));
    assert!(mail.body().contains(NL.mail_invite_accept), "{}", mail.body());
    let page = Browser::with_headers(&p, &[("accept-language", "nl")]).open(&link_in(&mail, &p.issuer)).await;
    assert!(page.html().contains(NL.invite_accept), "{}", page.html());
}

/// Must-show 3 in Chromium: an admin with TOTP invites an address on the members page; the
/// mail reaches the SMTP server; the invitee follows the link, chooses a password, and signs
/// in with it, a member with the role and a verified address.
#[tokio::test]
async fn chromium_an_admin_invites_and_the_invitee_joins_through_the_mailed_link() {
    let (p, sink) = provider_with_mail().await;
    let key = crate::admin_browser::with_totp(&p, "root@example.com", Role::Admin).await;
    let chrome = Chrome::start().await;
    chrome.sign_in(&p, "root@example.com", &key).await;
    chrome.c().goto(&p.url("/admin/t/acme/members")).await.unwrap();
    chrome.wait_for("#invite-member input#invite-email").await.send_keys("invitee@example.com").await.unwrap();
    chrome.wait_for("#invite-member select#invite-role option[value=editor]").await.click().await.unwrap();
    chrome.wait_for("#invite-member button[type=submit]").await.click().await.unwrap();
    let notice = chrome.wait_for("#notice").await.text().await.unwrap();
    assert!(notice.contains(ADMIN.invitation_sent) && notice.contains("invitee@example.com"), "{notice}");
    chrome.wait_for("#invitations tr[data-email='invitee@example.com']").await;

    let link = link_in(&sink.nth_to("invitee@example.com", 1).await, &p.issuer);
    chrome.c().delete_all_cookies().await.unwrap();
    chrome.c().goto(&link).await.unwrap();
    chrome.wait_for_title(&format!("{} · LaventeCare", EN.invite_title)).await;
    assert_eq!(chrome.wait_for("#role").await.text().await.unwrap(), "editor");
    chrome.wait_for("input#password").await.send_keys(CHOSEN).await.unwrap();
    chrome.wait_for("#accept button[type=submit]").await.click().await.unwrap();
    chrome.wait_for("a#continue").await.click().await.unwrap();
    chrome.wait_for("input#email").await.send_keys("invitee@example.com").await.unwrap();
    chrome.wait_for("input#password").await.send_keys(CHOSEN).await.unwrap();
    chrome.wait_for("button[type=submit]").await.click().await.unwrap();
    chrome.wait_for_title(&format!("{} · LaventeCare", EN.signed_in_title)).await;
    chrome.close().await;
    assert_eq!(role_in(&p, "acme", "invitee@example.com").await.as_deref(), Some("editor"));
    assert_eq!(verified(&p, "invitee@example.com").await, Some(true));
    let page = Browser::new(&p).open(&link).await;
    assert_eq!(page.status(), 410, "the link worked once");
}

/// An account an administrator made without a password (another tenant's, say) is given the
/// password the invitee chooses; an account whose password someone else set is never linked
/// by the link alone; and a fourth invitation of one address in an hour is refused.
#[tokio::test]
async fn a_pre_made_account_gets_the_invitees_password_and_one_with_a_password_needs_its_owner() {
    let (p, sink) = provider_with_mail().await;
    p.t.tenant("beta").await;
    let beta = crate::api::service_token(&p, "beta", Role::Admin).await;
    let acme = crate::api::service_token(&p, "acme", Role::Admin).await;
    // Beta's admin adds an address nobody has: an account without a password.
    let res = p
        .http()
        .post(p.url("/api/v1/members"))
        .bearer_auth(&beta)
        .json(&json!({ "email": "vic@corp.example", "role": "viewer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    invite(&p, &acme, "vic@corp.example", "editor").await;
    let link = link_in(&sink.nth_to("vic@corp.example", 1).await, &p.issuer);
    let page = Browser::new(&p).open(&link).await;
    assert!(page.html().contains(EN.invite_set_password) && page.html().contains("name=\"password\""));
    let done = accept(&p, &link, Some(CHOSEN)).await;
    assert!(done.html().contains(EN.invite_done), "{}", done.html());
    assert_eq!(role_in(&p, "acme", "vic@corp.example").await.as_deref(), Some("editor"));
    let b = Browser::new(&p);
    let login = b.open(&p.url("/account")).await;
    assert!(b.login(&login, "vic@corp.example", CHOSEN).await.html().contains("action=\"/account/password\""));
    let acme_id = tenant_id(&p, "acme").await;
    assert_eq!(audit_rows(&p, acme_id, "invitation.accepted").await[0].details["password_set"], json!(true));

    // An account whose password was set by someone else: the mailbox's owner clicking the
    // link links nothing.
    let hasher = laventecare_auth::identity::PasswordHasher::new();
    laventecare_auth::identity::create_user(&p.t.db, &hasher, "taken@corp.example", "someone else's passphrase")
        .await
        .unwrap();
    invite(&p, &acme, "taken@corp.example", "admin").await;
    let link = link_in(&sink.nth_to("taken@corp.example", 1).await, &p.issuer);
    let b = Browser::new(&p);
    let page = b.open(&link).await;
    assert!(page.html().contains("id=\"sign-in\""), "{}", page.html());
    let csrf = hidden(b.open(&p.url("/forgot")).await.html(), "csrf");
    let token = link.split("token=").nth(1).unwrap();
    let forced = b.post("/invite", &[("csrf", csrf.as_str()), ("token", token), ("password", CHOSEN)]).await;
    assert!(forced.html().contains("id=\"sign-in\""), "{}", forced.html());
    assert_eq!(role_in(&p, "acme", "taken@corp.example").await, None);
    assert_eq!(Browser::new(&p).open(&link).await.status(), 200, "the invitation is still open for its owner");

    // Three invitations an hour to one address; the fourth is refused and mails nothing.
    for _ in 0..2 {
        assert_eq!(invite(&p, &acme, "taken@corp.example", "viewer").await.0, 201);
    }
    let (status, body) = invite(&p, &acme, "Taken@Corp.example", "viewer").await;
    assert_eq!(status, 429, "{body}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sink.all().iter().filter(|m| m.rcpt_to[0].eq_ignore_ascii_case("taken@corp.example")).count(), 3);
}
