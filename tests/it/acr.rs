//! What a relying party may ask of the sign-in's `acr`, through the real router: `acr_values`
//! as a preference list (OIDC Core §3.1.2.1), the `claims` parameter's `acr` (§5.5.1.1), and
//! the `claims` parameter refused when malformed or oversized.

use laventecare_auth::session::{ACR_MFA, ACR_PASSWORD};
use serde_json::{Value, json};

use crate::flow::{Browser, PASSWORD, Provider, REDIRECT, Step, authorize_url, claims, pkce, totp_code};
use crate::mfa::enrolled;

/// How a sign-in went: whether the second-factor or the enrolment page was shown, and where it
/// ended.
struct Run {
    asked_code: bool,
    enrolment: bool,
    end: Step,
    verifier: String,
}

/// Runs an authorization with `extra` parameters through login (and the second factor with
/// `code` when asked) and consent. It stops at the enrolment page.
async fn run(p: &Provider, b: &Browser, extra: &[(&str, &str)], code: Option<&str>) -> Run {
    let (verifier, challenge) = pkce();
    let mut step = b.open(&authorize_url(p, &challenge, extra)).await;
    let on = |step: &Step, form: &str| step.html_opt().is_some_and(|h| h.contains(&format!("action=\"{form}\"")));
    if on(&step, "/login") {
        step = b.login(&step, &p.email, PASSWORD).await;
    }
    let asked_code = on(&step, "/login/mfa");
    if asked_code && let Some(code) = code {
        step = b.second_factor(&step, code).await;
        if step.html_opt().is_some_and(|h| h.contains("id=\"continue\"")) {
            step = b.continue_on(&step).await;
        }
    }
    let enrolment = on(&step, "/mfa/enrol");
    if on(&step, "/consent") {
        step = b.consent(&step, true).await;
    }
    Run { asked_code, enrolment, end: step, verifier }
}

/// The `acr` of the ID token and of the access token a finished run's code redeems for.
async fn acr_issued(p: &Provider, run: &Run) -> (Value, Value) {
    let code = run.end.code().unwrap_or_else(|| panic!("no code: {:?}", run.end));
    let (status, body) = p.redeem(&code, &run.verifier).await;
    assert_eq!(status, 200, "{body}");
    (
        claims(body["id_token"].as_str().unwrap())["acr"].clone(),
        claims(body["access_token"].as_str().unwrap())["acr"].clone(),
    )
}

fn both_orders() -> [String; 2] {
    [format!("{ACR_PASSWORD} {ACR_MFA}"), format!("{ACR_MFA} {ACR_PASSWORD}")]
}

fn acr_claim(request: Value) -> String {
    json!({ "id_token": { "acr": request } }).to_string()
}

/// An error answered at the redirect URI, with the request's `state` and our `iss`.
fn redirect_error(p: &Provider, step: &Step) -> (String, String) {
    let url = step.left();
    assert_eq!(format!("{}://{}{}", url.scheme(), url.host_str().unwrap(), url.path()), REDIRECT);
    assert_eq!(step.param("state").as_deref(), Some("st-123"));
    assert_eq!(step.param("iss").as_deref(), Some(p.issuer.as_str()));
    assert_eq!(step.param("code"), None);
    (step.param("error").unwrap(), step.param("error_description").unwrap_or_default())
}

/// A user without a second factor, asked for `pwd mfa` or `mfa pwd`: a list is a preference,
/// so the password is enough, no enrolment is forced, and both tokens say `pwd`.
#[tokio::test]
async fn a_list_of_values_is_met_by_the_password_when_the_user_has_no_second_factor() {
    let p = Provider::start().await;
    for values in both_orders() {
        let r = run(&p, &Browser::new(&p), &[("acr_values", &values)], None).await;
        assert!(!r.enrolment && !r.asked_code, "{values}: no second factor forced: {:?}", r.end);
        assert_eq!(acr_issued(&p, &r).await, (json!(ACR_PASSWORD), json!(ACR_PASSWORD)), "{values}");
    }
}

