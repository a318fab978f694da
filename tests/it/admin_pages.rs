//! The hosted admin pages against the permission table (the page half of must-show 2): every
//! role × every admin page and form gets what `Action::allowed` says; platform pages do not
//! exist for anyone but platform admins; another tenant's slug is a 404 on every page; a
//! member of nothing is told so plainly.

mod flows;

use std::collections::HashMap;

use laventecare_auth::admin::Action;
use laventecare_auth::db::audit::Actor;
use laventecare_auth::pages::admin::{INDEX, ROUTES, Verb};
use laventecare_auth::tenancy::members::{Unknown, add_member_in};
use laventecare_auth::vocabulary::Role;
use laventecare_auth::{clients, db, identity, tenancy};
use uuid::Uuid;

use crate::flow::{Browser, Provider, Step, hidden};
use crate::mfa::{enrolled, tenant_id};

/// THE table of this test: each admin page or form and the permission-table action it must
/// follow. `the_table_is_the_router` holds the router to it, so a page or form added without
/// a line here fails.
pub const TABLE: &[(Verb, &str, Action)] = &[
    (Verb::Get, "/admin/t/{slug}", Action::ReadSettings),
    (Verb::Get, "/admin/t/{slug}/members", Action::ReadMembers),
    (Verb::Post, "/admin/t/{slug}/members", Action::ManageMembers),
    (Verb::Post, "/admin/t/{slug}/members/{user_id}/role", Action::ManageMembers),
    (Verb::Post, "/admin/t/{slug}/members/{user_id}/remove", Action::ManageMembers),
    (Verb::Post, "/admin/t/{slug}/members/{user_id}/reset-mfa", Action::RecoverMembers),
    (Verb::Post, "/admin/t/{slug}/members/{user_id}/recovery-link", Action::RecoverMembers),
    (Verb::Post, "/admin/t/{slug}/members/{user_id}/sign-out", Action::RecoverMembers),
    (Verb::Post, "/admin/t/{slug}/invitations", Action::ManageMembers),
    (Verb::Post, "/admin/t/{slug}/invitations/{invitation}/withdraw", Action::ManageMembers),
    (Verb::Get, "/admin/t/{slug}/clients", Action::ReadClients),
    (Verb::Post, "/admin/t/{slug}/clients", Action::ManageClients),
    (Verb::Get, "/admin/t/{slug}/clients/{client_id}", Action::ReadClients),
    (Verb::Post, "/admin/t/{slug}/clients/{client_id}", Action::ManageClients),
    (Verb::Post, "/admin/t/{slug}/clients/{client_id}/rotate", Action::ManageClients),
    (Verb::Post, "/admin/t/{slug}/clients/{client_id}/delete", Action::ManageClients),
    (Verb::Get, "/admin/t/{slug}/devices", Action::ReadDevices),
    (Verb::Post, "/admin/t/{slug}/devices/{family}/revoke", Action::ManageDevices),
    (Verb::Get, "/admin/t/{slug}/sessions", Action::ReadSessions),
    (Verb::Post, "/admin/t/{slug}/sessions/{session}/end", Action::EndSessions),
    (Verb::Get, "/admin/t/{slug}/audit", Action::ReadAudit),
    (Verb::Get, "/admin/t/{slug}/settings", Action::ReadSettings),
    (Verb::Post, "/admin/t/{slug}/settings", Action::ManageSettings),
    (Verb::Get, "/admin/platform", Action::ManageTenants),
    (Verb::Post, "/admin/platform/tenants", Action::ManageTenants),
    (Verb::Post, "/admin/platform/tenants/{tenant}/suspend", Action::ManageTenants),
    (Verb::Post, "/admin/platform/tenants/{tenant}/reactivate", Action::ManageTenants),
    (Verb::Post, "/admin/platform/tenants/{tenant}/admins", Action::ManageTenants),
];

