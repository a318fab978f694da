//! The modules of the Basic OP plan (`oidcc-basic-certification-test-plan`); the Form Post OP
//! plan runs them again with `response_mode=form_post`.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use base64::Engine as _;
use serde_json::{Value, json};

use super::{AuthReq, Flow, Mode, code_flow, error_of, error_page, finish};
use crate::agent::{Agent, Step};
use crate::check::{self, Ctx, Expect, Verdict};

/// The user claims each scope stands for (OIDC Core §5.4).
const PROFILE: [&str; 14] = [
    "name",
    "family_name",
    "given_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "updated_at",
];
const EMAIL: [&str; 2] = ["email", "email_verified"];
const ADDRESS: [&str; 1] = ["address"];
const PHONE: [&str; 2] = ["phone_number", "phone_number_verified"];
/// The profile claims the provider keeps no data for; their absence is the suite's warning.
const NOT_STORED: [&str; 7] = ["middle_name", "nickname", "profile", "picture", "website", "gender", "birthdate"];

/// The errors that say "the user must be involved" (OIDC Core §3.1.2.6).
const NEEDS_USER: [&str; 4] =
    ["login_required", "interaction_required", "consent_required", "account_selection_required"];

async fn flow_with(ctx: &Ctx, mode: Mode, adjust: impl FnOnce(AuthReq) -> AuthReq) -> anyhow::Result<Flow> {
    let agent = Agent::new(ctx);
    let req = adjust(AuthReq::new(ctx, &ctx.client, mode));
    let flow = code_flow(ctx, &agent, &req, &ctx.client, &ctx.user).await?;
    ensure!(flow.claims["sub"] == ctx.user.sub.as_str(), "sub {} is not the user's id", flow.claims["sub"]);
    Ok(flow)
}

/// The userinfo answer for a flow's access token, checked against its ID token.
async fn userinfo_of(ctx: &Ctx, flow: &Flow) -> anyhow::Result<Value> {
    let info = ctx.userinfo(&flow.access_token).await?.ok()?;
    same_sub(&info.body, &flow.claims)?;
    Ok(info.body)
}

fn same_sub(info: &Value, claims: &Value) -> anyhow::Result<()> {
    ensure!(
        info["sub"].is_string() && info["sub"] == claims["sub"],
        "userinfo sub {} is not the ID token's {}",
        info["sub"],
        claims["sub"]
    );
    Ok(())
}

pub async fn server(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    let flow = flow_with(ctx, mode, |r| r).await?;
    userinfo_of(ctx, &flow).await?;
    Ok(Verdict::pass("code flow; token response, ID token and userinfo valid"))
}

pub async fn response_type_missing(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    let agent = Agent::new(ctx);
    let req = AuthReq::new(ctx, &ctx.client, mode).without("response_type");
    let step = agent.open(&req.url(ctx)?).await?;
    match &step {
        Step::Left { .. } => {
            let error = error_of(ctx, &step, &req, &["invalid_request", "unsupported_response_type"])?;
            Ok(Verdict::pass(format!("error response {error}")))
        }
        Step::Page { .. } => {
            error_page(&step)?;
            Ok(Verdict::pass("error page"))
        }
    }
}

pub async fn idtoken_signature(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    let flow = flow_with(ctx, mode, |r| r).await?;
    let header = check::part(&flow.id_token, 0)?;
    Ok(Verdict::pass(format!("signed with {}; its kid is in the JWKS", header["alg"].as_str().unwrap_or("?"))))
}

pub async fn idtoken_unsigned(ctx: &Ctx, _mode: Mode) -> anyhow::Result<Verdict> {
    let algs = ctx.discovery["id_token_signing_alg_values_supported"]
        .as_array()
        .context("no id_token_signing_alg_values_supported")?;
    ensure!(!algs.iter().any(|a| a == "none"), "the provider offers unsigned ID tokens");
    Ok(Verdict::skipped("unsigned ID tokens are not offered (no \"none\" in id_token_signing_alg_values_supported)"))
}