/// A user with TOTP: `mfa pwd` asks for the code and the tokens say `mfa`; `pwd mfa` asks for
/// it too, because a user who has a second factor always passes it (README, "When a second
/// factor is needed"), and the tokens say what was achieved.
#[tokio::test]
async fn a_user_with_a_second_factor_passes_it_whatever_the_order() {
    let p = Provider::start().await;
    let (_, secret, backup) = enrolled(&p, &p.email, PASSWORD).await;
    let [pwd_first, mfa_first] = both_orders();

    let r = run(&p, &Browser::new(&p), &[("acr_values", &mfa_first)], Some(&totp_code(&secret, 1))).await;
    assert!(r.asked_code, "the preference for MFA is met: {:?}", r.end);
    assert_eq!(acr_issued(&p, &r).await, (json!(ACR_MFA), json!(ACR_MFA)));

    // The TOTP step is used up for this window; a backup code is the second factor here.
    let r = run(&p, &Browser::new(&p), &[("acr_values", &pwd_first)], Some(&backup[0])).await;
    assert!(r.asked_code, "a password never replaces a factor the user has: {:?}", r.end);
    assert_eq!(acr_issued(&p, &r).await, (json!(ACR_MFA), json!(ACR_MFA)));

    // An essential request for the password acr alone cannot be met by such a user: a failed
    // authentication (OIDC Core §5.5.1.1), not a token that says something else.
    let only_pwd = acr_claim(json!({ "essential": true, "value": ACR_PASSWORD }));
    let b = Browser::new(&p);
    let r = run(&p, &b, &[("claims", &only_pwd)], Some(&backup[1])).await;
    assert!(r.asked_code);
    let (error, _) = redirect_error(&p, &r.end);
    assert_eq!(error, "unmet_authentication_requirements");
    // The session is signed in with the second factor; asking again fails at once.
    let again = run(&p, &b, &[("claims", &only_pwd)], None).await;
    assert_eq!(redirect_error(&p, &again.end).0, "unmet_authentication_requirements");
    // Each refusal is audited: who, through which client, what was achieved and demanded.
    let mut owner = p.t.owner().await;
    let rows: Vec<(String, String, Value)> = sqlx::query_as(
        "SELECT actor_kind, outcome, details FROM audit_events WHERE action = 'authorization.unmet_acr' ORDER BY seq",
    )
    .fetch_all(&mut owner)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (actor, outcome, details) in rows {
        assert_eq!((actor.as_str(), outcome.as_str()), ("user", "failure"));
        assert_eq!(details, json!({ "acr": ACR_MFA, "essential": [ACR_PASSWORD] }));
    }
}

/// `acr_values` naming MFA alone (or with values we do not issue) demands it: a user without
/// one enrols first, and a session signed in with the password steps up (`prompt=none`:
/// `interaction_required`).
#[tokio::test]
async fn mfa_named_alone_is_demanded() {
    let p = Provider::start().await;
    let with_unknown = format!("urn:example:gold {ACR_MFA}");
    for values in [ACR_MFA, with_unknown.as_str()] {
        let r = run(&p, &Browser::new(&p), &[("acr_values", values)], None).await;
        assert!(r.enrolment, "{values}: enrolment first: {:?}", r.end);
    }
    let b = Browser::new(&p);
    let signed_in = run(&p, &b, &[], None).await;
    assert_eq!(acr_issued(&p, &signed_in).await.0, json!(ACR_PASSWORD));
    let (_, challenge) = pkce();
    let silent = b.open(&authorize_url(&p, &challenge, &[("acr_values", ACR_MFA), ("prompt", "none")])).await;
    assert_eq!(redirect_error(&p, &silent).0, "interaction_required");
    let step_up = run(&p, &b, &[("acr_values", ACR_MFA)], None).await;
    assert!(step_up.enrolment, "the password session steps up: {:?}", step_up.end);
}

