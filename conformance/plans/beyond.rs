//! What the suite's OP plans do not test but relying parties and devices depend on: refresh-token
//! rotation with reuse detection, PKCE for public clients, client credentials, the device
//! authorization grant (RFC 8628), introspection (RFC 7662) and revocation (RFC 7009).

use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use serde_json::Value;

use super::{AuthReq, Flow, Mode, code_flow, error_of};
use crate::agent::{Agent, Step, hidden};
use crate::check::{self, Answer, Client, Ctx, Verdict};

async fn offline_flow(ctx: &Ctx, client: &Client) -> anyhow::Result<Flow> {
    let agent = Agent::new(ctx);
    let mut req = AuthReq::new(ctx, client, Mode::Query).set("scope", "openid offline_access");
    if client.secret.is_none() {
        req = req.with_pkce();
    }
    code_flow(ctx, &agent, &req, client, &ctx.user).await
}

async fn refresh(ctx: &Ctx, client: &Client, token: &str) -> anyhow::Result<Answer> {
    ctx.token(client, &[("grant_type", "refresh_token"), ("refresh_token", token)]).await
}

async fn introspect(ctx: &Ctx, client: &Client, token: &str) -> anyhow::Result<Answer> {
    ctx.post_as(client, &ctx.endpoint("introspection_endpoint")?, &[("token", token)]).await
}

pub async fn refresh_rotation(ctx: &Ctx, _mode: Mode) -> anyhow::Result<Verdict> {
    let flow = offline_flow(ctx, &ctx.client).await?;
    let first = flow.tokens.str("refresh_token")?;
    let rotated = refresh(ctx, &ctx.client, &first).await?.ok()?;
    let second = rotated.str("refresh_token").context("a refresh answer without a new refresh token")?;
    ensure!(second != first, "the refresh token was not rotated");
    // The used token again: reuse. The whole family ends, the newest token with it.
    let reused = refresh(ctx, &ctx.client, &first).await?;
    reused.error(400, &["invalid_grant"])?;
    let after = refresh(ctx, &ctx.client, &second).await?;
    after.error(400, &["invalid_grant"]).context("the family's newest token still works after a reuse")?;
    let access = rotated.str("access_token")?;
    let seen = introspect(ctx, &ctx.client, &access).await?.ok()?;
    ensure!(seen.body["active"] == false, "the family's access token is still active after a reuse: {}", seen.body);
    Ok(Verdict::pass("each refresh rotates; a reuse ends the family and its access tokens"))
}

pub async fn pkce(ctx: &Ctx, _mode: Mode) -> anyhow::Result<Verdict> {
    let agent = Agent::new(ctx);
    // A public client must use PKCE, and only S256.
    let bare = AuthReq::new(ctx, &ctx.public, Mode::Query);
    error_of(ctx, &agent.open(&bare.url(ctx)?).await?, &bare, &["invalid_request"])
        .context("a public client without PKCE")?;
    let plain = AuthReq::new(ctx, &ctx.public, Mode::Query)
        .set("code_challenge", &check::random())
        .set("code_challenge_method", "plain");
    error_of(ctx, &agent.open(&plain.url(ctx)?).await?, &plain, &["invalid_request"])
        .context("code_challenge_method=plain")?;
    // The right verifier works; a wrong one is invalid_grant and spends the code.
    let req = AuthReq::new(ctx, &ctx.public, Mode::Query).with_pkce();
    let step = agent.open(&req.url(ctx)?).await?;
    let (step, _) = agent.through(step, &ctx.user).await?;
    let code = super::code_of(ctx, &step, &req)?;
    let wrong = ctx.redeem(&ctx.public, &code, &ctx.callback, Some(&check::pkce().0)).await?;
    wrong.error(400, &["invalid_grant"])?;
    let right = ctx.redeem(&ctx.public, &code, &ctx.callback, req.verifier.as_deref()).await?;
    right.error(400, &["invalid_grant"]).context("a code redeemed after a wrong verifier")?;
    let req = AuthReq::new(ctx, &ctx.public, Mode::Query).with_pkce();
    super::code_flow(ctx, &agent, &req, &ctx.public, &ctx.user).await?;
    Ok(Verdict::pass("public clients need S256; a wrong verifier spends the code; the right one works"))
}