/// The fields (besides `csrf`) of a valid post to each form.
pub fn sample_fields(path: &str) -> Vec<(&'static str, String)> {
    let fresh = || format!("new-{}@example.com", Uuid::now_v7().simple());
    match path {
        "/admin/t/{slug}/members" | "/admin/t/{slug}/invitations" => {
            vec![("email", fresh()), ("role", "viewer".into())]
        }
        "/admin/t/{slug}/members/{user_id}/role" => vec![("role", "editor".into())],
        "/admin/t/{slug}/clients" => vec![
            ("name", "Made on a page".into()),
            ("grant_code", "on".into()),
            ("grant_refresh", "on".into()),
            ("redirect_uris", "https://app.example.com/cb https://app.example.com/cb2".into()),
        ],
        "/admin/t/{slug}/clients/{client_id}" => {
            vec![("name", "Renamed".into()), ("redirect_uris", "https://app.example.com/other".into())]
        }
        "/admin/t/{slug}/settings" => vec![("require_mfa", "on".into())],
        "/admin/platform/tenants" => vec![
            ("slug", format!("t-{}", &Uuid::now_v7().simple().to_string()[20..])),
            ("name", "New Org".into()),
            ("admin_email", fresh()),
        ],
        "/admin/platform/tenants/{tenant}/admins" => vec![("email", fresh())],
        _ => vec![],
    }
}

