//! The plans and their modules, and what the modules share: the authorization request, the
//! code flow, and the checks of an authorization response.

mod basic;
mod beyond;
mod config;
mod logout;

use anyhow::{Context as _, bail, ensure};
use futures::future::LocalBoxFuture;
use serde_json::Value;
use url::Url;

use crate::agent::{Agent, Seen, Step, Via};
use crate::check::{self, Answer, Client, Ctx, Expect, User, Verdict};

/// The response mode a module runs with: the Basic OP plan uses the default (query), the
/// Form Post OP plan runs the same modules with `response_mode=form_post`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Query,
    FormPost,
}

pub type Run = for<'a> fn(&'a Ctx, Mode) -> LocalBoxFuture<'a, anyhow::Result<Verdict>>;

pub struct Module {
    pub plan: &'static str,
    pub name: &'static str,
    pub mode: Mode,
    pub run: Run,
}

macro_rules! module {
    ($plan:expr, $mode:expr, $name:literal, $f:path) => {
        Module { plan: $plan, name: $name, mode: $mode, run: |ctx, mode| Box::pin($f(ctx, mode)) }
    };
}

const BASIC: &str = "Basic OP";
const FORM_POST: &str = "Form Post OP";
const CONFIG: &str = "Config OP";
const LOGOUT: &str = "RP-initiated logout OP";
const BEYOND: &str = "beyond the OP plans";

/// The modules of the Basic OP plan (`oidcc-basic-certification-test-plan`), run with `mode`.
fn basic_plan(plan: &'static str, mode: Mode) -> Vec<Module> {
    vec![
        module!(plan, mode, "oidcc-server", basic::server),
        module!(plan, mode, "oidcc-response-type-missing", basic::response_type_missing),
        module!(plan, mode, "oidcc-idtoken-signature", basic::idtoken_signature),
        module!(plan, mode, "oidcc-idtoken-unsigned", basic::idtoken_unsigned),
        module!(plan, mode, "oidcc-userinfo-get", basic::userinfo_get),
        module!(plan, mode, "oidcc-userinfo-post-header", basic::userinfo_post_header),
        module!(plan, mode, "oidcc-userinfo-post-body", basic::userinfo_post_body),
        module!(plan, mode, "oidcc-ensure-request-without-nonce-succeeds-for-code-flow", basic::without_nonce),
        module!(plan, mode, "oidcc-scope-profile", basic::scope_profile),
        module!(plan, mode, "oidcc-scope-email", basic::scope_email),
        module!(plan, mode, "oidcc-scope-address", basic::scope_address),
        module!(plan, mode, "oidcc-scope-phone", basic::scope_phone),
        module!(plan, mode, "oidcc-scope-all", basic::scope_all),
        module!(plan, mode, "oidcc-ensure-other-scope-order-succeeds", basic::other_scope_order),
        module!(plan, mode, "oidcc-display-page", basic::display_page),
        module!(plan, mode, "oidcc-display-popup", basic::display_popup),
        module!(plan, mode, "oidcc-prompt-login", basic::prompt_login),
        module!(plan, mode, "oidcc-prompt-none-not-logged-in", basic::prompt_none_not_logged_in),
        module!(plan, mode, "oidcc-prompt-none-logged-in", basic::prompt_none_logged_in),
        module!(plan, mode, "oidcc-max-age-1", basic::max_age_1),
        module!(plan, mode, "oidcc-max-age-10000", basic::max_age_10000),
        module!(plan, mode, "oidcc-ensure-request-with-unknown-parameter-succeeds", basic::unknown_parameter),
        module!(plan, mode, "oidcc-id-token-hint", basic::id_token_hint),
        module!(plan, mode, "oidcc-login-hint", basic::login_hint),
        module!(plan, mode, "oidcc-ui-locales", basic::ui_locales),
        module!(plan, mode, "oidcc-claims-locales", basic::claims_locales),
        module!(plan, mode, "oidcc-ensure-request-with-acr-values-succeeds", basic::acr_values),
        module!(plan, mode, "oidcc-codereuse", basic::codereuse),
        module!(plan, mode, "oidcc-codereuse-30seconds", basic::codereuse_30seconds),
        module!(plan, mode, "oidcc-ensure-registered-redirect-uri", basic::registered_redirect_uri),
        module!(plan, mode, "oidcc-ensure-post-request-succeeds", basic::post_request),
        module!(plan, mode, "oidcc-server-client-secret-post", basic::client_secret_post),
        module!(
            plan,
            mode,
            "oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported",
            basic::request_uri_unsigned
        ),
        module!(
            plan,
            mode,
            "oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported",
            basic::unsigned_request_object
        ),
        module!(plan, mode, "oidcc-claims-essential", basic::claims_essential),
        module!(plan, mode, "oidcc-ensure-request-object-with-redirect-uri", basic::request_object_with_redirect_uri),
        module!(plan, mode, "oidcc-refresh-token", basic::refresh_token),
        module!(plan, mode, "oidcc-ensure-request-with-valid-pkce-succeeds", basic::valid_pkce),
        // Not in the Basic OP plan (the suite runs them with dynamic registration), but what they
        // check holds for a statically registered client as well.
        module!(plan, mode, "oidcc-ensure-redirect-uri-in-authorization-request", basic::redirect_uri_missing),
        module!(plan, mode, "oidcc-redirect-uri-query-added", basic::redirect_uri_query_added),
    ]
}

