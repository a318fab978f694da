//! The Config OP plan (`oidcc-config-certification-test-plan`): the discovery document and the
//! keys (OpenID Connect Discovery 1.0 §3 and §4, RFC 7517), and the logout plan's own check.

use anyhow::{Context as _, ensure};
use serde_json::Value;

use super::Mode;
use crate::check::{Ctx, Verdict};
use crate::server::Scheme;

/// The endpoints whose URLs must be https where the issuer is.
const ENDPOINTS: [&str; 9] = [
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
    "end_session_endpoint",
    "introspection_endpoint",
    "revocation_endpoint",
    "device_authorization_endpoint",
    "registration_endpoint",
];

fn strings(doc: &Value, name: &str) -> anyhow::Result<Vec<String>> {
    let list = doc[name].as_array().with_context(|| format!("{name} is not a list"))?;
    list.iter().map(|v| v.as_str().map(str::to_owned).with_context(|| format!("{name} has a non-string"))).collect()
}

pub async fn discovery(ctx: &Ctx, _mode: Mode) -> anyhow::Result<Verdict> {
    let url = format!("{}/.well-known/openid-configuration", ctx.issuer);
    let res = ctx.http.get(&url).send().await?;
    ensure!(res.status() == 200, "discovery answered {}", res.status());
    let content_type = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    ensure!(content_type.starts_with("application/json"), "discovery is {content_type}, not JSON");
    let doc: Value = res.json().await?;

    // §4.3: the issuer is exactly the URL the document was fetched under, without a slash.
    ensure!(doc["issuer"] == ctx.issuer.as_str(), "issuer {} is not {}", doc["issuer"], ctx.issuer);
    ensure!(!ctx.issuer.ends_with('/'), "the issuer ends with /");
    for required in ["authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"] {
        ensure!(doc[required].is_string(), "{required} is missing");
    }
    let https = ctx.scheme == Scheme::Https;
    for name in ENDPOINTS {
        if let Some(v) = doc.get(name) {
            let v = v.as_str().with_context(|| format!("{name} is not a string"))?;
            let parsed = url::Url::parse(v).with_context(|| format!("{name} is not a URL"))?;
            ensure!(parsed.fragment().is_none(), "{name} has a fragment");
            if https {
                ensure!(parsed.scheme() == "https", "{name} is not https: {v}");
            }
        }
    }
    ensure!(
        strings(&doc, "response_types_supported")?.contains(&"code".to_owned()),
        "response_types_supported lacks code"
    );
    let subjects = strings(&doc, "subject_types_supported")?;
    ensure!(
        subjects.iter().all(|s| s == "public" || s == "pairwise") && !subjects.is_empty(),
        "bad subject_types_supported"
    );
    let algs = strings(&doc, "id_token_signing_alg_values_supported")?;
    ensure!(algs.contains(&"RS256".to_owned()), "RS256 is not offered for ID tokens (§3: it MUST be)");
    ensure!(strings(&doc, "scopes_supported")?.contains(&"openid".to_owned()), "scopes_supported lacks openid");
    let claims = strings(&doc, "claims_supported")?;
    for claim in ["sub", "iss", "aud", "exp", "iat"] {
        ensure!(claims.contains(&claim.to_owned()), "claims_supported lacks {claim}");
    }
    if let Some(methods) = doc.get("token_endpoint_auth_methods_supported") {
        ensure!(methods.is_array(), "token_endpoint_auth_methods_supported is not a list");
    }
    for flag in ["claims_parameter_supported", "request_parameter_supported", "request_uri_parameter_supported"] {
        if let Some(v) = doc.get(flag) {
            ensure!(v.is_boolean(), "{flag} is not a boolean");
        }
    }
    ensure!(
        strings(&doc, "grant_types_supported")?.contains(&"authorization_code".to_owned()),
        "grant_types_supported lacks authorization_code"
    );

    // The keys: public, each with a kid, usable for signatures, none twice.
    let jwks: Value =
        ctx.http.get(doc["jwks_uri"].as_str().unwrap_or_default()).send().await?.error_for_status()?.json().await?;
    let keys = jwks["keys"].as_array().context("the JWKS has no keys list")?;
    ensure!(!keys.is_empty(), "the JWKS is empty");
    let mut kids = std::collections::HashSet::new();
    for key in keys {
        let kid = key["kid"].as_str().context("a key without kid")?;
        ensure!(kids.insert(kid.to_owned()), "kid {kid} twice");
        ensure!(key["kty"].is_string(), "key {kid} has no kty");
        ensure!(key.get("use").is_none_or(|u| u == "sig"), "key {kid} is not for signatures");
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            ensure!(key.get(private).is_none(), "key {kid} publishes its private part {private}");
        }
    }
    let reason = if https {
        "discovery and JWKS valid; every endpoint https"
    } else {
        "discovery and JWKS valid (loopback http: the https checks run over https)"
    };
    Ok(Verdict::pass(reason))
}

pub async fn logout_discovery(ctx: &Ctx, _mode: Mode) -> anyhow::Result<Verdict> {
    let end = ctx.endpoint("end_session_endpoint")?;
    let url = url::Url::parse(&end)?;
    if ctx.scheme == Scheme::Https {
        ensure!(url.scheme() == "https", "end_session_endpoint is not https");
    }
    Ok(Verdict::pass("end_session_endpoint is advertised"))
}
