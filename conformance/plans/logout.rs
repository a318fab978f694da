//! The RP-initiated logout OP plan (`oidcc-rp-initiated-logout-certification-test-plan`,
//! OpenID Connect RP-Initiated Logout 1.0): sign in, send the user to `end_session_endpoint`
//! with the module's parameters, and check where the user ends up and that the session is over.
//! Where the provider asks the user to confirm, the user confirms (the suite accepts either).

use anyhow::{bail, ensure};
use url::Url;

use super::{AuthReq, Flow, Mode, code_flow, error_of, error_page};
use crate::agent::{Agent, Step, hidden};
use crate::check::{self, Ctx, Verdict};

/// A signed-in browser and its flow.
async fn signed_in(ctx: &Ctx) -> anyhow::Result<(Agent<'_>, Flow)> {
    let agent = Agent::new(ctx);
    let req = AuthReq::new(ctx, &ctx.client, Mode::Query);
    let flow = code_flow(ctx, &agent, &req, &ctx.client, &ctx.user).await?;
    Ok((agent, flow))
}

/// Sends the user to the end-session endpoint; confirms if asked. Returns where it ended and
/// whether the user was asked.
async fn end_session(ctx: &Ctx, agent: &Agent<'_>, params: &[(&str, &str)]) -> anyhow::Result<(Step, bool)> {
    let mut url = Url::parse(&ctx.endpoint("end_session_endpoint")?)?;
    if !params.is_empty() {
        url.query_pairs_mut().extend_pairs(params);
    }
    let step = agent.open(url.as_str()).await?;
    if !step.is_page("name=\"confirm\"") {
        return Ok((step, false));
    }
    let html = step.html();
    let mut form = vec![("csrf".to_owned(), hidden(html, "csrf")?), ("confirm".to_owned(), hidden(html, "confirm")?)];
    for name in ["client_id", "post_logout_redirect_uri", "state"] {
        if let Ok(v) = hidden(html, name) {
            form.push((name.to_owned(), v));
        }
    }
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Ok((agent.post("/logout", &fields).await?, true))
}

/// The session is over: a `prompt=none` request needs the user again.
async fn logged_out(ctx: &Ctx, agent: &Agent<'_>) -> anyhow::Result<()> {
    let req = AuthReq::new(ctx, &ctx.client, Mode::Query).set("prompt", "none");
    let step = agent.open(&req.url(ctx)?).await?;
    error_of(ctx, &step, &req, &["login_required", "interaction_required"])
        .map(|_| ())
        .map_err(|e| e.context("the user is still signed in after logout"))
}

/// Sent back to the post-logout URI with `state` (or none when none was sent).
fn returned(ctx: &Ctx, step: &Step, state: Option<&str>) -> anyhow::Result<()> {
    let Step::Left { to, .. } = step else { bail!("not sent back: {}", step.describe()) };
    let mut base = to.clone();
    base.set_query(None);
    ensure!(base.as_str() == ctx.post_logout, "sent to {to}, not the post-logout URI");
    ensure!(step.param("state") == state, "state {:?} is not {state:?}", step.param("state"));
    Ok(())
}

/// Not sent to the relying party: an error page or a "you are signed out" page.
fn stayed(step: &Step) -> anyhow::Result<()> {
    match step {
        Step::Page { status, .. } if *status < 500 => Ok(()),
        _ => bail!("expected a page of the provider: {}", step.describe()),
    }
}

pub async fn logout(ctx: &Ctx, _mode: Mode) -> anyhow::Result<Verdict> {
    let (agent, flow) = signed_in(ctx).await?;
    // The suite sends a long state to check it comes back whole.
    let state = format!("{}{}{}{}", check::random(), check::random(), check::random(), check::random());
    let (step, asked) = end_session(
        ctx,
        &agent,
        &[("id_token_hint", &flow.id_token), ("post_logout_redirect_uri", &ctx.post_logout), ("state", &state)],
    )
    .await?;
    returned(ctx, &step, Some(&state))?;
    logged_out(ctx, &agent).await?;
    Ok(Verdict::pass(if asked {
        "signed out after confirming; sent back with state"
    } else {
        "signed out at once; sent back with state"
    }))
}

pub async fn bad_post_logout_redirect_uri(ctx: &Ctx, _mode: Mode) -> anyhow::Result<Verdict> {
    let (agent, flow) = signed_in(ctx).await?;
    let bad = format!("{}/not-registered", crate::server::RP);
    let (step, _) = end_session(
        ctx,
        &agent,
        &[("id_token_hint", &flow.id_token), ("post_logout_redirect_uri", &bad), ("state", "s")],
    )
    .await?;
    error_page(&step)?;
    Ok(Verdict::pass("an error page, no redirect"))
}