pub async fn userinfo_get(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    let flow = flow_with(ctx, mode, |r| r).await?;
    let res = ctx.http.get(ctx.endpoint("userinfo_endpoint")?).bearer_auth(&flow.access_token).send().await?;
    let content_type = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    ensure!(content_type.starts_with("application/json"), "userinfo is {content_type}, not JSON");
    let info = check::Answer::of(res).await?.ok()?;
    same_sub(&info.body, &flow.claims)?;
    Ok(Verdict::pass("GET with the Authorization header"))
}

pub async fn userinfo_post_header(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    let flow = flow_with(ctx, mode, |r| r).await?;
    let res = ctx.http.post(ctx.endpoint("userinfo_endpoint")?).bearer_auth(&flow.access_token).send().await?;
    let info = check::Answer::of(res).await?.ok()?;
    same_sub(&info.body, &flow.claims)?;
    Ok(Verdict::pass("POST with the Authorization header"))
}

pub async fn userinfo_post_body(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    let flow = flow_with(ctx, mode, |r| r).await?;
    let res = ctx
        .http
        .post(ctx.endpoint("userinfo_endpoint")?)
        .form(&[("access_token", flow.access_token.as_str())])
        .send()
        .await?;
    let info = check::Answer::of(res).await?.ok()?;
    same_sub(&info.body, &flow.claims)?;
    Ok(Verdict::pass("POST with the token in the form body (RFC 6750 §2.2)"))
}

pub async fn without_nonce(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    flow_with(ctx, mode, |r| r.without("nonce")).await?;
    Ok(Verdict::pass("a code flow without nonce succeeds; the ID token has none"))
}

/// A request for `scopes`; SKIPPED where discovery does not list one, as the suite does.
async fn scopes(ctx: &Ctx, mode: Mode, scopes: &[&str], claims: &[&str]) -> anyhow::Result<Verdict> {
    let supported = ctx.discovery["scopes_supported"].as_array().context("no scopes_supported")?;
    let missing: Vec<&str> = scopes.iter().copied().filter(|s| !supported.iter().any(|x| x == s)).collect();
    if !missing.is_empty() {
        return Ok(Verdict::skipped(format!(
            "scopes_supported does not list {}: the provider holds no such claims",
            missing.join(", ")
        )));
    }
    let scope = format!("openid {}", scopes.join(" "));
    let flow = flow_with(ctx, mode, |r| r.set("scope", &scope)).await?;
    let info = userinfo_of(ctx, &flow).await?;
    standard_claim_types(&info)?;
    let absent: Vec<&str> = claims.iter().copied().filter(|c| info.get(*c).is_none()).collect();
    let unexpected: Vec<&str> = absent.iter().copied().filter(|c| !NOT_STORED.contains(c)).collect();
    ensure!(unexpected.is_empty(), "userinfo lacks {} although the user has them: {info}", unexpected.join(", "));
    if absent.is_empty() {
        Ok(Verdict::pass(format!("userinfo returns {}", claims.join(", "))))
    } else {
        Ok(Verdict::warning(format!(
            "not returned: {} — the provider stores no such profile fields (the suite warns on any absent claim)",
            absent.join(", ")
        )))
    }
}

/// The JSON types of OIDC Core §5.1.
fn standard_claim_types(info: &Value) -> anyhow::Result<()> {
    for (claim, value) in info.as_object().context("userinfo is not an object")? {
        let ok = match claim.as_str() {
            "email_verified" | "phone_number_verified" => value.is_boolean(),
            "updated_at" => value.is_i64(),
            "address" => value.is_object(),
            "roles" => value.is_array(),
            _ if PROFILE.contains(&claim.as_str()) || EMAIL.contains(&claim.as_str()) || claim == "sub" => {
                value.is_string()
            }
            _ => true,
        };
        ensure!(ok, "userinfo {claim} has the wrong type: {value}");
    }
    Ok(())
}

pub async fn scope_profile(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    scopes(ctx, mode, &["profile"], &PROFILE).await
}

pub async fn scope_email(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    scopes(ctx, mode, &["email"], &EMAIL).await
}

