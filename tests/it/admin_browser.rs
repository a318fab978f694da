//! Must-show 4 of issue 10 in headless Chromium (Debian's `chromium` + `chromium-driver`,
//! over WebDriver with fantoccini): a tenant admin with TOTP signs in, adds a member,
//! registers a client and sees its secret once, changes the member's role, and finds the
//! three events in the audit viewer; a viewer sees the same pages without a single form.

use laventecare_auth::vocabulary::Role;
use laventecare_auth::{identity, tenancy};

use crate::chrome::Chrome;
use crate::flow::{PASSWORD, Provider, totp_code};
use crate::mfa::enrolled;
use fantoccini::Locator;

impl Chrome {
    /// Signs in at the login page with the password, then the TOTP code of `secret` (the next
    /// step's: the enrolment used this one's).
    pub(crate) async fn sign_in(&self, p: &Provider, email: &str, secret: &str) {
        self.c().goto(&p.url("/admin")).await.unwrap();
        self.wait_for("input#email").await.send_keys(email).await.unwrap();
        self.wait_for("input#password").await.send_keys(PASSWORD).await.unwrap();
        self.wait_for("form[action='/login'] button[type=submit]").await.click().await.unwrap();
        self.wait_for("input#code[autocomplete=one-time-code]").await.send_keys(&totp_code(secret, 1)).await.unwrap();
        self.wait_for("form[action='/login/mfa'] button[type=submit]").await.click().await.unwrap();
        // Back where the sign-in began.
        self.wait_for("#organisations").await;
        assert_eq!(self.c().current_url().await.unwrap().path(), "/admin");
    }
}

/// A user with `role` in acme who has enrolled TOTP (through the scripted browser); the key.
pub(crate) async fn with_totp(p: &Provider, email: &str, role: Role) -> String {
    let hasher = identity::PasswordHasher::new();
    identity::create_user(&p.t.db, &hasher, email, PASSWORD).await.unwrap();
    tenancy::add_member(&p.t.db, "acme", email, role).await.unwrap();
    enrolled(p, email, PASSWORD).await.1
}

