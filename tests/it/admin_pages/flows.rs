//! The admin pages one area at a time: what each shows and does, the secrets shown once,
//! the audit viewer's paging and filters, bad input, and the sign-in they need.

use laventecare_auth::db::audit::Actor;
use laventecare_auth::tenancy::members::{Unknown, add_member_in};
use laventecare_auth::vocabulary::Role;
use laventecare_auth::{identity, tenancy};

use super::{family, member};
use crate::flow::{Browser, Provider, hidden};
use crate::mfa::tenant_id;

/// The role is the membership's at each request: an admin demoted to viewer loses the forms
/// and is refused the next post at once, with no new sign-in; removed, the pages are gone.
#[tokio::test]
async fn a_demotion_counts_at_the_next_page() {
    let p = Provider::start().await;
    let acme = tenant_id(&p, "acme").await;
    let b = member(&p, "root@example.com", Role::Admin).await;
    let page = b.open(&p.url("/admin/t/acme/members")).await;
    assert!(page.html().contains("id=\"add-member\""));
    let csrf = hidden(page.html(), "csrf");
    // A second admin, so that root may lose the role.
    tenancy::add_member(&p.t.db, "acme", "ann@example.com", Role::Admin).await.ok();
    let ann = crate::mfa::user_id(&p, &p.email).await;
    laventecare_auth::tenancy::members::set_role_in(&p.t.db, &Actor::system(), acme, ann, Role::Admin).await.unwrap();
    let root = crate::mfa::user_id(&p, "root@example.com").await;
    laventecare_auth::tenancy::members::set_role_in(&p.t.db, &Actor::system(), acme, root, Role::Viewer).await.unwrap();
    let page = b.open(&p.url("/admin/t/acme/members")).await;
    assert_eq!(page.status(), 200);
    assert!(!page.html().contains("id=\"add-member\"") && page.html().contains("your role: viewer"));
    let refused =
        b.post("/admin/t/acme/members", &[("csrf", &csrf), ("email", "x@example.com"), ("role", "viewer")]).await;
    assert_eq!(refused.status(), 403);
    assert!(refused.html().contains("Not allowed"), "{}", refused.html());
    laventecare_auth::tenancy::members::remove_member_in(&p.t.db, &Actor::system(), acme, root).await.unwrap();
    assert_eq!(b.open(&p.url("/admin/t/acme/members")).await.status(), 404);
    assert_eq!(b.open(&p.url("/admin")).await.status(), 403);
}

/// The pages need a sign-in with a second factor: without one they send the browser to sign
/// in (or step up) and come back; a form is not acted on.
#[tokio::test]
async fn the_pages_need_a_second_factor() {
    let p = Provider::start().await;
    let b = Browser::new(&p);
    let login = b.open(&p.url("/admin/t/acme/clients")).await;
    assert!(login.html().contains("action=\"/login\""));
    // Ann signs in with her password only: she is sent to enrol (or give) a second factor.
    let next = b.login(&login, &p.email, crate::flow::PASSWORD).await;
    let html = next.html();
    assert!(!html.contains("id=\"clients\""), "{html}");
    let again = b.open(&p.url("/admin/t/acme/clients")).await;
    assert!(!again.html().contains("id=\"clients\""));
    let post = b.post("/admin/t/acme/members", &[("csrf", "x"), ("email", "x@example.com"), ("role", "admin")]).await;
    assert!(!post.html().contains("Added"));
    let acme = tenant_id(&p, "acme").await;
    assert!(crate::mfa::audit_rows(&p, acme, "user.invited").await.is_empty());
}

