//! The user agent: a browser without JavaScript. It keeps cookies, follows the provider's own
//! redirects, fills in the login and consent pages as the user would, and stops where the
//! provider hands the user back to the relying party, by redirect or by a form_post page.

use anyhow::{Context as _, bail};
use url::Url;

use crate::check::{Ctx, User};

/// How the authorization response reached the relying party.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Via {
    Redirect,
    FormPost,
}

/// Where a step ended.
#[derive(Debug)]
pub enum Step {
    /// A page of the provider.
    Page { status: u16, url: String, html: String },
    /// Handed back to `to` with these parameters.
    Left { to: Url, params: Vec<(String, String)>, via: Via },
}

impl Step {
    pub fn param(&self, name: &str) -> Option<&str> {
        match self {
            Step::Left { params, .. } => params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()),
            Step::Page { .. } => None,
        }
    }

    pub fn html(&self) -> &str {
        match self {
            Step::Page { html, .. } => html,
            Step::Left { .. } => "",
        }
    }

    pub fn is_page(&self, marker: &str) -> bool {
        matches!(self, Step::Page { html, .. } if html.contains(marker))
    }

    pub fn describe(&self) -> String {
        match self {
            Step::Page { status, url, html } => format!("page {status} {url}: {}", text_of(html)),
            Step::Left { to, params, via } => format!("left for {to} ({via:?}) with {params:?}"),
        }
    }
}

/// The visible text of a page, shortened, for failure messages.
fn text_of(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let words: Vec<&str> = out.split_whitespace().collect();
    words.join(" ").chars().take(300).collect()
}

/// What the user was shown on the way.
#[derive(Default, Debug)]
pub struct Seen {
    pub login: bool,
    pub consent: bool,
}

pub struct Agent<'a> {
    ctx: &'a Ctx,
    http: reqwest::Client,
}

impl<'a> Agent<'a> {
    pub fn new(ctx: &'a Ctx) -> Self {
        let http = (ctx.builder)().cookie_store(true).build().expect("an HTTP client");
        Self { ctx, http }
    }

    pub async fn open(&self, url: &str) -> anyhow::Result<Step> {
        let res = self.http.get(url).send().await?;
        self.follow(res).await
    }

    /// POSTs a form to a path of the provider (or an absolute URL).
    pub async fn post(&self, target: &str, form: &[(&str, &str)]) -> anyhow::Result<Step> {
        let url = Url::parse(&self.ctx.issuer)?.join(target)?;
        let res = self.http.post(url).form(form).send().await?;
        self.follow(res).await
    }

    async fn follow(&self, mut res: reqwest::Response) -> anyhow::Result<Step> {
        let issuer = Url::parse(&self.ctx.issuer)?;
        for _ in 0..12 {
            if res.status().is_redirection() {
                let location =
                    res.headers().get("location").context("a redirect without Location")?.to_str()?.to_owned();
                let next = res.url().join(&location)?;
                if next.origin() != issuer.origin() {
                    let params = next.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
                    return Ok(Step::Left { to: next, params, via: Via::Redirect });
                }
                res = self.http.get(next).send().await?;
                continue;
            }
            let status = res.status().as_u16();
            let url = res.url().to_string();
            let html = res.text().await?;
            if let Some(left) = form_post(&html)? {
                return Ok(left);
            }
            return Ok(Step::Page { status, url, html });
        }
        bail!("more than 12 redirects")
    }

    /// Signs in and consents wherever the provider asks, until it hands the user back.
    pub async fn through(&self, mut step: Step, user: &User) -> anyhow::Result<(Step, Seen)> {
        let mut seen = Seen::default();
        for _ in 0..6 {
            if step.is_page("action=\"/login\"") {
                seen.login = true;
                let html = step.html();
                let (csrf, req) = (hidden(html, "csrf")?, hidden(html, "req")?);
                step = self
                    .post(
                        "/login",
                        &[("csrf", &csrf), ("req", &req), ("email", &user.email), ("password", &user.password)],
                    )
                    .await?;
            } else if step.is_page("action=\"/consent\"") {
                seen.consent = true;
                let html = step.html();
                let (csrf, req) = (hidden(html, "csrf")?, hidden(html, "req")?);
                step = self.post("/consent", &[("csrf", &csrf), ("req", &req), ("decision", "allow")]).await?;
            } else {
                return Ok((step, seen));
            }
        }
        bail!("the provider kept asking: {}", step.describe())
    }
}

/// A form_post response page (OAuth 2.0 Form Post Response Mode): its target and fields.
fn form_post(html: &str) -> anyhow::Result<Option<Step>> {
    let marker = "id=\"response\"";
    let Some(at) = html.find(marker) else { return Ok(None) };
    let form_start = html[..at].rfind("<form").context("a response form without <form")?;
    let tag = &html[form_start..at];
    if !tag.contains("method=\"post\"") {
        return Ok(None);
    }
    let action = attr(tag, "action").context("a response form without action")?;
    let end = html[at..].find("</form>").map(|e| at + e).unwrap_or(html.len());
    let mut params = Vec::new();
    let mut rest = &html[at..end];
    while let Some(i) = rest.find("<input") {
        let close = rest[i..].find('>').map(|c| i + c).unwrap_or(rest.len());
        let input = &rest[i..close];
        if let (Some(name), Some(value)) = (attr(input, "name"), attr(input, "value")) {
            params.push((name, value));
        }
        rest = &rest[close..];
    }
    Ok(Some(Step::Left { to: Url::parse(&action)?, params, via: Via::FormPost }))
}

/// An attribute of a tag, unescaped.
fn attr(tag: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let start = tag.find(&marker)? + marker.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// The value of a hidden input of a page.
pub fn hidden(html: &str, name: &str) -> anyhow::Result<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start =
        html.find(&marker).with_context(|| format!("no hidden {name} on the page: {}", text_of(html)))? + marker.len();
    let end = html[start..].find('"').context("an unclosed attribute")? + start;
    Ok(unescape(&html[start..end]))
}

/// HTML entities as askama writes them.
fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}