/// Must-show 4: an admin with TOTP, in Chromium, adds a member, registers a client (its
/// secret shown once: not after a reload, not on coming back), changes the member's role, and
/// finds membership.added, client.created and membership.role_changed in the audit viewer
/// (filtered too); then a viewer sees every page without a form they may not use.
#[tokio::test]
async fn an_admin_with_totp_administers_and_a_viewer_only_reads() {
    let p = Provider::start().await;
    let admin_key = with_totp(&p, "root@example.com", Role::Admin).await;
    let viewer_key = with_totp(&p, "vera@example.com", Role::Viewer).await;
    let chrome = Chrome::start().await;
    chrome.sign_in(&p, "root@example.com", &admin_key).await;
    chrome.wait_for("tr[data-slug=acme] a").await.click().await.unwrap();
    chrome.wait_for("#counts").await;
    assert_eq!(chrome.c().current_url().await.unwrap().path(), "/admin/t/acme");

    // A member by email, with a role.
    chrome.c().goto(&p.url("/admin/t/acme/members")).await.unwrap();
    chrome.wait_for("#add-member input#email").await.send_keys("newbie@example.com").await.unwrap();
    chrome.wait_for("#add-member select#role option[value=editor]").await.click().await.unwrap();
    chrome.wait_for("#add-member button[type=submit]").await.click().await.unwrap();
    chrome.wait_for("#notice").await;
    let row = chrome.wait_for("tr[data-email='newbie@example.com'] td.member-role").await;
    assert_eq!(row.text().await.unwrap(), "editor");

    // A client; the secret once.
    chrome.c().goto(&p.url("/admin/t/acme/clients")).await.unwrap();
    chrome.wait_for("#create-client input#name").await.send_keys("Chromium App").await.unwrap();
    chrome
        .wait_for("#create-client input#redirect_uris")
        .await
        .send_keys("https://chromium.example.com/cb")
        .await
        .unwrap();
    chrome.wait_for("#create-client button[type=submit]").await.click().await.unwrap();
    let secret = chrome.wait_for("#client-secret").await.text().await.unwrap();
    let client_id = chrome.wait_for("#client-id").await.text().await.unwrap();
    let client_page = chrome.c().current_url().await.unwrap();
    assert_eq!(client_page.path(), format!("/admin/t/acme/clients/{client_id}"));
    assert!(secret.len() >= 32, "{secret}");
    // It is the client's secret: the provider takes it, and no other.
    let introspect =
        |s: String| p.http().post(p.url("/introspect")).basic_auth(&client_id, Some(s)).form(&[("token", "x")]).send();
    assert_eq!(introspect(secret.clone()).await.unwrap().status(), 200);
    assert_eq!(introspect(format!("{secret}x")).await.unwrap().status(), 401);
    chrome.c().refresh().await.unwrap();
    chrome.wait_for("#secret-gone").await;
    assert!(!chrome.source().await.contains(&secret), "a reload shows the secret again");
    chrome.c().back().await.unwrap();
    chrome.wait_for("#create-client").await;
    assert!(!chrome.source().await.contains(&secret), "going back shows the secret again");
    chrome.c().forward().await.unwrap();
    chrome.wait_for("#client-name").await;
    assert!(!chrome.source().await.contains(&secret), "going forward shows the secret again");

    // The member's role.
    chrome.c().goto(&p.url("/admin/t/acme/members")).await.unwrap();
    chrome
        .wait_for("tr[data-email='newbie@example.com'] form.role-form option[value=viewer]")
        .await
        .click()
        .await
        .unwrap();
    chrome.wait_for("tr[data-email='newbie@example.com'] form.role-form button").await.click().await.unwrap();
    chrome.wait_for("#notice").await;
    let row = chrome.wait_for("tr[data-email='newbie@example.com'] td.member-role").await;
    assert_eq!(row.text().await.unwrap(), "viewer");

    // All three in the audit viewer, newest first.
    chrome.c().goto(&p.url("/admin/t/acme/audit")).await.unwrap();
    chrome.wait_for("#audit").await;
    let mut actions = Vec::new();
    for row in chrome.c().find_all(Locator::Css("#audit tbody tr")).await.unwrap() {
        actions.push(row.attr("data-action").await.unwrap().unwrap());
    }
    let at = |a: &str| actions.iter().position(|x| x == a).unwrap_or_else(|| panic!("no {a} in {actions:?}"));
    assert!(at("membership.role_changed") < at("client.created"), "{actions:?}");
    assert!(at("client.created") < at("membership.added"), "{actions:?}");
    // The filter: only client.created, and it names the client.
    chrome.wait_for("#audit-filter input#action").await.send_keys("client.created").await.unwrap();
    chrome.wait_for("#apply-filter").await.click().await.unwrap();
    chrome.wait_for("#audit-filter input#action[value='client.created']").await;
    // (The provider's seeded client was created in acme too, by the system, before.)
    let rows = chrome.c().find_all(Locator::Css("#audit tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(row.attr("data-action").await.unwrap().as_deref(), Some("client.created"));
    }
    let newest = rows[0].text().await.unwrap();
    assert!(newest.contains(&client_id) && newest.contains("user:"), "{newest}");
    assert!(rows[1].text().await.unwrap().contains("system"));

    // Signed out, then the viewer: every page opens, and none has a form but signing out.
    chrome.wait_for("form.sign-out button").await.click().await.unwrap();
    chrome.wait_for_title("You are signed out · LaventeCare").await;
    chrome.sign_in(&p, "vera@example.com", &viewer_key).await;
    for page in
        ["", "/members", "/clients", &format!("/clients/{client_id}"), "/devices", "/sessions", "/audit", "/settings"]
    {
        chrome.c().goto(&p.url(&format!("/admin/t/acme{page}"))).await.unwrap();
        chrome.wait_for("#my-role").await;
        assert_eq!(chrome.wait_for("#my-role").await.text().await.unwrap(), "your role: viewer");
        let forms = chrome.c().find_all(Locator::Css("form[method=post]:not(.sign-out)")).await.unwrap();
        assert!(forms.is_empty(), "{page}: a viewer sees {} forms", forms.len());
    }
    // Not even the platform area, which does not exist for them.
    chrome.c().goto(&p.url("/admin/platform")).await.unwrap();
    assert!(!chrome.source().await.contains("Create an organisation"));
    chrome.close().await;
}
