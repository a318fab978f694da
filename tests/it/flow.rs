//! The provider served in process on an ephemeral port, seeded with a tenant, a member and a
//! client, and a scripted browser (cookie jar, no automatic redirects) that walks the hosted
//! pages the way a person's browser would.

#![allow(dead_code)]

use laventecare_auth::{AppState, clients, identity, tenancy};
use reqwest::redirect::Policy;
use url::Url;

use crate::support::TestDb;

pub const PASSWORD: &str = "violet tundra kayak 42";
pub const REDIRECT: &str = "https://rp.example.com/callback";
pub const POST_LOGOUT: &str = "https://rp.example.com/signed-out";

/// A running provider and what was seeded into it.
pub struct Provider {
    pub t: TestDb,
    pub state: AppState,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub email: String,
}

impl Provider {
    /// Tenant `acme`, user `ann@example.com` (editor), and a confidential client with the code
    /// and refresh grants.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    pub async fn start_with(vars: &[(&str, &str)]) -> Self {
        Self::start_adjusted(vars, |state| state).await
    }

    /// [`Provider::start_with`], with the state changed by `adjust` before it serves.
    pub async fn start_adjusted(vars: &[(&str, &str)], adjust: impl FnOnce(AppState) -> AppState) -> Self {
        Self::serve(vars, adjust, "127.0.0.1").await
    }

    /// [`Provider::start_with`] with the issuer `http://localhost:PORT`: a host name, which
    /// WebAuthn needs as its relying party id (an IP address cannot be one).
    pub async fn start_on_localhost(vars: &[(&str, &str)]) -> Self {
        Self::serve(vars, |state| state, "localhost").await
    }

    async fn serve(vars: &[(&str, &str)], adjust: impl FnOnce(AppState) -> AppState, host: &str) -> Self {
        let t = TestDb::new().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{host}:{}", listener.local_addr().unwrap().port());
        let mut vars = vars.to_vec();
        vars.push(("LCA_ISSUER", &issuer));
        let state = adjust(t.state_with(&vars).await);
        let app = laventecare_auth::app(state.clone());
        tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await.unwrap();
        });
        t.tenant("acme").await;
        let hasher = identity::PasswordHasher::new();
        identity::create_user(&t.db, &hasher, "ann@example.com", PASSWORD).await.unwrap();
        tenancy::add_member(&t.db, "acme", "ann@example.com", laventecare_auth::vocabulary::Role::Editor)
            .await
            .unwrap();
        let client = clients::create_client(
            &t.db,
            clients::ClientRequest {
                tenant: "acme".into(),
                name: "Acme Web".into(),
                grants: vec!["authorization_code".into(), "refresh_token".into()],
                redirect_uris: vec![REDIRECT.into()],
                post_logout_redirect_uris: vec![POST_LOGOUT.into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
        Self {
            t,
            state,
            issuer,
            client_id: client.client_id,
            client_secret: client.client_secret.unwrap().expose().to_owned(),
            email: "ann@example.com".into(),
        }
    }

    /// Registers another client in `acme`.
    pub async fn client(&self, req: clients::ClientRequest) -> clients::CreatedClient {
        clients::create_client(&self.t.db, clients::ClientRequest { tenant: "acme".into(), ..req }).await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// A plain HTTP client (no cookies, no redirects) for the back channel.
    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
    }

    /// Redeems a code of the seeded client at the token endpoint.
    pub async fn redeem(&self, code: &str, verifier: &str) -> (u16, serde_json::Value) {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .await
    }

    /// Whether introspection, asked by the seeded client, calls `token` active.
    pub async fn introspect(&self, token: &str) -> bool {
        let res = self
            .http()
            .post(self.url("/introspect"))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let v: serde_json::Value = res.json().await.unwrap();
        v["active"].as_bool().unwrap()
    }

    /// Posts a form to the token endpoint as the seeded client (Basic authentication).
    pub async fn token(&self, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
        let res = self
            .http()
            .post(self.url("/token"))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }
}

/// Where a step of the browser ended.
#[derive(Debug)]
pub enum Step {
    /// A page of the provider.
    Page { status: u16, url: String, html: String, headers: reqwest::header::HeaderMap },
    /// A redirect away from the provider (to the relying party).
    Left(Url),
}

impl Step {
    pub fn html(&self) -> &str {
        match self {
            Step::Page { html, .. } => html,
            Step::Left(url) => panic!("expected a page, left for {url}"),
        }
    }

    /// The page, if the step ended on one.
    pub fn html_opt(&self) -> Option<&str> {
        match self {
            Step::Page { html, .. } => Some(html),
            Step::Left(_) => None,
        }
    }

    /// The `code` the browser left with, if it left.
    pub fn code(&self) -> Option<String> {
        match self {
            Step::Left(url) => url.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()),
            Step::Page { .. } => None,
        }
    }

    pub fn left(&self) -> &Url {
        match self {
            Step::Left(url) => url,
            Step::Page { url, status, html, .. } => panic!("expected to leave, got {status} {url}: {html}"),
        }
    }

    /// A query parameter of the URL the browser left for.
    pub fn param(&self, name: &str) -> Option<String> {
        self.left().query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    pub fn status(&self) -> u16 {
        match self {
            Step::Page { status, .. } => *status,
            Step::Left(_) => 302,
        }
    }
}

/// A browser: keeps cookies, follows the provider's own redirects, stops at foreign ones. A
/// clone is the same browser (one cookie jar), as a second tab.
#[derive(Clone)]
pub struct Browser {
    http: reqwest::Client,
    issuer: String,
}

impl Browser {
    pub fn new(p: &Provider) -> Self {
        Self::with_headers(p, &[])
    }

    /// A browser that sends `headers` with every request (`Accept-Language`, say).
    pub fn with_headers(p: &Provider, headers: &[(&'static str, &str)]) -> Self {
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().unwrap());
        }
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .default_headers(map)
            .build()
            .unwrap();
        Self { http, issuer: p.issuer.clone() }
    }

    pub async fn open(&self, url: &str) -> Step {
        let res = self.http.get(url).send().await.unwrap();
        self.follow(res).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Step {
        let res = self.http.post(format!("{}{path}", self.issuer)).form(form).send().await.unwrap();
        self.follow(res).await
    }

    async fn follow(&self, mut res: reqwest::Response) -> Step {
        for _ in 0..10 {
            if !res.status().is_redirection() {
                let status = res.status().as_u16();
                let url = res.url().to_string();
                let headers = res.headers().clone();
                return Step::Page { status, url, headers, html: res.text().await.unwrap() };
            }
            let location = res.headers()["location"].to_str().unwrap().to_owned();
            let next = Url::parse(&self.issuer).unwrap().join(&location).unwrap();
            if !next.as_str().starts_with(&self.issuer) {
                return Step::Left(next);
            }
            res = self.http.get(next).send().await.unwrap();
        }
        panic!("redirect loop");
    }

    /// Fills in and submits the login page.
    pub async fn login(&self, page: &Step, email: &str, password: &str) -> Step {
        let html = page.html();
        assert!(html.contains("action=\"/login\""), "not the login page: {html}");
        let csrf = hidden(html, "csrf");
        let req = hidden(html, "req");
        self.post("/login", &[("csrf", &csrf), ("req", &req), ("email", email), ("password", password)]).await
    }

    /// Answers the consent page.
    pub async fn consent(&self, page: &Step, allow: bool) -> Step {
        let html = page.html();
        assert!(html.contains("action=\"/consent\""), "not the consent page: {html}");
        let csrf = hidden(html, "csrf");
        let req = hidden(html, "req");
        self.post("/consent", &[("csrf", &csrf), ("req", &req), ("decision", if allow { "allow" } else { "deny" })])
            .await
    }

    /// Logs in and consents if asked: the usual way through.
    pub async fn sign_in_through(&self, url: &str, email: &str, password: &str) -> Step {
        let mut step = self.open(url).await;
        if matches!(&step, Step::Page { html, .. } if html.contains("action=\"/login\"")) {
            step = self.login(&step, email, password).await;
        }
        if matches!(&step, Step::Page { html, .. } if html.contains("action=\"/consent\"")) {
            step = self.consent(&step, true).await;
        }
        step
    }
}

impl Browser {
    /// Answers the second-factor page with a code.
    pub async fn second_factor(&self, page: &Step, code: &str) -> Step {
        let html = page.html();
        assert!(html.contains("action=\"/login/mfa\""), "not the second-factor page: {html}");
        let csrf = hidden(html, "csrf");
        let req = hidden(html, "req");
        self.post("/login/mfa", &[("csrf", &csrf), ("req", &req), ("code", code)]).await
    }

    /// On the enrolment page: reads the key shown as text, enters its current code, and
    /// returns the key, the backup codes shown once, and that page.
    pub async fn enrol(&self, page: &Step) -> (String, Vec<String>, Step) {
        let html = page.html();
        assert!(html.contains("action=\"/mfa/enrol\""), "not the enrolment page: {html}");
        let secret = between(html, "<code id=\"totp-secret\">", "</code>");
        let csrf = hidden(html, "csrf");
        let req = hidden(html, "req");
        let step = self.post("/mfa/enrol", &[("csrf", &csrf), ("req", &req), ("code", &totp_code(&secret, 0))]).await;
        let codes = backup_codes(step.html());
        (secret, codes, step)
    }

    /// Follows the "Continue" link of a page (backup codes, notices).
    pub async fn continue_on(&self, page: &Step) -> Step {
        let href = between(page.html(), "id=\"continue\" href=\"", "\"").replace("&amp;", "&");
        let url = Url::parse(&self.issuer).unwrap().join(&href).unwrap();
        self.open(url.as_str()).await
    }
}

/// The TOTP code of a key as the enrolment page shows it, `steps_ahead` 30-second steps from
/// now (the provider accepts one step of skew; a step already used is refused).
pub fn totp_code(secret: &str, steps_ahead: u64) -> String {
    let bytes = totp_rs::Secret::try_from_base32(secret.replace(' ', "")).unwrap().as_ref().to_vec();
    let totp = laventecare_auth::identity::mfa::totp(&bytes, "test", "t@example.com").unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    totp.generate(now + 30 * steps_ahead).to_string()
}

/// The backup codes of the page that shows them.
pub fn backup_codes(html: &str) -> Vec<String> {
    between(html, "<pre id=\"backup-codes\" class=\"codes\">", "</pre>").lines().map(str::to_owned).collect()
}

/// The text between two markers.
pub fn between(html: &str, start: &str, end: &str) -> String {
    let from = html.find(start).unwrap_or_else(|| panic!("no {start} in {html}")) + start.len();
    let to = html[from..].find(end).unwrap() + from;
    html[from..to].to_owned()
}

/// The value of a hidden input.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no hidden {name} in {html}")) + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

/// A PKCE pair (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    let verifier = laventecare_auth::secrets::Secret::generate().expose().to_owned();
    let challenge = laventecare_auth::protocol::types::s256_challenge(&verifier);
    (verifier, challenge)
}

/// An authorization URL for the seeded client with PKCE and the given extra parameters.
pub fn authorize_url(p: &Provider, challenge: &str, extra: &[(&str, &str)]) -> String {
    let mut params: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", &p.client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email profile offline_access"),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    // An extra parameter replaces the default of the same name.
    for (k, v) in extra {
        params.retain(|(name, _)| name != k);
        params.push((k, v));
    }
    let mut url = Url::parse(&p.url("/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

/// Logs in through the pages and redeems the code: (browser, token response JSON).
pub async fn tokens(p: &Provider) -> (Browser, serde_json::Value) {
    let browser = Browser::new(p);
    let (verifier, challenge) = pkce();
    let step = browser.sign_in_through(&authorize_url(p, &challenge, &[]), &p.email, PASSWORD).await;
    let code = step.param("code").unwrap();
    let (status, body) = p.redeem(&code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    (browser, body)
}

/// The claims of a JWT, without checking it (the checks are the test's business).
pub fn claims(jwt: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The header of a JWT.
pub fn header(jwt: &str) -> serde_json::Value {
    use base64::Engine as _;
    let h = jwt.split('.').next().unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap()
}