/// A client's secret shows once, on the page right after it was made or rotated; reloading
/// shows it no more, and the session store never holds it in the clear.
#[tokio::test]
async fn a_client_secret_is_shown_once() {
    let p = Provider::start().await;
    let b = member(&p, "root@example.com", Role::Editor).await;
    let csrf = hidden(b.open(&p.url("/admin/t/acme/clients")).await.html(), "csrf");
    let made = b
        .post(
            "/admin/t/acme/clients",
            &[
                ("csrf", &csrf),
                ("name", "Once"),
                ("grant_code", "on"),
                ("redirect_uris", "https://once.example.com/cb"),
            ],
        )
        .await;
    let secret = crate::flow::between(made.html(), "<code id=\"client-secret\" class=\"wrap\">", "</code>");
    let client_id = crate::flow::between(made.html(), "<code id=\"client-id\">", "</code>");
    assert!(secret.len() >= 32);
    let mut owner = p.t.owner().await;
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT data::text FROM browser_sessions").fetch_all(&mut owner).await.unwrap();
    assert!(stored.iter().all(|d| !d.contains(&secret)));
    let reload = b.open(&p.url(&format!("/admin/t/acme/clients/{client_id}"))).await;
    assert!(!reload.html().contains(&secret) && reload.html().contains("id=\"secret-gone\""));
    // A new one, once; the old one no longer works.
    let rotated = b.post(&format!("/admin/t/acme/clients/{client_id}/rotate"), &[("csrf", &csrf)]).await;
    let fresh = crate::flow::between(rotated.html(), "<code id=\"client-secret\" class=\"wrap\">", "</code>");
    assert_ne!(fresh, secret);
    let introspect =
        |s: &str| p.http().post(p.url("/introspect")).basic_auth(&client_id, Some(s)).form(&[("token", "x")]).send();
    assert_eq!(introspect(&secret).await.unwrap().status(), 401);
    assert_eq!(introspect(&fresh).await.unwrap().status(), 200);
    assert!(!b.open(&p.url(&format!("/admin/t/acme/clients/{client_id}"))).await.html().contains(&fresh));
    // Edited, then deleted.
    let edited = b
        .post(
            &format!("/admin/t/acme/clients/{client_id}"),
            &[
                ("csrf", &csrf),
                ("name", "Twice"),
                ("redirect_uris", "https://twice.example.com/cb https://twice.example.com/cb2"),
            ],
        )
        .await;
    assert!(
        edited.html().contains("<h1 id=\"client-name\">Twice</h1>")
            && edited.html().contains("https://twice.example.com/cb2")
    );
    let gone = b.post(&format!("/admin/t/acme/clients/{client_id}/delete"), &[("csrf", &csrf)]).await;
    assert!(gone.html().contains("The client is deleted") && !gone.html().contains(&client_id));
    assert_eq!(b.open(&p.url(&format!("/admin/t/acme/clients/{client_id}"))).await.status(), 404);
}

/// Bad input is refused with a page that says why, and nothing is done: an unknown field, a
/// role that is no role, an oversized email, a control character, a malformed cursor.
#[tokio::test]
async fn malformed_forms_and_queries_are_refused() {
    let p = Provider::start().await;
    let acme = tenant_id(&p, "acme").await;
    let b = member(&p, "root@example.com", Role::Admin).await;
    let csrf = hidden(b.open(&p.url("/admin/t/acme/members")).await.html(), "csrf");
    let long = format!("{}@example.com", "a".repeat(400));
    for form in [
        vec![("csrf", csrf.as_str()), ("email", "x@example.com"), ("role", "viewer"), ("tenant_id", "x")],
        vec![("csrf", csrf.as_str()), ("email", "x@example.com"), ("role", "owner")],
        vec![("csrf", csrf.as_str()), ("email", long.as_str()), ("role", "viewer")],
        vec![("csrf", csrf.as_str()), ("email", "x@exa\nmple.com"), ("role", "viewer")],
        vec![("csrf", csrf.as_str()), ("email", "not an email"), ("role", "viewer")],
    ] {
        let step = b.post("/admin/t/acme/members", &form).await;
        assert_eq!(step.status(), 400, "{form:?}: {}", step.html());
    }
    assert!(crate::mfa::audit_rows(&p, acme, "user.invited").await.is_empty());
    let many: Vec<String> = (0..21).map(|i| format!("https://app.example.com/cb{i}")).collect();
    let huge = format!("https://app.example.com/{}", "a".repeat(9000));
    for uris in [many.join(" "), huge] {
        let form = [("csrf", csrf.as_str()), ("name", "Too many"), ("grant_code", "on"), ("redirect_uris", &uris)];
        assert_eq!(b.post("/admin/t/acme/clients", &form).await.status(), 400);
    }
    for uri in ["http://app.example.com/cb", "https://app.example.com/cb#frag", "not a uri"] {
        let form = [("csrf", csrf.as_str()), ("name", "Bad URI"), ("grant_code", "on"), ("redirect_uris", uri)];
        let step = b.post("/admin/t/acme/clients", &form).await;
        assert_eq!(step.status(), 400, "{uri}: {}", step.html());
    }
    assert_eq!(crate::mfa::audit_rows(&p, acme, "client.created").await.len(), 1, "only the seeded client");
    for query in ["?cursor=!!", "?limit=5", "?cursor=%00"] {
        assert_eq!(b.open(&p.url(&format!("/admin/t/acme/members{query}"))).await.status(), 400, "{query}");
    }
    for query in ["?since=yesterday", "?since=2026-01-02&until=2026-01-01", "?action=%0a"] {
        assert_eq!(b.open(&p.url(&format!("/admin/t/acme/audit{query}"))).await.status(), 400, "{query}");
    }
}

