//! User profiles (OIDC Core §5.1): edited on the account page, through the admin API and by
//! `user set-profile`, all validated by `identity::profile`; returned by scope from UserInfo
//! (§5.4), left out when absent; audited as `user.profile_changed` in each of the user's
//! tenants.

use laventecare_auth::db::audit::Actor;
use laventecare_auth::identity::profile::{self, Editor, Field, ProfileEdit};
use laventecare_auth::vocabulary::Role;
use laventecare_auth::{identity, tenancy};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    RedirectUrl, Scope, TokenResponse,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::api::service_token;
use crate::flow::{Browser, PASSWORD, Provider, Step, authorize_url, claims, hidden, pkce};
use crate::mfa::{audit_rows, tenant_id, user_id};
use crate::support::{cli, json_out};

const BOB: &str = "bob@example.com";

/// A browser signed in as ann on her account page.
async fn on_account_page(p: &Provider) -> (Browser, Step) {
    let b = Browser::new(p);
    let login = b.open(&p.url("/account")).await;
    let account = b.login(&login, &p.email, PASSWORD).await;
    assert!(account.html().contains("action=\"/account/profile\""), "{}", account.html());
    (b, account)
}

/// Posts the profile form of `page` with `fields` (the others sent empty, as a browser does).
async fn post_profile(b: &Browser, page: &Step, fields: &[(&str, &str)]) -> Step {
    let csrf = hidden(page.html(), "csrf");
    let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
    for name in ["name", "given_name", "family_name", "preferred_username", "locale", "zoneinfo"] {
        form.push((name, fields.iter().find(|(k, _)| *k == name).map_or("", |(_, v)| *v)));
    }
    let known = |k: &str| k == "csrf" || form.iter().any(|(f, _)| *f == k);
    let extra: Vec<(&str, &str)> = fields.iter().filter(|(k, _)| !known(k)).copied().collect();
    form.extend(extra);
    b.post("/account/profile", &form).await
}

/// The user's row as stored (every column), to compare before and after.
async fn row(p: &Provider, user: Uuid) -> Value {
    let mut conn = p.t.owner().await;
    sqlx::query_scalar("SELECT to_jsonb(u) FROM users u WHERE id = $1").bind(user).fetch_one(&mut conn).await.unwrap()
}