pub async fn client_credentials(ctx: &Ctx, _mode: Mode) -> anyhow::Result<Verdict> {
    let answer = ctx.token(&ctx.service, &[("grant_type", "client_credentials")]).await?.ok()?;
    check::token_response(&answer, false)?;
    ensure!(answer.body.get("refresh_token").is_none(), "client_credentials gave a refresh token (RFC 6749 §4.4.3)");
    ensure!(answer.body.get("id_token").is_none(), "client_credentials gave an ID token");
    let token = answer.str("access_token")?;
    let header = check::part(&token, 0)?;
    let kid = header["kid"].as_str().context("no kid")?;
    let jwks = ctx.jwks().await?;
    let key =
        jwks["keys"].as_array().and_then(|k| k.iter().find(|k| k["kid"] == kid)).context("kid not in the JWKS")?;
    let jwk = josekit::jwk::Jwk::from_map(key.as_object().cloned().unwrap_or_default())?;
    let claims = check::verify_with(header["alg"].as_str().unwrap_or_default(), &jwk, &token)?;
    ensure!(claims["iss"] == ctx.issuer.as_str(), "iss is not the issuer");
    ensure!(claims["sub"] == ctx.service.id.as_str(), "sub {} is not the client", claims["sub"]);
    ensure!(claims["tid"].is_string(), "no tid");
    ensure!(
        claims["roles"].as_array().is_some_and(|r| r.iter().any(|x| x == "viewer")),
        "roles lack viewer: {}",
        claims["roles"]
    );
    // A wrong secret in the Authorization header: 401 with WWW-Authenticate (RFC 6749 §5.2).
    let wrong =
        Client { id: ctx.service.id.clone(), secret: Some("wrong".into()), method: "client_secret_basic".into() };
    let refused = ctx.token(&wrong, &[("grant_type", "client_credentials")]).await?;
    refused.error(401, &["invalid_client"])?;
    ensure!(refused.headers.contains_key("www-authenticate"), "a 401 without WWW-Authenticate");
    // A grant the client is not registered for.
    let other = ctx.token(&ctx.client, &[("grant_type", "client_credentials")]).await?;
    other.error(400, &["unauthorized_client"])?;
    Ok(Verdict::pass("a signed token for the service account with tid and roles; bad secrets and grants refused"))
}

/// `POST /device_authorization` for the device client.
async fn device_codes(ctx: &Ctx) -> anyhow::Result<Value> {
    let url = ctx.endpoint("device_authorization_endpoint")?;
    let answer = ctx.post_as(&ctx.device, &url, &[("scope", "openid offline_access")]).await?.ok()?;
    for field in ["device_code", "user_code", "verification_uri", "verification_uri_complete"] {
        ensure!(answer.body[field].is_string(), "no {field}: {}", answer.body);
    }
    ensure!(answer.body["expires_in"].as_u64().is_some_and(|e| e > 0), "no expires_in");
    Ok(answer.body)
}

async fn poll(ctx: &Ctx, device_code: &str) -> anyhow::Result<Answer> {
    ctx.token(
        &ctx.device,
        &[("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", device_code)],
    )
    .await
}