/// Every module of every plan, in the order of the table.
pub fn all() -> Vec<Module> {
    let mut all = vec![module!(CONFIG, Mode::Query, "oidcc-discovery-endpoint-verification", config::discovery)];
    all.extend(basic_plan(BASIC, Mode::Query));
    all.extend(basic_plan(FORM_POST, Mode::FormPost));
    let q = Mode::Query;
    all.extend([
        module!(LOGOUT, q, "oidcc-rp-initiated-logout-discovery-endpoint-verification", config::logout_discovery),
        module!(LOGOUT, q, "oidcc-rp-initiated-logout", logout::logout),
        module!(
            LOGOUT,
            q,
            "oidcc-rp-initiated-logout-bad-post-logout-redirect-uri",
            logout::bad_post_logout_redirect_uri
        ),
        module!(LOGOUT, q, "oidcc-rp-initiated-logout-modified-id-token-hint", logout::modified_id_token_hint),
        module!(LOGOUT, q, "oidcc-rp-initiated-logout-no-id-token-hint", logout::no_id_token_hint),
        module!(LOGOUT, q, "oidcc-rp-initiated-logout-no-params", logout::no_params),
        module!(
            LOGOUT,
            q,
            "oidcc-rp-initiated-logout-no-post-logout-redirect-uri",
            logout::no_post_logout_redirect_uri
        ),
        module!(LOGOUT, q, "oidcc-rp-initiated-logout-no-state", logout::no_state),
        module!(LOGOUT, q, "oidcc-rp-initiated-logout-only-state", logout::only_state),
        module!(LOGOUT, q, "oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri", logout::query_added),
        module!(LOGOUT, q, "oidcc-rp-initiated-logout-bad-id-token-hint", logout::bad_id_token_hint),
        module!(LOGOUT, q, "lca-logout-client-id", logout::client_id),
        module!(BEYOND, q, "lca-refresh-rotation", beyond::refresh_rotation),
        module!(BEYOND, q, "lca-pkce", beyond::pkce),
        module!(BEYOND, q, "lca-client-credentials", beyond::client_credentials),
        module!(BEYOND, q, "lca-device-flow", beyond::device_flow),
        module!(BEYOND, q, "lca-device-denied", beyond::device_denied),
        module!(BEYOND, q, "lca-introspection", beyond::introspection),
        module!(BEYOND, q, "lca-revocation", beyond::revocation),
    ]);
    all
}

/// An authorization request under construction.
#[derive(Clone)]
pub struct AuthReq {
    params: Vec<(String, String)>,
    pub verifier: Option<String>,
    pub mode: Mode,
}

impl AuthReq {
    /// `response_type=code`, `scope=openid`, a fresh `state` and `nonce`, the first redirect URI.
    pub fn new(ctx: &Ctx, client: &Client, mode: Mode) -> Self {
        let mut req = Self { params: Vec::new(), verifier: None, mode };
        req = req
            .set("response_type", "code")
            .set("client_id", &client.id)
            .set("redirect_uri", &ctx.callback)
            .set("scope", "openid")
            .set("state", &check::random())
            .set("nonce", &check::random());
        if mode == Mode::FormPost {
            req = req.set("response_mode", "form_post");
        }
        req
    }

