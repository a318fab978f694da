//! Claims asked for by name in the `claims` request parameter (OIDC Core §5.5), through the real
//! router: those named for the ID token reach it and every refreshed one (§12.2), those named
//! for UserInfo reach it, whatever the scope; a claim the user has no value for is left out,
//! essential or not (§5.5.1); names we do not know are ignored; a member naming more than 40
//! claims is `invalid_request`. The code and the family keep the names (migration 0016).

use laventecare_auth::db::audit::Actor;
use laventecare_auth::db::{self, authorization_codes::CodeGrant, families::RequestedClaims};
use laventecare_auth::identity::profile::{self, Editor, Field, ProfileEdit};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::flow::{Browser, PASSWORD, Provider, REDIRECT, authorize_url, claims, pkce};
use crate::mfa::{tenant_id, user_id};

/// The user claims of ours, every one of which a test looks for.
const USER_CLAIMS: [&str; 9] = [
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "locale",
    "zoneinfo",
    "updated_at",
    "email",
    "email_verified",
];

/// Gives ann a profile: `name`, `given_name` and `locale`, no `family_name` or `zoneinfo`.
async fn ann_has_a_profile(p: &Provider) {
    let ann = user_id(p, &p.email).await;
    let edit = ProfileEdit {
        name: Field::Set("Ann Lee".into()),
        given_name: Field::Set("Ann".into()),
        locale: Field::Set("nl-NL".into()),
        ..ProfileEdit::default()
    };
    profile::change(&p.t.db, &Actor::operator("test"), Editor::Operator, ann, &edit).await.unwrap().unwrap();
}

