//! Must-show 3 of the admin surface: with the handlers' own checks switched off
//! (`AppState::without_handler_checks`, for this file only), a VIEWER of A may do what the
//! table keeps for admins on A's own objects — and still cannot read or change one row of B,
//! because every operation runs in a transaction of the caller's tenant and Row Level Security
//! hides the rest (ARCHITECTURE.md, "Admin surface").

use laventecare_auth::admin::{self, Caller, Cursor, HandlerChecks};
use laventecare_auth::db::audit::Actor;
use laventecare_auth::identity::recovery::MemberAction;
use laventecare_auth::service_error::ServiceError;
use laventecare_auth::vocabulary::Role;
use laventecare_auth::{AppState, identity, tenancy};
use serde_json::json;

use crate::admin_isolation::{assert_b_has_something_to_lose, assert_holds_none_of, attack, report, snapshot};
use crate::admin_world::World;
use crate::flow::{PASSWORD, Provider, claims};

/// [`Provider::start`], but its state's admin handlers do not check the permission table.
async fn provider_without_handler_checks() -> Provider {
    Provider::start_adjusted(&[], AppState::without_handler_checks).await
}

/// The switch is really off: a viewer of A changes a member's role and removes a member of A
/// (both need the admin role) — and then the whole attack of `admin_isolation`, sent by that
/// viewer, still finds B missing everywhere and leaves B unchanged.
#[tokio::test]
async fn rls_alone_keeps_b_from_a_viewer_without_handler_checks() {
    let w = World::build_on(provider_without_handler_checks().await).await;
    let http = w.p.http();
    let (target, _) = w.a.fresh_member(&w.p, Role::Viewer).await;
    let res = http
        .patch(w.p.url(&format!("/api/v1/members/{target}")))
        .bearer_auth(&w.a.viewer)
        .json(&json!({ "role": "editor" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the checks are off: a viewer changes a role");
    let res = http.delete(w.p.url(&format!("/api/v1/members/{target}"))).bearer_auth(&w.a.viewer).send().await.unwrap();
    assert_eq!(res.status(), 204, "the checks are off: a viewer removes a member");

    let before = snapshot(&w.p, w.b.id).await;
    assert_b_has_something_to_lose(&before);
    let timings = attack(&w, &w.a.viewer).await;
    assert_eq!(snapshot(&w.p, w.b.id).await, before, "B changed under A's viewer without handler checks");
    report("viewer of A, handler checks off", &timings);
}

/// The data level alone: the admin domain functions, called with a Caller of A whose checks
/// are disabled and B's ids, find nothing and change nothing of B.
#[tokio::test]
async fn admin_functions_with_checks_disabled_cannot_reach_b() {
    let w = World::build().await;
    let db = &w.p.t.db;
    let config = &w.p.state.config;
    let viewer_client = claims(&w.a.viewer)["sub"].as_str().unwrap().to_owned();
    let caller = Caller::service(db, w.a.id, &viewer_client, Actor::system(), HandlerChecks::Disabled)
        .await
        .unwrap()
        .expect("A's viewer service account");
    assert_eq!((caller.role, caller.checks()), (Role::Viewer, HandlerChecks::Disabled));
    let before = snapshot(&w.p, w.b.id).await;
    let not_found = |what: &str, r: Result<(), ServiceError>| match r {
        Err(ServiceError::NotFound(_)) => {}
        other => panic!("{what} with B's id: {other:?}"),
    };

    // The switch is off: this viewer may change a role in A.
    let (own, _) = w.a.fresh_member(&w.p, Role::Viewer).await;
    admin::members::set_role(db, &caller, own, Role::Editor).await.unwrap();

    for (user, _, _) in &w.b.members {
        let user = *user;
        not_found("members::get", admin::members::get(db, &caller, user).await.map(drop));
        not_found("members::set_role", admin::members::set_role(db, &caller, user, Role::Admin).await.map(drop));
        not_found("members::remove", admin::members::remove(db, &caller, user).await.map(drop));
        for action in [MemberAction::SignOutEverywhere, MemberAction::ResetMfa] {
            not_found("members::act_on", admin::members::act_on(db, &caller, user, action).await.map(drop));
        }
        not_found("members::recovery_link", admin::members::recovery_link(db, config, &caller, user).await.map(drop));
    }
    let b = &w.b;
    let change = || admin::clients::ClientChange { name: Some("Taken".into()), ..Default::default() };
    not_found("clients::get", admin::clients::get(db, &caller, &b.web_client).await.map(drop));
    not_found("clients::update", admin::clients::update(db, &caller, &b.web_client, change()).await.map(drop));
    not_found("clients::rotate_secret", admin::clients::rotate_secret(db, &caller, &b.web_client).await.map(drop));
    not_found("clients::delete", admin::clients::delete(db, &caller, &b.device_client).await.map(drop));
    for family in [b.device_family, b.session_family] {
        not_found("devices::revoke", admin::devices::revoke(db, &caller, family).await);
        not_found("sessions::end", admin::sessions::end(db, &caller, family).await);
    }
    // The platform's operations check, under RLS, that the caller's tenant is the platform.
    let new = admin::platform::NewTenant {
        slug: "taken".into(),
        name: "Taken".into(),
        admin_email: "x@taken.example".into(),
    };
    not_found("platform::create_tenant", admin::platform::create_tenant(db, config, &caller, new).await.map(drop));
    not_found("platform::set_suspended", admin::platform::set_suspended(db, &caller, &b.slug, true).await.map(drop));
    not_found("platform::get_tenant", admin::platform::get_tenant(db, &caller, &b.slug).await.map(drop));
    not_found(
        "platform::appoint_admin",
        admin::platform::appoint_admin(db, config, &caller, &b.slug, "x@taken.example").await.map(drop),
    );
    not_found(
        "platform::list_tenants",
        admin::platform::list_tenants(db, &caller, &Cursor::first(200)).await.map(drop),
    );

    // The lists and the audit log hold none of B, filtered by B's ids or not.
    let mut listed =
        serde_json::to_string(&admin::members::list(db, &caller, &Cursor::first(200)).await.unwrap().items).unwrap();
    listed +=
        &serde_json::to_string(&admin::clients::list(db, &caller, &Cursor::first(200)).await.unwrap().items).unwrap();
    for user in [None, Some(b.members[0].0)] {
        let devices = admin::devices::list(db, &caller, user, &Cursor::first(200)).await.unwrap().items;
        let sessions = admin::sessions::list(db, &caller, user, &Cursor::first(200)).await.unwrap().items;
        listed += &serde_json::to_string(&(devices, sessions)).unwrap();
    }
    for target in [None, Some(b.members[0].0.to_string()), Some(format!("client:{}", b.web_client))] {
        let filter = admin::audit::AuditFilter { target, ..Default::default() };
        let page = admin::audit::query(db, &caller, &filter, &Cursor::first(200)).await.unwrap();
        listed += &serde_json::to_string(&page.items).unwrap();
        listed += &format!("{:?}", admin::audit::export(db, &caller, &filter).await.unwrap());
    }
    assert_holds_none_of(b, &listed, "the lists", "");
    let verified = admin::audit::verify(db, &caller).await.unwrap();
    assert!(verified.ok);
    let mut conn = w.p.t.owner().await;
    let a_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE tenant_id = $1")
        .bind(w.a.id)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(verified.rows as i64, a_rows, "the chain verified is A's own");
    assert_eq!(snapshot(&w.p, w.b.id).await, before, "B changed under A's caller without checks");
}

/// A person in both A and B: with the checks off, A's caller still cannot act on them,
/// because what is done to a person reaches all their tenants (their families in B end, B's
/// chain records it). The data-level half of the recovery rule, read in the acting
/// transaction and never skipped (`identity::recovery::within_reach`), refuses: every other
/// tenant of the target must be one the actor administers. B's families stay live and its
/// audit chain keeps its length; the calls answer NotFound.
#[tokio::test]
async fn a_member_of_both_tenants_is_no_way_into_b() {
    let w = World::build().await;
    let db = &w.p.t.db;
    let both = "both@example.org";
    identity::create_user(db, &identity::PasswordHasher::new(), both, PASSWORD).await.unwrap();
    let user = tenancy::add_member(db, "acme", both, Role::Viewer).await.unwrap().user_id;
    tenancy::add_member(db, "globex", both, Role::Viewer).await.unwrap();
    let browser = crate::flow::Browser::new(&w.p);
    crate::admin_world::code_family(&w.p, &browser, &w.b.web_client, &w.b.web_secret, both).await;
    let viewer_client = claims(&w.a.viewer)["sub"].as_str().unwrap().to_owned();
    let caller =
        Caller::service(db, w.a.id, &viewer_client, Actor::system(), HandlerChecks::Disabled).await.unwrap().unwrap();
    let b_rows = || async {
        let s = snapshot(&w.p, w.b.id).await;
        (s["families"].clone(), s["access_tokens"].clone(), s["audit_chain_length"].clone())
    };
    let before = b_rows().await;
    for action in [MemberAction::SignOutEverywhere, MemberAction::ResetMfa] {
        let refused = admin::members::act_on(db, &caller, user, action).await;
        assert!(matches!(refused, Err(ServiceError::NotFound(_))), "{action:?}: {refused:?}");
    }
    let link = admin::members::recovery_link(db, &w.p.state.config, &caller, user).await;
    assert!(matches!(link, Err(ServiceError::NotFound(_))), "{link:?}");
    assert_eq!(b_rows().await, before, "B's families or audit chain changed through a member of both");
}