/// `user.profile_changed` events in every chain.
async fn profile_events(p: &Provider) -> i64 {
    let mut conn = p.t.owner().await;
    sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'user.profile_changed'")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

/// UserInfo's JSON for a code-flow access token of ann with `scope`.
async fn userinfo_with_scope(p: &Provider, scope: &str) -> Value {
    let b = Browser::new(p);
    let (verifier, challenge) = pkce();
    let step = b.sign_in_through(&authorize_url(p, &challenge, &[("scope", scope)]), &p.email, PASSWORD).await;
    let (status, tokens) = p.redeem(&step.param("code").unwrap(), &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let id = claims(tokens["id_token"].as_str().unwrap());
    for name in ["name", "given_name", "locale", "zoneinfo", "email", "email_verified", "preferred_username"] {
        assert!(id.get(name).is_none(), "scope claims go to UserInfo, not the ID token (OIDC Core §5.4): {id}");
    }
    let res = p.http().get(p.url("/userinfo")).bearer_auth(tokens["access_token"].as_str().unwrap()).send().await;
    let res = res.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The user edits the account page's profile form; the `openidconnect` relying party reads
/// every field from UserInfo with the `profile` scope; `openid` alone gives none of them,
/// `email` gives the address and `email_verified`; a box emptied later leaves its claim out.
#[tokio::test]
async fn relying_party_reads_what_the_user_saved() {
    let p = Provider::start().await;
    let ann = user_id(&p, &p.email).await;
    let before = row(&p, ann).await;
    let (b, account) = on_account_page(&p).await;
    let saved = post_profile(
        &b,
        &account,
        &[
            ("name", "Ann Lee"),
            ("given_name", "Ann"),
            ("family_name", " Lee "),
            ("preferred_username", "ann.lee"),
            ("locale", "nl-nl"),
            ("zoneinfo", "Europe/Amsterdam"),
        ],
    )
    .await;
    assert_eq!(saved.status(), 200);
    // Saved in Dutch: the account page follows the new language at once (tests/it/language.rs).
    let saved_text = laventecare_auth::html::text::NL.account_profile_saved;
    assert!(saved.html().contains(saved_text), "{}", saved.html());
    assert!(saved.html().contains("value=\"nl-NL\""), "the page shows the tag in its recommended case");
    let after = row(&p, ann).await;
    assert_ne!(after["updated_at"], before["updated_at"], "updated_at moves on a change");

    // Audited in ann's tenant with each field from and to.
    let events = audit_rows(&p, tenant_id(&p, "acme").await, "user.profile_changed").await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!((e.actor_kind.as_str(), e.actor_id.as_deref()), ("user", Some(ann.to_string().as_str())));
    assert_eq!(e.target_id.as_deref(), Some(ann.to_string().as_str()));
    assert_eq!(e.details["changed"]["name"], json!({ "from": null, "to": "Ann Lee" }));
    assert_eq!(e.details["changed"]["family_name"], json!({ "from": null, "to": "Lee" }));
    assert_eq!(e.details["changed"]["locale"], json!({ "from": null, "to": "nl-NL" }));
    assert_eq!(e.details["changed"].as_object().unwrap().len(), 6, "{}", e.details);

    // The same form again changes nothing: no event, no new updated_at.
    let again = post_profile(
        &b,
        &saved,
        &[
            ("name", "Ann Lee"),
            ("given_name", "Ann"),
            ("family_name", "Lee"),
            ("preferred_username", "ann.lee"),
            ("locale", "nl-NL"),
            ("zoneinfo", "Europe/Amsterdam"),
        ],
    )
    .await;
    assert_eq!(again.status(), 200);
    assert_eq!(row(&p, ann).await, after);
    assert_eq!(profile_events(&p).await, 1);

    // The relying party library, with the profile and email scopes.
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(p.issuer.clone()).unwrap(), &http).await.unwrap();
    let supported: Vec<String> = metadata.claims_supported().unwrap().iter().map(|c| c.as_str().to_owned()).collect();
    for claim in ["name", "given_name", "family_name", "preferred_username", "locale", "zoneinfo", "email_verified"] {
        assert!(supported.iter().any(|c| c == claim), "claims_supported lacks {claim}");
    }
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(p.client_id.clone()),
        Some(ClientSecret::new(p.client_secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(crate::flow::REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let back = Browser::new(&p).sign_in_through(url.as_str(), &p.email, PASSWORD).await;
    let tokens = client
        .exchange_code(AuthorizationCode::new(back.param("code").unwrap()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    tokens.id_token().unwrap().claims(&client.id_token_verifier(), &nonce).unwrap();
    let info: CoreUserInfoClaims =
        client.user_info(tokens.access_token().clone(), None).unwrap().request_async(&http).await.unwrap();
    assert_eq!(info.name().and_then(|n| n.get(None)).map(|n| n.as_str()), Some("Ann Lee"));
    assert_eq!(info.given_name().and_then(|n| n.get(None)).map(|n| n.as_str()), Some("Ann"));
    assert_eq!(info.family_name().and_then(|n| n.get(None)).map(|n| n.as_str()), Some("Lee"));
    assert_eq!(info.preferred_username().map(|u| u.as_str()), Some("ann.lee"));
    assert_eq!(info.locale().map(|l| l.as_str()), Some("nl-NL"));
    assert_eq!(info.zoneinfo().map(|z| z.as_str()), Some("Europe/Amsterdam"));
    assert_eq!(info.email().map(|e| e.as_str()), Some("ann@example.com"));
    assert_eq!(info.email_verified(), Some(false));
    let stored: chrono::DateTime<chrono::Utc> = serde_json::from_value(after["updated_at"].clone()).unwrap();
    assert_eq!(info.updated_at().map(|t| t.timestamp()), Some(stored.timestamp()));

    // `openid` alone: the subject and the tenant's claims, no profile or email claim.
    let bare = userinfo_with_scope(&p, "openid").await;
    let mut keys: Vec<&str> = bare.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["roles", "sub", "tenant", "tid"], "{bare}");
    // `email` alone: the address and whether it is verified, nothing of the profile.
    let email = userinfo_with_scope(&p, "openid email").await;
    assert_eq!((email["email"].as_str(), email["email_verified"].as_bool()), (Some("ann@example.com"), Some(false)));
    assert!(email.get("name").is_none() && email.get("updated_at").is_none(), "{email}");

    // An emptied box removes the field: its claim is left out, never null.
    let cleared = post_profile(&b, &again, &[("name", "Ann Lee"), ("zoneinfo", "Europe/Amsterdam")]).await;
    assert_eq!(cleared.status(), 200, "{}", cleared.html());
    let info = userinfo_with_scope(&p, "openid profile").await;
    assert_eq!(info["name"], "Ann Lee");
    for gone in ["given_name", "family_name", "locale"] {
        assert!(info.get(gone).is_none(), "{gone} should be left out: {info}");
    }
    assert_eq!(info["preferred_username"], "ann@example.com", "without one, the email address as before");
}

/// Values the rules refuse, each with the field it is sent in.
const BAD: &[(&str, &str)] = &[
    ("given_name", "Ann\u{7}"),
    ("family_name", "Lee\nSmith"),
    ("name", "Ann \u{202E}eeL"),
    ("preferred_username", "ann lee"),
    ("locale", "en_US"),
    ("locale", "nl-NL-"),
    ("zoneinfo", "Amsterdam"),
    ("zoneinfo", "Europe/../etc"),
];

/// The values of [`BAD`] and over-long ones: refused on the account page (400, the reason
/// shown), by the admin API (400 `invalid_request`) and by `user set-profile` (a non-zero
/// exit naming the field), with the row and the audit chains untouched each time. So is an
/// account form with a field it does not have, or without its CSRF token.
#[tokio::test]
async fn invalid_values_change_nothing_anywhere() {
    let p = Provider::start().await;
    let ann = user_id(&p, &p.email).await;
    let admin = service_token(&p, "acme", Role::Admin).await;
    let (b, account) = on_account_page(&p).await;
    let long_name = "n".repeat(201);
    let long_user = "u".repeat(101);
    let long_locale = format!("en-{}", ["abcdefgh"; 4].join("-"));
    let long_zone = format!("Europe/{}", "A".repeat(60));
    let mut cases: Vec<(&str, &str)> = BAD.to_vec();
    cases.extend([
        ("name", long_name.as_str()),
        ("preferred_username", long_user.as_str()),
        ("locale", long_locale.as_str()),
        ("zoneinfo", long_zone.as_str()),
    ]);
    let before = row(&p, ann).await;
    for (field, value) in &cases {
        // A valid name beside the bad value: it is not saved either.
        let mut fields = vec![(*field, *value)];
        let mut body = serde_json::Map::from_iter([((*field).to_owned(), json!(value))]);
        let mut args = vec!["user", "set-profile", "--email", p.email.as_str()];
        let flag = format!("--{}", field.replace('_', "-"));
        args.extend([flag.as_str(), value]);
        if *field != "name" {
            fields.push(("name", "Ann Lee"));
            body.insert("name".into(), json!("Ann Lee"));
            args.extend(["--name", "Ann Lee"]);
        }
        let page = post_profile(&b, &account, &fields).await;
        assert_eq!(page.status(), 400, "the page took {field}={value:?}");
        // Control characters are refused by the form decoder already (`crate::extract`);
        // the rest by the profile's rules, which the page shows.
        let by_decoder = page.html().contains("the request contains a control character");
        let shown = page.html().contains(&format!("role=\"alert\">{field}: "));
        assert!(by_decoder || shown, "the page names {field}: {}", page.html());

        let res = p
            .http()
            .patch(p.url(&format!("/api/v1/members/{ann}/profile")))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "the API took {field}={value:?}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{body}");
        assert!(body["error_description"].as_str().unwrap().starts_with(field), "{body}");

        let out = cli(&p.t, &args, "");
        assert!(!out.status.success(), "the CLI took {field}={value:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("{field}: ")), "{stderr}");

        assert_eq!(row(&p, ann).await, before, "{field}={value:?} changed the row");
    }
    // An empty string is no value in the API (null removes a field).
    for body in [json!({ "name": "" }), json!({ "name": 5 }), json!({ "name": "Ann", "email": "x@y" })] {
        let res = p
            .http()
            .patch(p.url(&format!("/api/v1/members/{ann}/profile")))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{body}");
    }
    // The account form has no email_verified, and takes no field it does not have.
    let sneaky = post_profile(&b, &account, &[("name", "Ann Lee"), ("email_verified", "true")]).await;
    assert_eq!(sneaky.status(), 400);
    let no_csrf = b.post("/account/profile", &[("csrf", "forged"), ("name", "Mallory")]).await;
    assert_eq!(no_csrf.status(), 403);
    // Only an administrator or an operator says an address is verified.
    let own = ProfileEdit { email_verified: Some(true), ..ProfileEdit::default() };
    let actor = Actor { kind: "user", id: Some(ann.to_string()), ..Actor::default() };
    let refused = profile::change(&p.t.db, &actor, Editor::Own, ann, &own).await;
    assert!(matches!(refused, Err(laventecare_auth::service_error::ServiceError::Forbidden(_))), "{refused:?}");
    assert_eq!(row(&p, ann).await, before);
    assert_eq!(profile_events(&p).await, 0, "nothing refused is audited as a change");
}

/// The admin API: an admin of acme edits a member's profile (audited, with the service
/// account as actor; `null` removes a field); a member who also belongs to a tenant the admin
/// does not administer is a 404 like a missing user, and unchanged; viewers and editors 403.
#[tokio::test]
async fn admin_edits_a_member_within_reach() {
    let p = Provider::start().await;
    let acme = tenant_id(&p, "acme").await;
    let ann = user_id(&p, &p.email).await;
    let admin = service_token(&p, "acme", Role::Admin).await;
    let patch = |token: &str, user: Uuid, body: Value| {
        p.http().patch(p.url(&format!("/api/v1/members/{user}/profile"))).bearer_auth(token).json(&body).send()
    };

    let res = patch(&admin, ann, json!({ "name": "Ann Lee", "zoneinfo": "Europe/Amsterdam", "email_verified": true }))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["name"], "Ann Lee");
    assert_eq!(body["email_verified"], true);
    assert_eq!(body["changed"], json!(["name", "zoneinfo", "email_verified"]));
    let events = audit_rows(&p, acme, "user.profile_changed").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor_kind, "client");
    assert_eq!(events[0].details["changed"]["email_verified"], json!({ "from": false, "to": true }));
    let info = userinfo_with_scope(&p, "openid email profile").await;
    assert_eq!((info["email_verified"].as_bool(), info["zoneinfo"].as_str()), (Some(true), Some("Europe/Amsterdam")));

    let res = patch(&admin, ann, json!({ "zoneinfo": null })).await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!((body["zoneinfo"].clone(), body["name"].as_str()), (Value::Null, Some("Ann Lee")), "only zoneinfo goes");

    // Bob is in acme and in globex, which this admin does not administer.
    identity::create_user(&p.t.db, &identity::PasswordHasher::new(), BOB, PASSWORD).await.unwrap();
    tenancy::add_member(&p.t.db, "acme", BOB, Role::Viewer).await.unwrap();
    let globex = p.t.tenant("globex").await;
    tenancy::add_member(&p.t.db, "globex", BOB, Role::Viewer).await.unwrap();
    let bob = user_id(&p, BOB).await;
    let bob_before = row(&p, bob).await;
    let out_of_reach = patch(&admin, bob, json!({ "name": "Robert" })).await.unwrap();
    assert_eq!(out_of_reach.status(), 404);
    let mut out_body: Value = out_of_reach.json().await.unwrap();
    let missing = patch(&admin, Uuid::now_v7(), json!({ "name": "Robert" })).await.unwrap();
    assert_eq!(missing.status(), 404);
    let mut missing_body: Value = missing.json().await.unwrap();
    out_body.as_object_mut().unwrap().remove("request_id");
    missing_body.as_object_mut().unwrap().remove("request_id");
    assert_eq!(out_body, missing_body, "out of reach looks missing");
    assert_eq!(row(&p, bob).await, bob_before);
    assert!(audit_rows(&p, globex, "user.profile_changed").await.is_empty());

    // Globex's admin may not either (bob is in acme too); an operator may, and both chains
    // record it.
    let globex_admin = service_token(&p, "globex", Role::Admin).await;
    assert_eq!(patch(&globex_admin, bob, json!({ "name": "Robert" })).await.unwrap().status(), 404);
    assert_eq!(row(&p, bob).await, bob_before);
    let edit = ProfileEdit { name: Field::Set("Robert".into()), ..ProfileEdit::default() };
    profile::change(&p.t.db, &Actor::operator("test"), Editor::Operator, bob, &edit).await.unwrap().unwrap();
    assert_eq!(audit_rows(&p, acme, "user.profile_changed").await.len(), 3);
    assert_eq!(audit_rows(&p, globex, "user.profile_changed").await.len(), 1);

    let ann_before = row(&p, ann).await;
    for role in [Role::Viewer, Role::Editor] {
        let token = service_token(&p, "acme", role).await;
        let res = patch(&token, ann, json!({ "name": "Mallory" })).await.unwrap();
        assert_eq!(res.status(), 403, "{role}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "forbidden");
    }
    assert_eq!(row(&p, ann).await, ann_before);
}

/// Concurrent edits of one profile apply one after the other: every event's `from` is what
/// the one before it left (the row is locked for the edit), and the row holds the last `to`.
#[tokio::test]
async fn concurrent_edits_are_serialised() {
    let p = Provider::start().await;
    let acme = tenant_id(&p, "acme").await;
    let ann = user_id(&p, &p.email).await;
    let admin = service_token(&p, "acme", Role::Admin).await;
    let sends = (0..8).map(|i| {
        let (http, url, admin) = (p.http(), p.url(&format!("/api/v1/members/{ann}/profile")), admin.clone());
        async move {
            let res = http.patch(url).bearer_auth(admin).json(&json!({ "name": format!("Name {i}") })).send().await;
            res.unwrap().status().as_u16()
        }
    });
    let statuses = futures::future::join_all(sends).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let events = audit_rows(&p, acme, "user.profile_changed").await;
    assert_eq!(events.len(), 8);
    let mut last = Value::Null;
    for e in &events {
        let change = &e.details["changed"]["name"];
        assert_eq!(change["from"], last, "an edit lost another's change: {change}");
        last = change["to"].clone();
    }
    assert_eq!(row(&p, ann).await["name"], last);
}

/// `user set-profile`: sets the given fields (`--email-verified true` included), an empty
/// value removes one, the same values again change nothing, an unknown email is an error.
#[tokio::test]
async fn operator_sets_a_profile() {
    let p = Provider::start().await;
    let ann = user_id(&p, &p.email).await;
    let v = json_out(&cli(
        &p.t,
        &[
            "user",
            "set-profile",
            "--email",
            "ANN@example.com",
            "--name",
            "Ann Lee",
            "--locale",
            "en-GB",
            "--email-verified",
            "true",
            "--json",
        ],
        "",
    ));
    assert_eq!(v["changed"], json!(["name", "locale", "email_verified"]), "{v}");
    let stored = row(&p, ann).await;
    assert_eq!((stored["name"].as_str(), stored["locale"].as_str()), (Some("Ann Lee"), Some("en-GB")));
    assert_eq!(stored["email_verified"], true);
    let events = audit_rows(&p, tenant_id(&p, "acme").await, "user.profile_changed").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor_kind, "operator");

    let same = cli(&p.t, &["user", "set-profile", "--email", &p.email, "--name", "Ann Lee"], "");
    assert!(same.status.success());
    assert!(String::from_utf8_lossy(&same.stdout).contains("unchanged"));
    let cleared = json_out(&cli(&p.t, &["user", "set-profile", "--email", &p.email, "--locale", "", "--json"], ""));
    assert_eq!(cleared["changed"], json!(["locale"]));
    assert_eq!(row(&p, ann).await["locale"], Value::Null);
    assert_eq!(profile_events(&p).await, 2);

    let nobody = cli(&p.t, &["user", "set-profile", "--email", "nobody@example.com", "--name", "X"], "");
    assert!(!nobody.status.success());
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("no user has the email"));
    let bad_flag = cli(&p.t, &["user", "set-profile", "--email", &p.email, "--email-verified", "maybe"], "");
    assert!(!bad_flag.status.success());
}

/// The ID token's user claims come by name only (the `claims` parameter's `id_token` member,
/// OIDC Core §5.5): the names given that the user has a value for, no others, nothing for a
/// user the tenant cannot see.
#[tokio::test]
async fn id_token_claims_by_name() {
    let p = Provider::start().await;
    let acme = tenant_id(&p, "acme").await;
    let ann = user_id(&p, &p.email).await;
    let edit = ProfileEdit {
        name: Field::Set("Ann Lee".into()),
        locale: Field::Set("fr-CA".into()),
        ..ProfileEdit::default()
    };
    profile::change(&p.t.db, &Actor::operator("test"), Editor::Operator, ann, &edit).await.unwrap().unwrap();
    let mut tx = p.t.db.tenant(acme).await.unwrap();
    let mut id = serde_json::Map::new();
    let asked = ["name", "locale", "zoneinfo", "email_verified", "sub", "phone_number"];
    laventecare_auth::protocol::issue::add_requested_id_token_claims(&mut tx, &mut id, ann, &asked).await.unwrap();
    assert_eq!(Value::Object(id), json!({ "name": "Ann Lee", "locale": "fr-CA", "email_verified": false }));

    let other = p.t.tenant("globex").await;
    let mut tx_other = p.t.db.tenant(other).await.unwrap();
    let mut none = serde_json::Map::new();
    laventecare_auth::protocol::issue::add_requested_id_token_claims(&mut tx_other, &mut none, ann, &["name"])
        .await
        .unwrap();
    assert!(none.is_empty(), "ann is no member of globex: {none:?}");
    tx.commit().await.unwrap();
    tx_other.commit().await.unwrap();
}