/// Signs ann in with `scope` and the `claims` parameter and redeems the code: the token response.
async fn sign_in(p: &Provider, scope: &str, claims_param: &str) -> Value {
    let b = Browser::new(p);
    let (verifier, challenge) = pkce();
    let url = authorize_url(p, &challenge, &[("scope", scope), ("claims", claims_param)]);
    let step = b.sign_in_through(&url, &p.email, PASSWORD).await;
    let code = step.code().unwrap_or_else(|| panic!("no code: {step:?}"));
    let (status, tokens) = p.redeem(&code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

/// UserInfo's answer to an access token.
async fn userinfo(p: &Provider, access_token: &str) -> Value {
    let res = p.http().get(p.url("/userinfo")).bearer_auth(access_token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The new tokens for a refresh token.
async fn refresh(p: &Provider, tokens: &Value) -> Value {
    let rt = tokens["refresh_token"].as_str().unwrap();
    let (status, body) = p.token(&[("grant_type", "refresh_token"), ("refresh_token", rt)]).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The user claims of a JSON object (an ID token's claims or UserInfo's answer), by name.
fn user_claims_of(v: &Value) -> Value {
    let obj = v.as_object().unwrap();
    Value::Object(USER_CLAIMS.iter().filter_map(|n| obj.get(*n).map(|c| ((*n).to_owned(), c.clone()))).collect())
}

/// The names every stored code and family keeps, as (table, id_token_claims, userinfo_claims).
async fn stored_names(p: &Provider) -> Vec<(String, Vec<String>, Vec<String>)> {
    let mut conn = p.t.owner().await;
    sqlx::query_as(
        "SELECT 'code', id_token_claims, userinfo_claims FROM authorization_codes \
         UNION ALL SELECT 'family', id_token_claims, userinfo_claims FROM token_families ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

/// Scope `openid` alone, `given_name` (essential) and `email` asked for the ID token: the ID
/// token has both and UserInfo neither; an essential `family_name` ann has no value for is
/// simply absent. The refreshed ID token (OIDC Core §12.2) carries the same claims, with the
/// values of the moment; the refreshed access token's UserInfo still has none of them.
#[tokio::test]
async fn id_token_gets_the_claims_named_for_it_and_keeps_them_on_refresh() {
    let p = Provider::start().await;
    ann_has_a_profile(&p).await;
    let asked = r#"{"id_token":{"given_name":{"essential":true},"email":null,"family_name":{"essential":true}}}"#;
    let tokens = sign_in(&p, "openid", asked).await;
    assert_eq!(tokens["scope"], "openid");
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(user_claims_of(&id), json!({ "given_name": "Ann", "email": p.email }), "{id}");
    assert_eq!(id["nonce"], "n-456", "the usual claims are all still there: {id}");
    let info = userinfo(&p, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(user_claims_of(&info), json!({}), "asked for the ID token only: {info}");
    assert_eq!(info["sub"], id["sub"]);
    let expected: (Vec<String>, Vec<String>) =
        (["email", "family_name", "given_name"].map(String::from).to_vec(), vec![]);
    for (table, id_token, userinfo) in stored_names(&p).await {
        assert_eq!((id_token, userinfo), expected, "{table}");
    }

    // The profile changes; the refreshed ID token names the same claims, with today's values.
    let ann = user_id(&p, &p.email).await;
    let edit = ProfileEdit { given_name: Field::Set("Annie".into()), ..ProfileEdit::default() };
    profile::change(&p.t.db, &Actor::operator("test"), Editor::Operator, ann, &edit).await.unwrap().unwrap();
    let refreshed = refresh(&p, &tokens).await;
    let id = claims(refreshed["id_token"].as_str().unwrap());
    assert_eq!(user_claims_of(&id), json!({ "given_name": "Annie", "email": p.email }), "{id}");
    assert!(id.get("nonce").is_none(), "a refreshed ID token has no nonce (OIDC Core §12.2)");
    let again = refresh(&p, &refreshed).await;
    assert_eq!(user_claims_of(&claims(again["id_token"].as_str().unwrap()))["given_name"], "Annie");
    let info = userinfo(&p, again["access_token"].as_str().unwrap()).await;
    assert_eq!(user_claims_of(&info), json!({}), "{info}");
}

/// Scope `openid` alone, `name`, `locale` (essential) and `zoneinfo` asked for UserInfo:
/// UserInfo has `name` and `locale` and no `zoneinfo` (ann has none), the ID token none of
/// them; after a refresh, UserInfo with the new access token still has them. With the
/// `profile` scope as well, the scope's claims come on top.
#[tokio::test]
async fn userinfo_gets_the_claims_named_for_it_whatever_the_scope() {
    let p = Provider::start().await;
    ann_has_a_profile(&p).await;
    let asked = r#"{"userinfo":{"name":null,"locale":{"essential":true},"zoneinfo":null}}"#;
    let tokens = sign_in(&p, "openid", asked).await;
    let info = userinfo(&p, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(user_claims_of(&info), json!({ "name": "Ann Lee", "locale": "nl-NL" }), "{info}");
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(user_claims_of(&id), json!({}), "asked for UserInfo only: {id}");
    // UserInfo by POST with the token in the body (RFC 6750 §2.2) answers the same.
    let res = p
        .http()
        .post(p.url("/userinfo"))
        .form(&[("access_token", tokens["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(user_claims_of(&res.json::<Value>().await.unwrap()), user_claims_of(&info));

    let refreshed = refresh(&p, &tokens).await;
    let info = userinfo(&p, refreshed["access_token"].as_str().unwrap()).await;
    assert_eq!(user_claims_of(&info), json!({ "name": "Ann Lee", "locale": "nl-NL" }), "the family keeps them");
    assert_eq!(user_claims_of(&claims(refreshed["id_token"].as_str().unwrap())), json!({}));

    // With `email` in the scope: the scope's claims and the named ones together.
    let tokens = sign_in(&p, "openid email", r#"{"userinfo":{"given_name":null}}"#).await;
    let info = userinfo(&p, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(
        user_claims_of(&info),
        json!({ "given_name": "Ann", "email": p.email, "email_verified": false }),
        "{info}"
    );
    // And without the claims parameter, scope `openid` gives no user claim at all.
    let b = Browser::new(&p);
    let (verifier, challenge) = pkce();
    let step = b.sign_in_through(&authorize_url(&p, &challenge, &[("scope", "openid")]), &p.email, PASSWORD).await;
    let (_, plain) = p.redeem(&step.code().unwrap(), &verifier).await;
    assert_eq!(user_claims_of(&userinfo(&p, plain["access_token"].as_str().unwrap()).await), json!({}));
}

/// Names that are no user claim of ours (another vocabulary's, a URI, one we do not keep such
/// as `phone_number`, even essential, or `sub`/`acr`, which are the token's own) are ignored:
/// the request goes through, only the known names are kept and answered.
#[tokio::test]
async fn unknown_claim_names_are_ignored() {
    let p = Provider::start().await;
    ann_has_a_profile(&p).await;
    let long = "x".repeat(200);
    let mut asked = json!({
        "id_token": {
            "phone_number": { "essential": true },
            "http://example.info/claims/groups": null,
            "nickname": null,
            "Name": null,
            "acr": null,
            "name": null,
        },
        "userinfo": { "address": null, "picture": { "essential": true }, "auth_time": null },
    });
    asked["id_token"][long.as_str()] = json!({ "essential": true, "purpose": "made up" });
    let asked = asked.to_string();
    let tokens = sign_in(&p, "openid", &asked).await;
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(user_claims_of(&id), json!({ "name": "Ann Lee" }), "{id}");
    for name in ["phone_number", "nickname", "Name", long.as_str()] {
        assert!(id.get(name).is_none(), "{name} in {id}");
    }
    let info = userinfo(&p, tokens["access_token"].as_str().unwrap()).await;
    let mut keys: Vec<&str> = info.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["roles", "sub", "tenant", "tid"], "{info}");
    for (table, id_token, userinfo) in stored_names(&p).await {
        assert_eq!((id_token, userinfo), (vec!["name".to_owned()], vec![]), "{table}");
    }
}

/// The result of an authorization whose first step ends at the redirect URI: (error, code).
async fn refused_at_once(p: &Provider, extra: &[(&str, &str)]) -> (Option<String>, Option<String>) {
    let (_, challenge) = pkce();
    let step = Browser::new(p).open(&authorize_url(p, &challenge, extra)).await;
    let url = step.left();
    assert_eq!(format!("{}://{}{}", url.scheme(), url.host_str().unwrap(), url.path()), REDIRECT);
    assert_eq!(step.param("state").as_deref(), Some("st-123"));
    (step.param("error"), step.code())
}

/// A member naming 41 claims is `invalid_request` at the redirect URI, before any sign-in
/// (with and without `prompt=none`, in either member), and nothing is stored; 40 is allowed.
#[tokio::test]
async fn more_than_forty_names_are_refused() {
    let p = Provider::start().await;
    let member = |n: usize| -> serde_json::Map<String, Value> {
        (0..n).map(|i| (format!("claim_{i}"), Value::Null)).chain([("email".to_owned(), Value::Null)]).collect()
    };
    // 40 names and `email`: 41.
    for location in ["id_token", "userinfo"] {
        let too_many = json!({ location: member(40) }).to_string();
        for extra in [vec![("claims", too_many.as_str())], vec![("claims", too_many.as_str()), ("prompt", "none")]] {
            let (error, code) = refused_at_once(&p, &extra).await;
            assert_eq!((error.as_deref(), code), (Some("invalid_request"), None), "{location} {extra:?}");
        }
    }
    let mut conn = p.t.owner().await;
    let codes: i64 = sqlx::query_scalar("SELECT count(*) FROM authorization_codes").fetch_one(&mut conn).await.unwrap();
    assert_eq!(codes, 0);

    // 39 names and `email` in each member: 40, allowed; the one we know is kept.
    let enough = json!({ "id_token": member(39), "userinfo": member(39) }).to_string();
    let tokens = sign_in(&p, "openid", &enough).await;
    assert_eq!(user_claims_of(&claims(tokens["id_token"].as_str().unwrap())), json!({ "email": p.email }));
    let info = userinfo(&p, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(user_claims_of(&info), json!({ "email": p.email }));
}

/// Migration 0016's checks hold the bound against any writer: more than 40 names, an empty or
/// over-long name, one outside `[A-Za-z0-9_.:-]` or a NULL element is refused by the database.
/// UserInfo's lookup of a token's family is the tenant's own: another tenant's transaction
/// finds no names for the same `jti`.
#[tokio::test]
async fn the_database_bounds_the_lists_and_keeps_them_to_the_tenant() {
    let p = Provider::start().await;
    let acme = tenant_id(&p, "acme").await;
    let ann = user_id(&p, &p.email).await;
    let grant = CodeGrant {
        client_id: p.client_id.clone(),
        user_id: ann,
        redirect_uri: REDIRECT.into(),
        scope: "openid".into(),
        nonce: None,
        code_challenge: None,
        auth_time: chrono::Utc::now(),
        amr: vec!["pwd".into()],
        acr: "a".into(),
        sid: "s".into(),
        security_stamp: None,
        resources: Vec::new(),
        dpop_jkt: None,
    };
    let later = chrono::Utc::now() + chrono::Duration::minutes(1);
    let forty_one: Vec<String> = (0..41).map(|i| format!("c{i}")).collect();
    let bad = [
        forty_one,
        vec![String::new()],
        vec!["x".repeat(65)],
        vec!["given name".into()],
        vec!["http://example.info/claims/groups".into()],
        vec!["email".into(), "naïve".into()],
    ];
    for names in &bad {
        for claims in [
            RequestedClaims { id_token_claims: names.clone(), userinfo_claims: vec![] },
            RequestedClaims { id_token_claims: vec![], userinfo_claims: names.clone() },
        ] {
            let mut tx = p.t.db.tenant(acme).await.unwrap();
            let hash = laventecare_auth::secrets::random_bytes::<32>();
            let refused = db::authorization_codes::insert_with_claims(&mut tx, &hash, &grant, &claims, later).await;
            assert!(refused.is_err(), "stored {claims:?}");
        }
    }
    let mut conn = p.t.owner().await;
    let refused = sqlx::query(
        "INSERT INTO token_families (tenant_id, family_id, client_id, scope, expires_at, userinfo_claims) \
         VALUES ($1, $2, 'c', 'openid', now(), ARRAY['email', NULL])",
    )
    .bind(acme)
    .bind(Uuid::now_v7())
    .execute(&mut conn)
    .await;
    assert!(refused.is_err(), "a NULL name");
    let forty: Vec<String> = (0..40).map(|i| format!("urn:x.y_{i}-z")).collect();
    let mut tx = p.t.db.tenant(acme).await.unwrap();
    let allowed = RequestedClaims { id_token_claims: forty.clone(), userinfo_claims: vec!["a".repeat(64)] };
    let hash = laventecare_auth::secrets::random_bytes::<32>();
    db::authorization_codes::insert_with_claims(&mut tx, &hash, &grant, &allowed, later).await.unwrap();
    tx.commit().await.unwrap();

    // A token's family, read from its own tenant and from another.
    ann_has_a_profile(&p).await;
    let tokens = sign_in(&p, "openid", r#"{"userinfo":{"name":null}}"#).await;
    let jti: Uuid = claims(tokens["access_token"].as_str().unwrap())["jti"].as_str().unwrap().parse().unwrap();
    let mut tx = p.t.db.tenant(acme).await.unwrap();
    assert_eq!(db::access_tokens::userinfo_claims(&mut tx, jti).await.unwrap(), ["name"]);
    tx.commit().await.unwrap();
    let globex = p.t.tenant("globex").await;
    let mut tx = p.t.db.tenant(globex).await.unwrap();
    assert!(db::access_tokens::userinfo_claims(&mut tx, jti).await.unwrap().is_empty());
    tx.commit().await.unwrap();
}

/// A claim asked for by name needs the consent its scope would: after ann allowed `openid`
/// alone, a request for `openid` that names `email` is shown the consent page again, which
/// says the email address will be shared; allowed, it is remembered with `email`. A client not
/// registered for a claim's scope does not get it by name either.
#[tokio::test]
async fn claims_by_name_need_the_consent_of_their_scope() {
    let p = Provider::start().await;
    let b = Browser::new(&p);
    let (_, challenge) = pkce();
    let first = b.sign_in_through(&authorize_url(&p, &challenge, &[("scope", "openid")]), &p.email, PASSWORD).await;
    assert!(first.code().is_some(), "{first:?}");
    let again = b.open(&authorize_url(&p, &challenge, &[("scope", "openid")])).await;
    assert!(again.code().is_some(), "openid alone is remembered");

    let named = authorize_url(&p, &challenge, &[("scope", "openid"), ("claims", r#"{"id_token":{"email":null}}"#)]);
    let asked = b.open(&named).await;
    let html = asked.html();
    assert!(html.contains("action=\"/consent\""), "the consent page again: {html}");
    assert!(html.contains("See your email address"), "{html}");
    assert!(!html.contains("See your name"), "{html}");
    let allowed = b.consent(&asked, true).await;
    assert!(allowed.code().is_some(), "{allowed:?}");
    let ann = user_id(&p, &p.email).await;
    let mut tx = p.t.db.tenant(tenant_id(&p, "acme").await).await.unwrap();
    let granted = db::consents::granted(&mut tx, ann, &p.client_id).await.unwrap();
    tx.commit().await.unwrap();
    assert!(granted.contains(&"email".to_owned()), "{granted:?}");
    assert!(b.open(&named).await.code().is_some(), "now remembered");

    // A client registered without `email` gets no email by name.
    let mut conn = p.t.owner().await;
    sqlx::query("UPDATE clients SET scopes = '{openid,profile}' WHERE client_id = $1")
        .bind(&p.client_id)
        .execute(&mut conn)
        .await
        .unwrap();
    let (verifier, challenge) = pkce();
    let url = authorize_url(&p, &challenge, &[("scope", "openid"), ("claims", r#"{"id_token":{"email":null}}"#)]);
    let step = b.open(&url).await;
    let (status, tokens) = p.redeem(&step.code().unwrap(), &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(claims(tokens["id_token"].as_str().unwrap()).get("email").is_none());
}

/// `"sub": {"value": …}` in the ID token member (OIDC Core §5.5.1): a positive answer only for
/// that user. The signed-in user's own sub passes silently; another's needs a sign-in as that
/// user (`prompt=none`: `login_required`); a value that is no subject of ours, or that
/// disagrees with `id_token_hint`, is `invalid_request`.
#[tokio::test]
async fn a_sub_with_a_value_must_be_the_user() {
    let p = Provider::start().await;
    let ann = user_id(&p, &p.email).await.to_string();
    let b = Browser::new(&p);
    let (verifier, challenge) = pkce();
    let first = b.sign_in_through(&authorize_url(&p, &challenge, &[]), &p.email, PASSWORD).await;
    let (_, tokens) = p.redeem(&first.code().unwrap(), &verifier).await;
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    let asking = |sub: &str| json!({ "id_token": { "sub": { "value": sub } } }).to_string();

    let (_, challenge) = pkce();
    let own = asking(&ann);
    let step = b.open(&authorize_url(&p, &challenge, &[("claims", &own), ("prompt", "none")])).await;
    assert!(step.code().is_some(), "the session's own sub: {step:?}");

    let other = asking(&Uuid::now_v7().to_string());
    let step = b.open(&authorize_url(&p, &challenge, &[("claims", &other), ("prompt", "none")])).await;
    assert_eq!(step.param("error").as_deref(), Some("login_required"));
    let step = b.open(&authorize_url(&p, &challenge, &[("claims", &other)])).await;
    assert!(step.html().contains("action=\"/login\""), "another user's sub asks for a sign-in");

    let garbage = asking("not-a-subject");
    let step = b.open(&authorize_url(&p, &challenge, &[("claims", &garbage)])).await;
    assert_eq!(step.param("error").as_deref(), Some("invalid_request"));
    let both = [("claims", other.as_str()), ("id_token_hint", id_token.as_str()), ("prompt", "none")];
    let step = b.open(&authorize_url(&p, &challenge, &both)).await;
    assert_eq!(step.param("error").as_deref(), Some("invalid_request"));
    assert!(step.param("error_description").unwrap().contains("different users"));
}