/// The audit viewer: newest first, a page at a time through the cursor with the filters kept,
/// every event once; filtered by action, actor, target and time.
#[tokio::test]
async fn the_audit_viewer_pages_and_filters() {
    let p = Provider::start().await;
    let acme = tenant_id(&p, "acme").await;
    let b = member(&p, "root@example.com", Role::Viewer).await;
    let mut invited = Vec::new();
    for i in 0..60 {
        let email = format!("bulk{i}@example.com");
        invited.push(
            add_member_in(&p.t.db, &Actor::system(), acme, &email, Role::Viewer, Unknown::Invite)
                .await
                .unwrap()
                .user_id,
        );
    }
    let seqs = |html: &str| -> Vec<i64> {
        html.split("data-seq=\"").skip(1).map(|s| s[..s.find('"').unwrap()].parse().unwrap()).collect()
    };
    let mut url = p.url("/admin/t/acme/audit?action=membership.added&actor=system%3A");
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages < 5, "the cursor does not move on: {seen:?}");
        let page = b.open(&url).await;
        assert_eq!(page.status(), 200);
        let html = page.html().to_owned();
        assert!(html.matches("data-action=\"membership.added\"").count() == seqs(&html).len());
        seen.extend(seqs(&html));
        match html.find("\" id=\"next-page\"") {
            Some(end) => {
                let start = html[..end].rfind("href=\"").unwrap() + "href=\"".len();
                let href = html[start..end].replace("&#38;", "&").replace("&amp;", "&");
                assert!(href.contains("action=membership.added"), "{href}");
                url = p.url(&href);
            }
            None => break,
        }
    }
    // Each membership of the seeding (ann, root) and of the 60, newest first, once each.
    assert_eq!(seen.len(), 62, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "newest first: {seen:?}");
    // By target: one member's events.
    let one = invited[7];
    let html = b.open(&p.url(&format!("/admin/t/acme/audit?target=user:{one}"))).await.html().to_owned();
    let actions: Vec<&str> = html.split("data-action=\"").skip(1).map(|s| &s[..s.find('"').unwrap()]).collect();
    assert_eq!(actions, ["membership.added", "user.invited"], "{html}");
    // By time: nothing after tomorrow, nothing before yesterday, everything in between.
    let day = |d: i64| (chrono::Utc::now() + chrono::Duration::days(d)).format("%Y-%m-%d").to_string();
    let none = b.open(&p.url(&format!("/admin/t/acme/audit?since={}", day(1)))).await;
    assert!(none.html().contains("id=\"no-events\""));
    let none = b.open(&p.url(&format!("/admin/t/acme/audit?until={}", day(-1)))).await;
    assert!(none.html().contains("id=\"no-events\""));
    let some = b.open(&p.url(&format!("/admin/t/acme/audit?since={}&until={}", day(-1), day(1)))).await;
    assert_eq!(seqs(some.html()).len(), 50, "a full page");
}