pub async fn scope_address(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    scopes(ctx, mode, &["address"], &ADDRESS).await
}

pub async fn scope_phone(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    scopes(ctx, mode, &["phone"], &PHONE).await
}

pub async fn scope_all(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    let all: Vec<&str> = PROFILE.iter().chain(&EMAIL).chain(&ADDRESS).chain(&PHONE).copied().collect();
    scopes(ctx, mode, &["profile", "email", "address", "phone"], &all).await
}

pub async fn other_scope_order(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    let flow = flow_with(ctx, mode, |r| r.set("scope", "email openid")).await?;
    let info = userinfo_of(ctx, &flow).await?;
    ensure!(info["email"] == ctx.user.email.as_str(), "scope \"email openid\" did not give the email: {info}");
    Ok(Verdict::pass("scope \"email openid\" works as \"openid email\""))
}

pub async fn display_page(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    flow_with(ctx, mode, |r| r.set("display", "page")).await?;
    Ok(Verdict::pass("display=page"))
}

pub async fn display_popup(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    flow_with(ctx, mode, |r| r.set("display", "popup")).await?;
    Ok(Verdict::pass("display=popup is accepted (the page is shown as for page)"))
}

/// Signs in once, waits `wait`, then sends `second` in the same browser: both flows.
async fn twice(
    ctx: &Ctx,
    mode: Mode,
    wait: Duration,
    second: impl FnOnce(AuthReq, &Flow) -> AuthReq,
) -> anyhow::Result<(Flow, Flow)> {
    let agent = Agent::new(ctx);
    let first_req = AuthReq::new(ctx, &ctx.client, mode);
    let first = code_flow(ctx, &agent, &first_req, &ctx.client, &ctx.user).await?;
    tokio::time::sleep(wait).await;
    let req = second(AuthReq::new(ctx, &ctx.client, mode), &first);
    let then = code_flow(ctx, &agent, &req, &ctx.client, &ctx.user).await?;
    ensure!(then.claims["sub"] == first.claims["sub"], "the second sign-in is another sub");
    Ok((first, then))
}

fn auth_time(flow: &Flow) -> anyhow::Result<i64> {
    flow.claims["auth_time"].as_i64().context("the ID token has no auth_time")
}

pub async fn prompt_login(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    let (first, then) = twice(ctx, mode, Duration::from_millis(1100), |r, _| r.set("prompt", "login")).await?;
    ensure!(then.seen.login, "prompt=login did not ask the user to sign in again");
    let (t1, t2) = (auth_time(&first)?, auth_time(&then)?);
    ensure!(t2 > t1, "auth_time did not move on with the new sign-in ({t1} → {t2})");
    Ok(Verdict::pass("the user signed in again; auth_time moved on"))
}

pub async fn prompt_none_not_logged_in(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    let agent = Agent::new(ctx);
    let req = AuthReq::new(ctx, &ctx.client, mode).set("prompt", "none");
    let step = agent.open(&req.url(ctx)?).await?;
    let error = error_of(ctx, &step, &req, &NEEDS_USER)?;
    Ok(Verdict::pass(format!("error {error}")))
}

pub async fn prompt_none_logged_in(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    let (_, then) = twice(ctx, mode, Duration::ZERO, |r, _| r.set("prompt", "none")).await?;
    ensure!(!then.seen.login && !then.seen.consent, "prompt=none showed a page");
    Ok(Verdict::pass("a code without any page"))
}

pub async fn max_age_1(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    let (first, then) = twice(ctx, mode, Duration::from_millis(2100), |r, _| r.set("max_age", "1")).await?;
    ensure!(then.seen.login, "max_age=1 after 2 s did not ask the user to sign in again");
    let (t1, t2) = (auth_time(&first)?, auth_time(&then)?);
    ensure!(t2 > t1, "auth_time did not move on ({t1} → {t2})");
    Ok(Verdict::pass("the user signed in again; auth_time moved on"))
}