pub async fn modified_id_token_hint(ctx: &Ctx, _mode: Mode) -> anyhow::Result<Verdict> {
    let (agent, flow) = signed_in(ctx).await?;
    // Another signature: the last character of the token changed.
    let mut forged = flow.id_token.clone();
    let last = forged.pop().unwrap_or('A');
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let (step, _) = end_session(
        ctx,
        &agent,
        &[("id_token_hint", &forged), ("post_logout_redirect_uri", &ctx.post_logout), ("state", "s")],
    )
    .await?;
    error_page(&step)?;
    Ok(Verdict::pass("an error page, no redirect"))
}

pub async fn bad_id_token_hint(ctx: &Ctx, _mode: Mode) -> anyhow::Result<Verdict> {
    let (agent, _) = signed_in(ctx).await?;
    let (step, _) =
        end_session(ctx, &agent, &[("id_token_hint", "not-a-token"), ("post_logout_redirect_uri", &ctx.post_logout)])
            .await?;
    error_page(&step)?;
    Ok(Verdict::pass("an error page, no redirect"))
}

pub async fn no_id_token_hint(ctx: &Ctx, _mode: Mode) -> anyhow::Result<Verdict> {
    let (agent, _) = signed_in(ctx).await?;
    let (step, asked) =
        end_session(ctx, &agent, &[("post_logout_redirect_uri", &ctx.post_logout), ("state", "s")]).await?;
    match &step {
        Step::Left { .. } => bail!("sent to the post-logout URI without an id_token_hint: {}", step.describe()),
        _ if asked => {
            stayed(&step)?;
            Ok(Verdict::pass("the user was asked to confirm; no redirect"))
        }
        _ => {
            error_page(&step)?;
            Ok(Verdict::pass("an error page, no redirect"))
        }
    }
}

/// A logout the provider must perform (after confirming) without sending the user back.
async fn signs_out_in_place(ctx: &Ctx, params: &[(&str, &str)], with_hint: bool) -> anyhow::Result<Verdict> {
    let (agent, flow) = signed_in(ctx).await?;
    let mut all: Vec<(&str, &str)> = params.to_vec();
    if with_hint {
        all.push(("id_token_hint", &flow.id_token));
    }
    let (step, asked) = end_session(ctx, &agent, &all).await?;
    stayed(&step)?;
    logged_out(ctx, &agent).await?;
    Ok(Verdict::pass(if asked {
        "signed out after confirming; a signed-out page"
    } else {
        "signed out; a signed-out page"
    }))
}

pub async fn no_params(ctx: &Ctx, _mode: Mode) -> anyhow::Result<Verdict> {
    signs_out_in_place(ctx, &[], false).await
}

pub async fn no_post_logout_redirect_uri(ctx: &Ctx, _mode: Mode) -> anyhow::Result<Verdict> {
    signs_out_in_place(ctx, &[], true).await
}

pub async fn only_state(ctx: &Ctx, _mode: Mode) -> anyhow::Result<Verdict> {
    signs_out_in_place(ctx, &[("state", "only-state")], false).await
}

pub async fn no_state(ctx: &Ctx, _mode: Mode) -> anyhow::Result<Verdict> {
    let (agent, flow) = signed_in(ctx).await?;
    let (step, _) =
        end_session(ctx, &agent, &[("id_token_hint", &flow.id_token), ("post_logout_redirect_uri", &ctx.post_logout)])
            .await?;
    returned(ctx, &step, None)?;
    logged_out(ctx, &agent).await?;
    Ok(Verdict::pass("sent back without a state"))
}

pub async fn query_added(ctx: &Ctx, _mode: Mode) -> anyhow::Result<Verdict> {
    let (agent, flow) = signed_in(ctx).await?;
    let changed = format!("{}?foo=bar", ctx.post_logout);
    let (step, _) = end_session(
        ctx,
        &agent,
        &[("id_token_hint", &flow.id_token), ("post_logout_redirect_uri", &changed), ("state", "s")],
    )
    .await?;
    error_page(&step)?;
    Ok(Verdict::pass("an error page: the registered URI must match exactly"))
}

pub async fn client_id(ctx: &Ctx, _mode: Mode) -> anyhow::Result<Verdict> {
    // §2: client_id instead of id_token_hint names the client; the user confirms.
    let (agent, _) = signed_in(ctx).await?;
    let (step, asked) = end_session(
        ctx,
        &agent,
        &[("client_id", &ctx.client.id), ("post_logout_redirect_uri", &ctx.post_logout), ("state", "c")],
    )
    .await?;
    ensure!(asked, "signed out without a hint and without asking the user");
    returned(ctx, &step, Some("c"))?;
    logged_out(ctx, &agent).await?;
    Ok(Verdict::pass("with client_id the user confirms, then is sent back with state"))
}