/// The user opens `verification_uri_complete`, signs in and decides.
async fn decide(ctx: &Ctx, codes: &Value, approve: bool) -> anyhow::Result<Step> {
    let agent = Agent::new(ctx);
    let step = agent.open(codes["verification_uri_complete"].as_str().unwrap_or_default()).await?;
    let (mut step, _) = agent.through(step, &ctx.user).await?;
    if step.is_page("action=\"/device\"") {
        let html = step.html();
        step = agent
            .post("/device", &[("csrf", &hidden(html, "csrf")?), ("user_code", &hidden(html, "user_code")?)])
            .await?;
    }
    ensure!(step.is_page("action=\"/device/decide\""), "no confirmation page: {}", step.describe());
    let html = step.html();
    ensure!(
        html.contains(codes["user_code"].as_str().unwrap_or("?")),
        "the confirmation page does not show the user code to compare"
    );
    let decision = if approve { "approve" } else { "deny" };
    let (csrf, code) = (hidden(html, "csrf")?, hidden(html, "user_code")?);
    agent.post("/device/decide", &[("csrf", &csrf), ("user_code", &code), ("decision", decision)]).await
}

/// Polls as a well-behaved device until the answer is no longer pending.
async fn poll_until_decided(ctx: &Ctx, device_code: &str, mut interval: u64) -> anyhow::Result<Answer> {
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        let answer = poll(ctx, device_code).await?;
        match answer.body["error"].as_str() {
            Some("authorization_pending") => {}
            Some("slow_down") => interval += 5,
            _ => return Ok(answer),
        }
    }
    bail!("still pending after 10 polls")
}

pub async fn device_flow(ctx: &Ctx, _mode: Mode) -> anyhow::Result<Verdict> {
    let codes = device_codes(ctx).await?;
    let device_code = codes["device_code"].as_str().unwrap_or_default().to_owned();
    let interval = codes["interval"].as_u64().unwrap_or(5);
    poll(ctx, &device_code).await?.error(400, &["authorization_pending"])?;
    // At once again: too fast (RFC 8628 §3.5).
    poll(ctx, &device_code).await?.error(400, &["slow_down"])?;
    decide(ctx, &codes, true).await?;
    let tokens = poll_until_decided(ctx, &device_code, interval + 5).await?.ok()?;
    check::token_response(&tokens, true)?;
    let expect =
        check::Expect { client_id: &ctx.device.id, nonce: None, access_token: None, auth_time_required: false };
    let claims = check::id_token(ctx, &tokens.str("id_token")?, expect).await?;
    ensure!(claims["sub"] == ctx.user.sub.as_str(), "the device's ID token is not for the user who approved");
    // Its refresh token works.
    let refresh_token = tokens.str("refresh_token").context("no refresh token for offline_access")?;
    let renewed = refresh(ctx, &ctx.device, &refresh_token).await?.ok()?;
    // The device code is spent; presenting it again is refused.
    poll(ctx, &device_code).await?.error(400, &["invalid_grant", "expired_token"])?;
    let after = refresh(ctx, &ctx.device, &renewed.str("refresh_token")?).await?;
    let ended = if after.status == 200 { "kept" } else { "ended" };
    Ok(Verdict::pass(format!(
        "pending, slow_down, approval, tokens, refresh; a spent code is refused (its grant {ended})"
    )))
}

pub async fn device_denied(ctx: &Ctx, _mode: Mode) -> anyhow::Result<Verdict> {
    let codes = device_codes(ctx).await?;
    let device_code = codes["device_code"].as_str().unwrap_or_default().to_owned();
    decide(ctx, &codes, false).await?;
    let answer = poll_until_decided(ctx, &device_code, codes["interval"].as_u64().unwrap_or(5)).await?;
    answer.error(400, &["access_denied"])?;
    Ok(Verdict::pass("a denial reaches the device as access_denied"))
}