pub async fn max_age_10000(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    let (first, then) = twice(ctx, mode, Duration::ZERO, |r, _| r.set("max_age", "10000")).await?;
    ensure!(!then.seen.login, "max_age=10000 asked the user to sign in again");
    ensure!(auth_time(&then)? == auth_time(&first)?, "auth_time changed without a new sign-in");
    Ok(Verdict::pass("no new sign-in; the same auth_time"))
}

pub async fn unknown_parameter(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    flow_with(ctx, mode, |r| r.set("extra", "foobar")).await?;
    Ok(Verdict::pass("an unknown parameter is ignored"))
}

pub async fn id_token_hint(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    let (_, then) =
        twice(ctx, mode, Duration::ZERO, |r, first| r.set("prompt", "none").set("id_token_hint", &first.id_token))
            .await?;
    ensure!(!then.seen.login, "prompt=none with id_token_hint showed the login page");
    Ok(Verdict::pass("prompt=none with the previous ID token as hint: the same user, no page"))
}

pub async fn login_hint(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    let agent = Agent::new(ctx);
    let req = AuthReq::new(ctx, &ctx.client, mode).set("login_hint", &ctx.user.email);
    let page = agent.open(&req.url(ctx)?).await?;
    ensure!(page.is_page("action=\"/login\""), "no login page: {}", page.describe());
    let prefilled = page.html().contains(&format!("value=\"{}\"", ctx.user.email));
    let (step, seen) = agent.through(page, &ctx.user).await?;
    finish(ctx, step, seen, &req, &ctx.client).await?;
    ensure!(prefilled, "the login page does not fill in the hinted email");
    Ok(Verdict::pass("the login page fills in the hinted email"))
}

pub async fn ui_locales(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    flow_with(ctx, mode, |r| r.set("ui_locales", "se")).await?;
    Ok(Verdict::pass("ui_locales=se is accepted (pages fall back to English)"))
}

pub async fn claims_locales(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    flow_with(ctx, mode, |r| r.set("claims_locales", "se")).await?;
    Ok(Verdict::pass("claims_locales=se is accepted"))
}

pub async fn acr_values(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    let supported: Vec<String> = ctx.discovery["acr_values_supported"]
        .as_array()
        .context("no acr_values_supported")?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    // The suite's default request, values the provider does not know: not an error.
    flow_with(ctx, mode, |r| r.set("acr_values", "1 2")).await?;
    // Every supported value, password first: a user without a second factor meets it with a
    // password (OIDC Core §3.1.2.1: a list in order of preference, not a demand).
    let list = supported.join(" ");
    let flow = flow_with(ctx, mode, |r| r.set("acr_values", &list)).await?;
    let acr = flow.claims["acr"].as_str().context("no acr in the ID token")?;
    ensure!(supported.iter().any(|s| s == acr), "acr {acr} is not one of the requested {list}");
    Ok(Verdict::pass(format!("\"1 2\" is accepted; \"{list}\" is met by a password sign-in with acr {acr}")))
}

/// Redeems a flow's code a second time, `after` the first.
async fn reuse(ctx: &Ctx, mode: Mode, after: Duration) -> anyhow::Result<(Flow, check::Answer)> {
    let agent = Agent::new(ctx);
    let req = AuthReq::new(ctx, &ctx.client, mode);
    let step = agent.open(&req.url(ctx)?).await?;
    let (step, seen) = agent.through(step, &ctx.user).await?;
    let code = super::code_of(ctx, &step, &req)?;
    let flow = finish(ctx, step, seen, &req, &ctx.client).await?;
    tokio::time::sleep(after).await;
    let again = ctx.redeem(&ctx.client, &code, &ctx.callback, None).await?;
    Ok((flow, again))
}

/// The checks of an error of the token endpoint (RFC 6749 §5.2).
fn token_error(answer: &check::Answer, errors: &[&str]) -> anyhow::Result<()> {
    answer.error(400, errors)?;
    let content_type = answer.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    ensure!(content_type.starts_with("application/json"), "the error is {content_type}, not JSON");
    if let Some(desc) = answer.body.get("error_description") {
        let desc = desc.as_str().context("error_description is not a string")?;
        ensure!(
            desc.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e)),
            "error_description has characters RFC 6749 §5.2 does not allow: {desc:?}"
        );
    }
    Ok(())
}