/// The path with its placeholders filled in.
pub fn fill(path: &str, values: &HashMap<&str, String>) -> String {
    let mut out = path.to_owned();
    for (k, v) in values {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    assert!(!out.contains('{'), "unfilled {out}");
    out
}

/// Fresh objects of tenant `slug` for one form to act on: an invited member, a client, a live
/// session and a device sign-in (token families), an open invitation, and a tenant for the
/// platform forms.
pub async fn targets(p: &Provider, slug: &str) -> HashMap<&'static str, String> {
    let tenant = tenant_id(p, slug).await;
    let email = format!("target-{}@example.com", Uuid::now_v7().simple());
    let member = add_member_in(&p.t.db, &Actor::system(), tenant, &email, Role::Viewer, Unknown::Invite).await.unwrap();
    let client = clients::create_client(
        &p.t.db,
        clients::ClientRequest {
            tenant: slug.into(),
            name: "Target".into(),
            grants: vec!["authorization_code".into()],
            redirect_uris: vec!["https://target.example.com/cb".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let device = family(p, tenant, &client.client_id, member.user_id, true).await;
    let session = family(p, tenant, &client.client_id, member.user_id, false).await;
    let other_slug = format!("t-{}", &Uuid::now_v7().simple().to_string()[20..]);
    let other = tenancy::create_tenant(&p.t.db, &other_slug, "Target Org", false).await.unwrap();
    let invited = format!("invited-{}@example.com", Uuid::now_v7().simple());
    let invitation =
        tenancy::invitations::invite(&p.t.db, &p.state.config, &Actor::system(), tenant, &invited, Role::Viewer)
            .await
            .unwrap();
    HashMap::from([
        ("invitation", invitation.id.to_string()),
        ("slug", slug.to_owned()),
        ("user_id", member.user_id.to_string()),
        ("client_id", client.client_id),
        ("family", device.to_string()),
        ("session", session.to_string()),
        ("tenant", other.slug),
    ])
}

/// A live token family of `user` through `client` (begun by the device grant when `device`).
pub async fn family(p: &Provider, tenant: Uuid, client: &str, user: Uuid, device: bool) -> Uuid {
    let id = Uuid::now_v7();
    let mut tx = p.t.db.tenant(tenant).await.unwrap();
    let f = db::families::Family {
        family_id: id,
        client_id: client.to_owned(),
        user_id: Some(user),
        scope: "openid".into(),
        auth_time: Some(chrono::Utc::now()),
        amr: vec!["pwd".into()],
        acr: None,
        sid: None,
        expires_at: chrono::Utc::now() + chrono::Duration::days(1),
        revoked_at: None,
        resources: Vec::new(),
    };
    db::families::insert(&mut tx, &f).await.unwrap();
    if device {
        db::families::mark_begun_by_device(&mut tx, id).await.unwrap();
    }
    tx.commit().await.unwrap();
    id
}

/// A member of `acme` with `role`, signed in with TOTP in a scripted browser.
pub async fn member(p: &Provider, email: &str, role: Role) -> Browser {
    let hasher = identity::PasswordHasher::new();
    identity::create_user(&p.t.db, &hasher, email, crate::flow::PASSWORD).await.unwrap();
    tenancy::add_member(&p.t.db, "acme", email, role).await.unwrap();
    enrolled(p, email, crate::flow::PASSWORD).await.0
}

/// The router's admin routes are exactly this test's table (method, path and action), so no
/// page or form exists that the table-driven test below does not try; and no `/admin` route is
/// registered anywhere but through that list.
#[test]
fn the_table_is_the_router() {
    let routes: Vec<(Verb, &str, Action)> = ROUTES.iter().map(|r| (r.verb, r.path, r.action)).collect();
    for line in &routes {
        assert!(TABLE.contains(line), "{line:?} is a route the admin pages' table test does not know");
    }
    for line in TABLE {
        assert!(routes.contains(line), "{line:?} is in the test's table but not a route");
    }
    assert_eq!(routes.len(), TABLE.len());
    // Every other route is registered in src/lib.rs; none of them may be an admin page.
    let lib = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs")).unwrap();
    let stray: Vec<&str> = lib.lines().filter(|l| l.contains(".route(\"/admin")).collect();
    assert!(stray.is_empty(), "admin routes outside pages::admin::ROUTES: {stray:?}");
    assert_eq!(INDEX, "/admin");
}

/// What a request came to once the provider's redirects are followed: the status, the path
/// of the page it ended on, and that page.
pub async fn outcome(
    p: &Provider,
    b: &Browser,
    verb: Verb,
    path: &str,
    csrf: &str,
    fields: &[(&'static str, String)],
) -> (u16, String, String) {
    let step = match verb {
        Verb::Get => b.open(&p.url(path)).await,
        Verb::Post => {
            let mut form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            form.push(("csrf", csrf));
            b.post(path, &form).await
        }
    };
    match step {
        Step::Page { status, url, html, .. } => (status, url::Url::parse(&url).unwrap().path().to_owned(), html),
        Step::Left(url) => panic!("{path} left for {url}"),
    }
}

/// Must-show 2, the pages: a viewer, an editor and an admin of `acme` (each signed in with
/// TOTP) try every page and every form of the table on fresh objects. Each gets a page (200,
/// after the form's 303) exactly when `Action::allowed(role, false)` says so, a 403 page
/// otherwise; the platform area answers 404 to all three, as to any tenant admin.
#[tokio::test]
async fn every_role_gets_what_the_permission_table_says_on_every_page() {
    let p = Provider::start().await;
    for role in [Role::Viewer, Role::Editor, Role::Admin] {
        let b = member(&p, &format!("{role}@example.com"), role).await;
        for (verb, path, action) in TABLE {
            let values = targets(&p, "acme").await;
            let url = fill(path, &values);
            let csrf = hidden(b.open(&p.url("/admin/t/acme")).await.html(), "csrf");
            let (got, landed, html) = outcome(&p, &b, *verb, &url, &csrf, &sample_fields(path)).await;
            let want = if path.starts_with("/admin/platform") {
                404
            } else if action.allowed(role, false) {
                200
            } else {
                403
            };
            if got == 200 {
                // A page of the admin area, not a sign-in page; after a form, what it did.
                assert!(landed.starts_with("/admin/t/acme"), "{role} {path} ended at {landed}");
                if *verb == Verb::Post {
                    assert!(html.contains("id=\"notice\"") || html.contains("class=\"once\""), "{path}: {html}");
                }
            }
            assert_eq!(got, want, "{role} {verb:?} {path} ({})", action.as_str());
        }
    }
}

/// A signed-in member of no organisation is told so plainly (a 403 page that says it), not
/// shown an empty list; every tenant page is a 404 for them.
#[tokio::test]
async fn a_member_of_nothing_is_told_so() {
    let p = Provider::start().await;
    let hasher = identity::PasswordHasher::new();
    identity::create_user(&p.t.db, &hasher, "loner@example.com", crate::flow::PASSWORD).await.unwrap();
    let (b, _, _) = enrolled(&p, "loner@example.com", crate::flow::PASSWORD).await;
    let page = b.open(&p.url("/admin")).await;
    assert_eq!(page.status(), 403);
    assert!(page.html().contains("You have no organisation to administer"), "{}", page.html());
    assert!(page.html().contains("id=\"no-organisation\""));
    assert!(!page.html().contains("id=\"organisations\""));
    assert_eq!(b.open(&p.url("/admin/t/acme")).await.status(), 404);
    assert_eq!(b.open(&p.url("/admin/platform")).await.status(), 404);
}

/// The index lists each organisation with the user's role there (viewers too), and a
/// platform admin's link to the platform area; nobody else gets that link.
#[tokio::test]
async fn the_index_lists_every_membership_with_its_role() {
    let p = Provider::start().await;
    p.t.tenant("globex").await;
    tenancy::create_tenant(&p.t.db, "platform", "Platform", true).await.unwrap();
    let b = member(&p, "multi@example.com", Role::Viewer).await;
    tenancy::add_member(&p.t.db, "globex", "multi@example.com", Role::Editor).await.unwrap();
    let page = b.open(&p.url("/admin")).await;
    assert_eq!(page.status(), 200);
    let html = page.html();
    assert!(html.contains("<tr data-slug=\"acme\"><td><a href=\"/admin/t/acme\">acme</a></td><td><code>acme</code></td><td>viewer</td>"), "{html}");
    assert!(html.contains("<td>editor</td>"), "{html}");
    assert!(!html.contains("platform-link"));
    tenancy::add_member(&p.t.db, "platform", "multi@example.com", Role::Admin).await.unwrap();
    assert!(b.open(&p.url("/admin")).await.html().contains("id=\"platform-link\""));
}

/// Every page and form of another organisation (one the user is not a member of), of a
/// missing one, and of one of theirs that is suspended, is the same 404, whatever the role
/// and whatever the CSRF token.
#[tokio::test]
async fn another_tenants_slug_is_a_404_on_every_page() {
    let p = Provider::start().await;
    p.t.tenant("globex").await;
    let b = member(&p, "root@example.com", Role::Admin).await;
    let csrf = hidden(b.open(&p.url("/admin/t/acme")).await.html(), "csrf");
    // Objects of globex's own, so only the slug stands between.
    let mut values = targets(&p, "globex").await;
    for slug in ["globex", "nope", "ACME", "acme-"] {
        values.insert("slug", slug.to_owned());
        for (verb, path, _) in TABLE.iter().filter(|(_, path, _)| path.starts_with("/admin/t/")) {
            let url = fill(path, &values);
            let (status, _, html) = outcome(&p, &b, *verb, &url, &csrf, &sample_fields(path)).await;
            assert_eq!(status, 404, "{verb:?} {url}: {html}");
            assert!(!html.contains("globex"), "{url} names the other tenant");
        }
    }
    // Their own slug with globex's ids: every object is missing, as an id that never was.
    values.insert("slug", "acme".to_owned());
    let objects = ["{user_id}", "{client_id}", "{family}", "{session}"];
    for (verb, path, _) in TABLE.iter().filter(|(_, path, _)| objects.iter().any(|o| path.contains(o))) {
        let url = fill(path, &values);
        let (status, _, html) = outcome(&p, &b, *verb, &url, &csrf, &sample_fields(path)).await;
        assert_eq!(status, 404, "{verb:?} {url}: {html}");
    }
    let globex = tenant_id(&p, "globex").await;
    for action in
        ["membership.role_changed", "membership.removed", "client.updated", "client.deleted", "device.revoked"]
    {
        assert!(crate::mfa::audit_rows(&p, globex, action).await.is_empty(), "{action} in globex");
    }
    // Their own tenant, suspended: gone too, until it is reactivated.
    tenancy::set_suspended(&p.t.db, &Actor::system(), "acme", true).await.unwrap();
    assert_eq!(b.open(&p.url("/admin/t/acme/members")).await.status(), 404);
    tenancy::set_suspended(&p.t.db, &Actor::system(), "acme", false).await.unwrap();
    assert_eq!(b.open(&p.url("/admin/t/acme/members")).await.status(), 200);
}

/// The platform area for a platform admin: the organisations listed, one created with its
/// first admin (invited, so a recovery link is shown once), suspended and reactivated, an
/// admin appointed. A viewer of the platform tenant and a tenant admin get the 404 of a page
/// that does not exist, on every platform page and form.
#[tokio::test]
async fn the_platform_area_is_for_platform_admins_only() {
    let p = Provider::start().await;
    let platform = tenancy::create_tenant(&p.t.db, "platform", "Platform", true).await.unwrap().tenant_id;
    let hasher = identity::PasswordHasher::new();
    identity::create_user(&p.t.db, &hasher, "op@example.com", crate::flow::PASSWORD).await.unwrap();
    tenancy::add_member(&p.t.db, "platform", "op@example.com", Role::Admin).await.unwrap();
    let (op, _, _) = enrolled(&p, "op@example.com", crate::flow::PASSWORD).await;
    let page = op.open(&p.url("/admin/platform")).await;
    assert_eq!(page.status(), 200, "{}", page.html());
    assert!(page.html().contains("data-slug=\"acme\"") && page.html().contains("data-slug=\"platform\""));
    let csrf = hidden(page.html(), "csrf");

    let made = op
        .post(
            "/admin/platform/tenants",
            &[("csrf", &csrf), ("slug", "initech"), ("name", "Initech"), ("admin_email", "bill@initech.example")],
        )
        .await;
    assert_eq!(made.status(), 200);
    let link = crate::flow::between(made.html(), "<code id=\"notice-code\" class=\"wrap\">", "</code>");
    assert!(link.starts_with(&p.url("/recover?token=")), "{link}");
    assert!(made.html().contains("bill@initech.example"));
    let again = op.open(&p.url("/admin/platform")).await;
    assert!(again.html().contains("data-slug=\"initech\"") && !again.html().contains(&link), "shown once");
    let initech = tenant_id(&p, "initech").await;
    let created = crate::mfa::audit_rows(&p, initech, "tenant.created").await;
    assert_eq!(created.len(), 1);
    let op_id = crate::mfa::user_id(&p, "op@example.com").await.to_string();
    assert_eq!((created[0].actor_kind.as_str(), created[0].actor_id.as_deref()), ("user", Some(op_id.as_str())));
    assert_eq!(crate::mfa::audit_rows(&p, initech, "membership.added").await.len(), 1);

    let suspended = op.post("/admin/platform/tenants/initech/suspend", &[("csrf", &csrf)]).await;
    assert!(suspended.html().contains("<tr data-slug=\"initech\"><td>Initech</td><td><code>initech</code></td><td class=\"tenant-status\">suspended</td>"), "{}", suspended.html());
    let back = op.post("/admin/platform/tenants/initech/reactivate", &[("csrf", &csrf)]).await;
    assert!(back.html().contains("<td class=\"tenant-status\">active</td>"));
    let appointed =
        op.post("/admin/platform/tenants/acme/admins", &[("csrf", &csrf), ("email", "ann@example.com")]).await;
    assert!(appointed.html().contains("The administrator is appointed"), "{}", appointed.html());
    let acme = tenant_id(&p, "acme").await;
    let changed = crate::mfa::audit_rows(&p, acme, "membership.role_changed").await;
    assert_eq!(changed.len(), 1, "ann, an editor, is now an admin");
    // The platform tenant cannot be suspended: a 400 page saying so, nothing done.
    let refused = op.post("/admin/platform/tenants/platform/suspend", &[("csrf", &csrf)]).await;
    assert_eq!(refused.status(), 400);
    assert!(crate::mfa::audit_rows(&p, platform, "tenant.suspended").await.is_empty());

    // A viewer of the platform tenant, and an admin of acme: no such pages.
    let viewer = member(&p, "pv@example.com", Role::Viewer).await;
    tenancy::add_member(&p.t.db, "platform", "pv@example.com", Role::Viewer).await.unwrap();
    let tenant_admin = member(&p, "root@example.com", Role::Admin).await;
    let mut values = targets(&p, "acme").await;
    values.insert("tenant", "acme".into());
    for b in [&viewer, &tenant_admin] {
        let csrf = hidden(b.open(&p.url("/admin/t/acme")).await.html(), "csrf");
        for (verb, path, _) in TABLE.iter().filter(|(_, path, _)| path.starts_with("/admin/platform")) {
            let (status, _, _) = outcome(&p, b, *verb, &fill(path, &values), &csrf, &sample_fields(path)).await;
            assert_eq!(status, 404, "{verb:?} {path}");
        }
    }
    assert!(crate::mfa::audit_rows(&p, acme, "tenant.suspended").await.is_empty());
}

/// The route of the table a form's action posts to (placeholders match one segment).
fn route_of(action: &str) -> Option<&'static (Verb, &'static str, Action)> {
    let parts: Vec<&str> = action.split('/').collect();
    TABLE.iter().filter(|(verb, _, _)| *verb == Verb::Post).find(|(_, path, _)| {
        let pattern: Vec<&str> = path.split('/').collect();
        pattern.len() == parts.len() && pattern.iter().zip(&parts).all(|(p, a)| p.starts_with('{') || p == a)
    })
}

/// The pages show a form only for what the role may do: every form on every page a viewer,
/// an editor and an admin open posts to an action the table allows them; and the admin's pages
/// hold a form for every tenant form of the table (none is unreachable).
#[tokio::test]
async fn the_pages_show_only_the_forms_the_role_may_use() {
    let p = Provider::start().await;
    for role in [Role::Viewer, Role::Editor, Role::Admin] {
        let b = member(&p, &format!("{role}@example.com"), role).await;
        let values = targets(&p, "acme").await;
        let mut reached = std::collections::HashSet::new();
        for (_, path, _) in TABLE.iter().filter(|(v, path, _)| *v == Verb::Get && path.starts_with("/admin/t/")) {
            let page = b.open(&p.url(&fill(path, &values))).await;
            assert_eq!(page.status(), 200, "{role} {path}");
            for form in page.html().split("<form method=\"post\" action=\"").skip(1) {
                let action = &form[..form.find('"').unwrap()];
                if action == "/logout" {
                    continue;
                }
                let route = route_of(action).unwrap_or_else(|| panic!("{path} has a form to {action}, no route"));
                assert!(route.2.allowed(role, false), "{role} sees a form to {action} on {path}");
                reached.insert(route.1);
            }
        }
        if role == Role::Admin {
            let all: std::collections::HashSet<&str> = TABLE
                .iter()
                .filter(|(v, path, _)| *v == Verb::Post && path.starts_with("/admin/t/"))
                .map(|(_, path, _)| *path)
                .collect();
            assert_eq!(reached, all, "every form has a page");
        }
    }
}