/// The dashboard: how many members, clients, devices and sessions (each a link to its page;
/// exact counts, none of another tenant's),
/// the MFA policy, and the latest events; changing the policy on the settings page shows on
/// it, audited with the signed-in admin and their address.
#[tokio::test]
async fn the_dashboard_counts_and_shows_the_policy_and_latest_events() {
    let p = Provider::start().await;
    let acme = tenant_id(&p, "acme").await;
    let b = member(&p, "root@example.com", Role::Admin).await;
    let ann = crate::mfa::user_id(&p, &p.email).await;
    family(&p, acme, &p.client_id, ann, true).await;
    family(&p, acme, &p.client_id, ann, false).await;
    family(&p, acme, &p.client_id, ann, false).await;
    // Another tenant's members, client and families are never counted.
    let globex = p.t.tenant("globex").await;
    add_member_in(&p.t.db, &Actor::system(), globex, "gina@globex.example", Role::Admin, Unknown::Invite)
        .await
        .unwrap();
    add_member_in(&p.t.db, &Actor::system(), globex, &p.email, Role::Viewer, Unknown::Invite).await.unwrap();
    let other = laventecare_auth::clients::create_client(
        &p.t.db,
        laventecare_auth::clients::ClientRequest {
            tenant: "globex".into(),
            name: "Globex Web".into(),
            grants: vec!["authorization_code".into()],
            redirect_uris: vec![crate::flow::REDIRECT.into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    family(&p, globex, &other.client_id, ann, true).await;
    family(&p, globex, &other.client_id, ann, false).await;
    let page = b.open(&p.url("/admin/t/acme")).await;
    let html = page.html();
    for (tail, n, label) in [
        ("/members", 2, "Members"),
        ("/clients", 1, "Clients"),
        ("/devices", 1, "Devices"),
        ("/sessions", 2, "Sessions"),
    ] {
        let item = format!("<a href=\"/admin/t/acme{tail}\"><strong>{n}</strong> {label}</a>");
        assert!(html.contains(&item), "{item} in {html}");
    }
    assert!(html.contains("Not required"), "{html}");
    assert!(html.contains("<code>membership.added</code>"));

    let settings = b.open(&p.url("/admin/t/acme/settings")).await;
    let csrf = hidden(settings.html(), "csrf");
    let saved = b.post("/admin/t/acme/settings", &[("csrf", &csrf), ("require_mfa", "on")]).await;
    assert!(saved.html().contains("The settings are saved") && saved.html().contains("require_mfa\" checked"));
    let html = b.open(&p.url("/admin/t/acme")).await.html().to_owned();
    assert!(html.contains("Required of every member."), "{html}");
    let newest = html.find("<code>tenant.mfa_policy_changed</code>").unwrap();
    assert!(html.find("<code>membership.added</code>").unwrap() > newest, "newest first");
    let root = crate::mfa::user_id(&p, "root@example.com").await.to_string();
    let rows = crate::mfa::audit_rows(&p, acme, "tenant.mfa_policy_changed").await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].actor_kind.as_str(), rows[0].actor_id.as_deref()), ("user", Some(root.as_str())));
    assert_eq!(rows[0].ip.as_deref(), Some("127.0.0.1"));
    // Unticked: off again.
    b.post("/admin/t/acme/settings", &[("csrf", &csrf)]).await;
    assert!(b.open(&p.url("/admin/t/acme/settings")).await.html().contains("Not required"));
}