pub async fn codereuse(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    let (_, again) = reuse(ctx, mode, Duration::ZERO).await?;
    if again.status == 200 {
        return Ok(Verdict::warning("the code was accepted a second time"));
    }
    token_error(&again, &["invalid_grant"])?;
    Ok(Verdict::pass("the second use is invalid_grant"))
}

pub async fn codereuse_30seconds(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    let (flow, again) = reuse(ctx, mode, Duration::from_secs(30)).await?;
    token_error(&again, &["invalid_grant"])?;
    let info = ctx.userinfo(&flow.access_token).await?;
    if info.status == 200 {
        return Ok(Verdict::warning(
            "invalid_grant, but the first access token still works (RFC 6749 §4.1.2: SHOULD be revoked)",
        ));
    }
    ensure!(info.status == 401, "userinfo with the revoked token answered {}", info.status);
    Ok(Verdict::pass("invalid_grant after 30 s; the tokens of the first use are revoked"))
}

pub async fn registered_redirect_uri(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    let agent = Agent::new(ctx);
    let req =
        AuthReq::new(ctx, &ctx.client, mode).set("redirect_uri", &format!("{}/not-registered", crate::server::RP));
    error_page(&agent.open(&req.url(ctx)?).await?)?;
    Ok(Verdict::pass("an error page, no redirect"))
}

pub async fn redirect_uri_missing(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    let agent = Agent::new(ctx);
    let req = AuthReq::new(ctx, &ctx.client, mode).without("redirect_uri");
    error_page(&agent.open(&req.url(ctx)?).await?)?;
    Ok(Verdict::pass("an error page (redirect_uri is required in OpenID Connect)"))
}

pub async fn redirect_uri_query_added(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    let agent = Agent::new(ctx);
    let req = AuthReq::new(ctx, &ctx.client, mode).set("redirect_uri", &format!("{}?foo=bar", ctx.callback));
    error_page(&agent.open(&req.url(ctx)?).await?)?;
    Ok(Verdict::pass("an error page: the registered URI must match exactly"))
}

pub async fn post_request(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    let agent = Agent::new(ctx);
    let req = AuthReq::new(ctx, &ctx.client, mode);
    let step = agent.post(&ctx.endpoint("authorization_endpoint")?, &req.pairs()).await?;
    let (step, seen) = agent.through(step, &ctx.user).await?;
    finish(ctx, step, seen, &req, &ctx.client).await?;
    Ok(Verdict::pass("the authorization request by POST"))
}

pub async fn client_secret_post(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    let agent = Agent::new(ctx);
    let req = AuthReq::new(ctx, &ctx.client_post, mode);
    let flow = code_flow(ctx, &agent, &req, &ctx.client_post, &ctx.user).await?;
    userinfo_of(ctx, &flow).await?;
    // The other method is refused: the client registered one.
    let code_req = AuthReq::new(ctx, &ctx.client_post, mode);
    let step = agent.open(&code_req.url(ctx)?).await?;
    let (step, _) = agent.through(step, &ctx.user).await?;
    let code = super::code_of(ctx, &step, &code_req)?;
    let basic = check::Client {
        id: ctx.client_post.id.clone(),
        secret: ctx.client_post.secret.clone(),
        method: "client_secret_basic".into(),
    };
    let wrong = ctx.redeem(&basic, &code, &ctx.callback, None).await?;
    ensure!(
        wrong.status == 401 || wrong.status == 400,
        "client_secret_basic for a client_secret_post client answered {}",
        wrong.status
    );
    Ok(Verdict::pass("client_secret_post; the unregistered method is refused"))
}