pub async fn introspection(ctx: &Ctx, _mode: Mode) -> anyhow::Result<Verdict> {
    let flow = offline_flow(ctx, &ctx.client).await?;
    let seen = introspect(ctx, &ctx.client, &flow.access_token).await?.ok()?;
    let body = &seen.body;
    ensure!(body["active"] == true, "a fresh access token is not active: {body}");
    ensure!(body["client_id"] == ctx.client.id.as_str(), "client_id is not the client: {body}");
    ensure!(body["sub"] == ctx.user.sub.as_str(), "sub is not the user: {body}");
    ensure!(body["exp"].is_i64() && body["scope"].is_string(), "no exp or scope: {body}");
    let refresh_token = flow.tokens.str("refresh_token")?;
    ensure!(
        introspect(ctx, &ctx.client, &refresh_token).await?.ok()?.body["active"] == true,
        "the refresh token is not active"
    );
    ensure!(introspect(ctx, &ctx.client, "garbage").await?.ok()?.body["active"] == false, "garbage is active");
    // A resource server of the same tenant may ask (RFC 7662 §1); one of another tenant learns
    // nothing, not even that the token exists.
    let same = introspect(ctx, &ctx.client2, &flow.access_token).await?.ok()?;
    ensure!(same.body["active"] == true, "a client of the token's tenant cannot introspect it: {}", same.body);
    let foreign = introspect(ctx, &ctx.foreign, &flow.access_token).await?.ok()?;
    ensure!(
        foreign.body == serde_json::json!({"active": false}),
        "another tenant learns about the token: {}",
        foreign.body
    );
    // The caller must authenticate.
    let anonymous = Answer::of(
        ctx.http.post(ctx.endpoint("introspection_endpoint")?).form(&[("token", &flow.access_token)]).send().await?,
    )
    .await?;
    ensure!(anonymous.status == 401, "introspection without client authentication answered {}", anonymous.status);
    Ok(Verdict::pass("active tokens described within their tenant only; garbage inactive; authentication required"))
}

pub async fn revocation(ctx: &Ctx, _mode: Mode) -> anyhow::Result<Verdict> {
    let revoke = |client: &'static str, token: String| async move {
        let c = match client {
            "client2" => &ctx.client2,
            _ => &ctx.client,
        };
        ctx.post_as(c, &ctx.endpoint("revocation_endpoint")?, &[("token", &token)]).await
    };
    let flow = offline_flow(ctx, &ctx.client).await?;
    let refresh_token = flow.tokens.str("refresh_token")?;
    // Another client cannot revoke it (RFC 7009 §2.1), and the token keeps working.
    let theirs = revoke("client2", refresh_token.clone()).await?;
    ensure!(theirs.status == 200 || theirs.status == 400, "revocation by another client answered {}", theirs.status);
    ensure!(
        introspect(ctx, &ctx.client, &refresh_token).await?.ok()?.body["active"] == true,
        "another client revoked the token"
    );
    // Nor can a client of another tenant.
    let foreign =
        ctx.post_as(&ctx.foreign, &ctx.endpoint("revocation_endpoint")?, &[("token", &refresh_token)]).await?;
    ensure!(foreign.status == 200 || foreign.status == 400, "revocation by another tenant answered {}", foreign.status);
    ensure!(
        introspect(ctx, &ctx.client, &refresh_token).await?.ok()?.body["active"] == true,
        "another tenant revoked the token"
    );
    // Unknown tokens: 200 (§2.2).
    ensure!(revoke("client", "unknown".into()).await?.status == 200, "revoking an unknown token is not 200");
    // The refresh token: the grant ends, its access token with it.
    ensure!(revoke("client", refresh_token.clone()).await?.status == 200, "revocation failed");
    refresh(ctx, &ctx.client, &refresh_token).await?.error(400, &["invalid_grant"])?;
    ensure!(
        ctx.userinfo(&flow.access_token).await?.status == 401,
        "the access token works after its grant was revoked"
    );
    // An access token on its own.
    let other = offline_flow(ctx, &ctx.client).await?;
    ensure!(revoke("client", other.access_token.clone()).await?.status == 200, "revoking an access token failed");
    ensure!(ctx.userinfo(&other.access_token).await?.status == 401, "a revoked access token works at userinfo");
    ensure!(
        introspect(ctx, &ctx.client, &other.access_token).await?.ok()?.body["active"] == false,
        "a revoked access token is active"
    );
    Ok(Verdict::pass("refresh and access tokens revoked for their client only; unknown tokens 200"))
}