/// Members: adding an existing user and someone without an account reads the same; the
/// invited one's recovery link shows once; a role changes; the last admin cannot step down;
/// a member is removed. Each is audited with the signed-in admin as actor.
#[tokio::test]
async fn members_are_added_changed_recovered_and_removed() {
    let p = Provider::start().await;
    let acme = tenant_id(&p, "acme").await;
    let b = member(&p, "root@example.com", Role::Admin).await;
    let root = crate::mfa::user_id(&p, "root@example.com").await;
    let hasher = identity::PasswordHasher::new();
    identity::create_user(&p.t.db, &hasher, "known@example.com", crate::flow::PASSWORD).await.unwrap();
    let csrf = hidden(b.open(&p.url("/admin/t/acme/members")).await.html(), "csrf");
    let mut notices = Vec::new();
    for email in ["known@example.com", "unknown@example.com"] {
        let added = b.post("/admin/t/acme/members", &[("csrf", &csrf), ("email", email), ("role", "editor")]).await;
        assert!(added.html().contains(&format!("data-email=\"{email}\"")));
        let notice = crate::flow::between(added.html(), "id=\"notice\">", "</p>");
        notices.push(notice.replace(email, "EMAIL"));
    }
    assert_eq!(notices[0], notices[1], "the page says the same whether the person had an account");
    let added = crate::mfa::audit_rows(&p, acme, "membership.added").await;
    assert!(added.iter().filter(|r| r.actor_id.as_deref() == Some(root.to_string().as_str())).count() == 2);

    let unknown = crate::mfa::user_id(&p, "unknown@example.com").await;
    let shown = b.post(&format!("/admin/t/acme/members/{unknown}/recovery-link"), &[("csrf", &csrf)]).await;
    let link = crate::flow::between(shown.html(), "<code id=\"notice-code\" class=\"wrap\">", "</code>");
    assert!(link.starts_with(&p.url("/recover?token=")) && shown.html().contains("unknown@example.com"));
    assert!(!b.open(&p.url("/admin/t/acme/members")).await.html().contains(&link), "shown once");

    let changed =
        b.post(&format!("/admin/t/acme/members/{unknown}/role"), &[("csrf", &csrf), ("role", "viewer")]).await;
    assert!(changed.html().contains("Role changed: editor → viewer"), "{}", changed.html());
    let rows = crate::mfa::audit_rows(&p, acme, "membership.role_changed").await;
    rows[0].is(("user", Some(&root.to_string())), ("user", Some(&unknown.to_string())), Some("127.0.0.1"));

    let alone = b.post(&format!("/admin/t/acme/members/{root}/role"), &[("csrf", &csrf), ("role", "viewer")]).await;
    assert_eq!(alone.status(), 400, "the last admin stays: {}", alone.html());
    assert!(b.open(&p.url("/admin/t/acme/members")).await.html().contains("your role: admin"));

    let removed = b.post(&format!("/admin/t/acme/members/{unknown}/remove"), &[("csrf", &csrf)]).await;
    assert!(removed.html().contains("The member is removed") && !removed.html().contains("unknown@example.com"));
    assert_eq!(crate::mfa::audit_rows(&p, acme, "membership.removed").await.len(), 1);
    let again = b.post(&format!("/admin/t/acme/members/{unknown}/remove"), &[("csrf", &csrf)]).await;
    assert_eq!(again.status(), 404, "no longer a member");
}

/// Devices and sessions: each live family listed with its member and client; an editor
/// revokes a device, an admin ends a session; both disappear and are audited; a device id is
/// no session and a session id no device.
#[tokio::test]
async fn devices_are_revoked_and_sessions_ended() {
    let p = Provider::start().await;
    let acme = tenant_id(&p, "acme").await;
    let ann = crate::mfa::user_id(&p, &p.email).await;
    let device = family(&p, acme, &p.client_id, ann, true).await;
    let session = family(&p, acme, &p.client_id, ann, false).await;
    let editor = member(&p, "ed@example.com", Role::Editor).await;
    let admin = member(&p, "root@example.com", Role::Admin).await;

    let page = editor.open(&p.url("/admin/t/acme/devices")).await;
    assert!(page.html().contains(&format!("data-family=\"{device}\"")) && page.html().contains("ann@example.com"));
    assert!(page.html().contains("Acme Web") && !page.html().contains(&session.to_string()));
    let csrf = hidden(page.html(), "csrf");
    let wrong = admin
        .post(
            &format!("/admin/t/acme/sessions/{device}/end"),
            &[("csrf", &hidden(admin.open(&p.url("/admin/t/acme")).await.html(), "csrf"))],
        )
        .await;
    assert_eq!(wrong.status(), 404, "a device is no session");
    let revoked = editor.post(&format!("/admin/t/acme/devices/{device}/revoke"), &[("csrf", &csrf)]).await;
    assert!(revoked.html().contains("The device is signed out") && !revoked.html().contains(&device.to_string()));
    assert_eq!(crate::mfa::audit_rows(&p, acme, "device.revoked").await.len(), 1);

    let page = admin.open(&p.url("/admin/t/acme/sessions")).await;
    assert!(page.html().contains(&format!("data-family=\"{session}\"")), "{}", page.html());
    let csrf = hidden(page.html(), "csrf");
    let ended = admin.post(&format!("/admin/t/acme/sessions/{session}/end"), &[("csrf", &csrf)]).await;
    assert!(ended.html().contains("The session is ended") && !ended.html().contains(&session.to_string()));
    let rows = crate::mfa::audit_rows(&p, acme, "token_family.revoked").await;
    assert!(rows.iter().any(|r| r.details["reason"] == "ended_by_admin"), "{rows:?}");
}