/// The `claims` parameter's `acr`: essential with the MFA value alone demands it; essential
/// allowing the password too, or voluntary, is only a preference; essential with values we
/// never issue is `unmet_authentication_requirements` at the redirect URI.
#[tokio::test]
async fn an_essential_acr_claim_demands_and_a_voluntary_one_prefers() {
    let p = Provider::start().await;
    let essential = acr_claim(json!({ "essential": true, "value": ACR_MFA }));
    let r = run(&p, &Browser::new(&p), &[("claims", &essential)], None).await;
    assert!(r.enrolment, "an essential MFA acr is demanded: {:?}", r.end);
    // Also over a voluntary acr_values naming the password.
    let r = run(&p, &Browser::new(&p), &[("claims", &essential), ("acr_values", ACR_PASSWORD)], None).await;
    assert!(r.enrolment, "{:?}", r.end);

    for preference in [
        acr_claim(json!({ "essential": false, "value": ACR_MFA })),
        acr_claim(json!({ "values": [ACR_MFA] })),
        acr_claim(json!({ "essential": true, "values": [ACR_MFA, ACR_PASSWORD] })),
        acr_claim(json!({ "essential": true })),
        acr_claim(Value::Null),
    ] {
        let r = run(&p, &Browser::new(&p), &[("claims", &preference)], None).await;
        assert!(!r.enrolment && !r.asked_code, "{preference}: {:?}", r.end);
        assert_eq!(acr_issued(&p, &r).await, (json!(ACR_PASSWORD), json!(ACR_PASSWORD)), "{preference}");
    }

    let foreign = acr_claim(json!({ "essential": true, "values": ["urn:example:gold", "urn:example:silver"] }));
    let step = Browser::new(&p).open(&authorize_url(&p, &pkce().1, &[("claims", &foreign)])).await;
    assert_eq!(redirect_error(&p, &step).0, "unmet_authentication_requirements");
}

/// A malformed or oversized `claims` parameter is `invalid_request` at the redirect URI;
/// `acr_values` we do not issue are ignored; discovery says the parameter is supported.
#[tokio::test]
async fn malformed_claims_are_refused_and_unknown_acr_values_ignored() {
    let p = Provider::start().await;
    let oversized = acr_claim(json!({ "essential": false, "value": "x".repeat(4100) }));
    for bad in [
        "{not json",
        "[]",
        "null",
        r#"{"id_token":"acr"}"#,
        r#"{"id_token":{"acr":{"essential":"yes"}}}"#,
        r#"{"id_token":{"acr":null,"acr":null}}"#,
        r#"{"id_token":{"acr":{"essential":true,"value":5}}}"#,
        oversized.as_str(),
    ] {
        let step = Browser::new(&p).open(&authorize_url(&p, &pkce().1, &[("claims", bad)])).await;
        let (error, description) = redirect_error(&p, &step);
        assert_eq!(error, "invalid_request", "{bad}");
        assert!(description.contains("claims") || description.contains("acr"), "{bad}: {description}");
    }

    for values in ["urn:example:gold", "urn:example:gold urn:example:silver", "urn:laventecare:acr:MFA"] {
        let r = run(&p, &Browser::new(&p), &[("acr_values", values)], None).await;
        assert!(!r.enrolment && !r.asked_code, "{values}: {:?}", r.end);
        assert_eq!(acr_issued(&p, &r).await.0, json!(ACR_PASSWORD), "{values}");
    }

    let meta: Value =
        p.http().get(p.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(meta["claims_parameter_supported"], true);
    assert_eq!(meta["acr_values_supported"], json!([ACR_PASSWORD, ACR_MFA]));
    assert!(meta["claims_supported"].as_array().unwrap().contains(&json!("acr")));
}