pub async fn request_uri_unsigned(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    ensure!(
        ctx.discovery["request_uri_parameter_supported"] == false,
        "request_uri is advertised: this module does not test it"
    );
    let agent = Agent::new(ctx);
    let req = AuthReq::new(ctx, &ctx.client, mode).set("request_uri", &format!("{}/request.jwt", crate::server::RP));
    let step = agent.open(&req.url(ctx)?).await?;
    error_of(ctx, &step, &req, &["request_uri_not_supported"])?;
    Ok(Verdict::pass("rejected as unsupported (request_uri_not_supported), as discovery says"))
}

pub async fn unsigned_request_object(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    ensure!(
        ctx.discovery["request_parameter_supported"] == false,
        "request objects are advertised: this module does not test them"
    );
    let agent = Agent::new(ctx);
    let base = AuthReq::new(ctx, &ctx.client, mode);
    let claims: serde_json::Map<String, Value> =
        base.pairs().into_iter().map(|(k, v)| (k.to_owned(), json!(v))).collect();
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let object = format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&Value::Object(claims)));
    let req = base.set("request", &object);
    let step = agent.open(&req.url(ctx)?).await?;
    error_of(ctx, &step, &req, &["request_not_supported"])?;
    Ok(Verdict::pass("rejected as unsupported (request_not_supported), as discovery says"))
}

pub async fn request_object_with_redirect_uri(ctx: &Ctx, _mode: Mode) -> anyhow::Result<Verdict> {
    ensure!(
        ctx.discovery["request_parameter_supported"] == false,
        "request objects are advertised: this module does not test them"
    );
    Ok(Verdict::skipped("request objects are rejected as unsupported, so the suite skips this module"))
}

pub async fn claims_essential(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    let claims = json!({"userinfo": {"name": {"essential": true}}}).to_string();
    let flow = flow_with(ctx, mode, |r| r.set("claims", &claims)).await?;
    let info = userinfo_of(ctx, &flow).await?;
    ensure!(info["name"] == "Alice Example", "userinfo has no name: {info}");
    Ok(Verdict::pass("the essential name is in userinfo"))
}

pub async fn refresh_token(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    let offline = |r: AuthReq| r.set("scope", "openid offline_access").set("prompt", "consent");
    let first = flow_with(ctx, mode, offline).await?;
    let refresh = first.tokens.str("refresh_token").context("no refresh_token with offline_access")?;
    ensure!(
        refresh.bytes().all(|b| (0x20..=0x7e).contains(&b)),
        "the refresh token has characters outside VSCHAR (RFC 6749 A.17)"
    );
    let renewed =
        ctx.token(&ctx.client, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await?.ok()?;
    check::token_response(&renewed, false)?;
    if let Some(id) = renewed.body["id_token"].as_str() {
        // OIDC Core §12.2: the same iss, sub, aud and auth_time; a new iat; no nonce.
        let expect = Expect { client_id: &ctx.client.id, nonce: None, access_token: None, auth_time_required: false };
        let claims = check::id_token(ctx, id, expect).await?;
        for claim in ["iss", "sub", "aud", "auth_time"] {
            ensure!(claims[claim] == first.claims[claim], "the refreshed ID token changed {claim}");
        }
    }
    let access = renewed.str("access_token")?;
    ensure!(ctx.userinfo(&access).await?.status == 200, "the refreshed access token does not work at userinfo");
    // A refresh token is bound to its client: client 2's token does not work for client 1.
    let agent = Agent::new(ctx);
    let req = offline(AuthReq::new(ctx, &ctx.client2, mode));
    let other = code_flow(ctx, &agent, &req, &ctx.client2, &ctx.user).await?;
    let theirs = other.tokens.str("refresh_token")?;
    let stolen = ctx.token(&ctx.client, &[("grant_type", "refresh_token"), ("refresh_token", &theirs)]).await?;
    token_error(&stolen, &["invalid_grant"])?;
    Ok(Verdict::pass("refresh works, keeps the ID token's claims, and is bound to its client"))
}

pub async fn valid_pkce(ctx: &Ctx, mode: Mode) -> anyhow::Result<Verdict> {
    flow_with(ctx, mode, |r| r.with_pkce()).await?;
    Ok(Verdict::pass("a confidential client's request with PKCE (S256) succeeds"))
}