    pub fn set(mut self, name: &str, value: &str) -> Self {
        self.params.retain(|(k, _)| k != name);
        self.params.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn without(mut self, name: &str) -> Self {
        self.params.retain(|(k, _)| k != name);
        self
    }

    pub fn with_pkce(self) -> Self {
        let (verifier, challenge) = check::pkce();
        let mut req = self.set("code_challenge", &challenge).set("code_challenge_method", "S256");
        req.verifier = Some(verifier);
        req
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn pairs(&self) -> Vec<(&str, &str)> {
        self.params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    pub fn url(&self, ctx: &Ctx) -> anyhow::Result<String> {
        let mut url = Url::parse(&ctx.endpoint("authorization_endpoint")?)?;
        url.query_pairs_mut().extend_pairs(&self.params);
        Ok(url.to_string())
    }
}

/// The parameters of an authorization response, as a relying party would read them.
const RESPONSE_PARAMS: [&str; 6] = ["code", "state", "iss", "error", "error_description", "error_uri"];

/// The checks of the response a relying party receives: it came to the redirect URI (any query
/// of the registered URI kept), by the requested mode, with `state` and `iss` (RFC 9207).
fn response_to(ctx: &Ctx, step: &Step, req: &AuthReq) -> anyhow::Result<()> {
    let Step::Left { to, via, .. } = step else { bail!("no authorization response: {}", step.describe()) };
    let redirect_uri = req.get("redirect_uri").context("a request without redirect_uri")?;
    let mut base = to.clone();
    let kept: Vec<(String, String)> = to
        .query_pairs()
        .filter(|(k, _)| !RESPONSE_PARAMS.contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    base.set_query(None);
    if !kept.is_empty() {
        base.query_pairs_mut().extend_pairs(kept);
    }
    ensure!(base.as_str() == Url::parse(redirect_uri)?.as_str(), "the response went to {base}, not {redirect_uri}");
    let want = if req.mode == Mode::FormPost { Via::FormPost } else { Via::Redirect };
    ensure!(*via == want, "the response came by {via:?}, not {want:?}");
    if *via == Via::FormPost {
        ensure!(to.query().is_none() || to.as_str() == redirect_uri, "form_post to a changed URI {to}");
    }
    ensure!(step.param("state") == req.get("state"), "state {:?} is not {:?}", step.param("state"), req.get("state"));
    if ctx.discovery["authorization_response_iss_parameter_supported"] == true {
        ensure!(step.param("iss") == Some(ctx.issuer.as_str()), "iss {:?} is not the issuer", step.param("iss"));
    }
    Ok(())
}

/// A successful authorization response: its code.
pub fn code_of(ctx: &Ctx, step: &Step, req: &AuthReq) -> anyhow::Result<String> {
    response_to(ctx, step, req)?;
    ensure!(step.param("error").is_none(), "an error response: {}", step.describe());
    step.param("code").map(str::to_owned).context("no code in the response")
}

/// An error response with one of `errors`, to the relying party.
pub fn error_of(ctx: &Ctx, step: &Step, req: &AuthReq, errors: &[&str]) -> anyhow::Result<String> {
    response_to(ctx, step, req)?;
    ensure!(step.param("code").is_none(), "a code with an error: {}", step.describe());
    let error = step.param("error").context("no error in the response")?;
    ensure!(errors.contains(&error), "error {error} is not one of {errors:?}");
    Ok(error.to_owned())
}

/// An error page of the provider: the user is not sent anywhere.
pub fn error_page(step: &Step) -> anyhow::Result<()> {
    match step {
        Step::Page { status, .. } if (400..500).contains(status) => Ok(()),
        Step::Page { status, .. } => bail!("expected an error page, got a {status} page: {}", step.describe()),
        Step::Left { .. } => bail!("expected an error page, the user was sent on: {}", step.describe()),
    }
}

/// A completed code flow.
pub struct Flow {
    pub seen: Seen,
    pub tokens: Answer,
    pub claims: Value,
    pub access_token: String,
    pub id_token: String,
}

/// Opens `req`, signs in as `user` where asked, redeems the code as `client`, and checks the
/// response, the tokens and the ID token.
pub async fn code_flow(
    ctx: &Ctx,
    agent: &Agent<'_>,
    req: &AuthReq,
    client: &Client,
    user: &User,
) -> anyhow::Result<Flow> {
    let step = agent.open(&req.url(ctx)?).await?;
    let (step, seen) = agent.through(step, user).await?;
    finish(ctx, step, seen, req, client).await
}

/// Redeems the code of an authorization response and checks what comes back.
pub async fn finish(ctx: &Ctx, step: Step, seen: Seen, req: &AuthReq, client: &Client) -> anyhow::Result<Flow> {
    let code = code_of(ctx, &step, req)?;
    let redirect_uri = req.get("redirect_uri").unwrap_or_default();
    let tokens = ctx.redeem(client, &code, redirect_uri, req.verifier.as_deref()).await?.ok()?;
    check::token_response(&tokens, true)?;
    let access_token = tokens.str("access_token")?;
    let id_token = tokens.str("id_token")?;
    let expect = Expect {
        client_id: &client.id,
        nonce: req.get("nonce"),
        access_token: Some(&access_token),
        auth_time_required: req.get("max_age").is_some(),
    };
    let claims = check::id_token(ctx, &id_token, expect).await?;
    Ok(Flow { seen, tokens, claims, access_token, id_token })
}
