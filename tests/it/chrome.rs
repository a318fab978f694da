//! Headless Chromium for the page tests: Debian's `chromium` driven by `chromium-driver` over
//! WebDriver (fantoccini), in a fresh profile, ended whole when dropped.

use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

use crate::support::free_port;

/// chromedriver and a Chromium session; both end when dropped.
pub struct Chrome {
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Chrome {
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// A Chromium whose user prefers `languages` (its `Accept-Language`, e.g. `"nl,en"`).
    pub async fn start_speaking(languages: &str) -> Self {
        Self::start_with(Some(languages)).await
    }

    async fn start_with(languages: Option<&str>) -> Self {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so that a failing test ends Chromium too (see `Drop`).
            .process_group(0)
            .spawn()
            .expect("chromedriver (Debian package chromium-driver) must be installed; .ci/run installs it");
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut options = serde_json::json!({ "binary": "/usr/bin/chromium" });
        if let Some(languages) = languages {
            args.push(format!("--accept-lang={languages}"));
            options["prefs"] = serde_json::json!({ "intl": { "accept_languages": languages } });
        }
        options["args"] = serde_json::json!(args);
        caps.insert("goog:chromeOptions".into(), options);
        let url = format!("http://127.0.0.1:{port}");
        let mut last = None;
        for _ in 0..100 {
            match ClientBuilder::native().capabilities(caps.clone()).connect(&url).await {
                Ok(client) => return Self { client: Some(client), driver, _profile: profile },
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("could not start a Chromium session: {last:?}");
    }

    pub fn c(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.c().wait().at_most(Duration::from_secs(15)).for_element(Locator::Css(css)).await.unwrap()
    }

    /// Waits until the page's title is `title` (a click's navigation may not have happened
    /// yet when the next step looks).
    pub async fn wait_for_title(&self, title: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let now = self.c().title().await.unwrap();
            if now == title {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "the title stayed {now:?}, not {title:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Adds a virtual authenticator (WebDriver's WebAuthn extension, `addVirtualAuthenticator`):
    /// a platform authenticator that keeps discoverable credentials, verifies its user (as a
    /// PIN or a fingerprint would) and consents to every ceremony. Returns its id.
    pub async fn add_virtual_authenticator(&self) -> String {
        let options = serde_json::json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserConsenting": true,
            "isUserVerified": true,
        });
        let id = self.c().issue_cmd(WebAuthn { path: "webauthn/authenticator", body: options }).await.unwrap();
        id.as_str().expect("an authenticator id").to_owned()
    }

    /// The credentials a virtual authenticator holds.
    pub async fn virtual_credentials(&self, authenticator: &str) -> Vec<serde_json::Value> {
        let path = format!("webauthn/authenticator/{authenticator}/credentials");
        let cmd = WebAuthn { path: Box::leak(path.into_boxed_str()), body: serde_json::Value::Null };
        let list = self.c().issue_cmd(cmd).await.unwrap();
        list.as_array().cloned().unwrap_or_default()
    }

    pub async fn source(&self) -> String {
        self.c().source().await.unwrap()
    }

    pub async fn close(mut self) {
        if let Some(c) = self.client.take() {
            c.close().await.ok();
        }
    }
}

/// A command of WebDriver's WebAuthn extension (W3C WebAuthn §11), which fantoccini has no
/// method for: a POST with `body`, or a GET when it is null, at `session/{id}/{path}`.
#[derive(Debug)]
struct WebAuthn {
    path: &'static str,
    body: serde_json::Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for WebAuthn {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/{}", session_id.unwrap_or_default(), self.path))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        if self.body.is_null() {
            (axum::http::Method::GET, None)
        } else {
            (axum::http::Method::POST, Some(self.body.to_string()))
        }
    }
}

impl Drop for Chrome {
    /// After `close` nothing is left but chromedriver; after a failed assertion Chromium is
    /// still running, in chromedriver's process group, which goes whole.
    fn drop(&mut self) {
        if let Ok(pgid) = i32::try_from(self.driver.id()) {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), nix::sys::signal::Signal::SIGKILL);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
