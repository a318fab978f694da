//! The server under test: the release binary on its embedded default, provisioned through its
//! CLI, as an operator would.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use serde_json::Value;

use crate::check::{Client, Ctx, User};

/// The redirect and post-logout URIs the harness registers; they are never fetched, the
/// harness reads the authorization response off the redirect (or the form_post page).
pub const RP: &str = "https://rp.conformance.test";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scheme {
    Http,
    Https,
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        })
    }
}

/// A running `serve` with its own data directory (and so its own PostgreSQL cluster).
pub struct Server {
    bin: PathBuf,
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub scheme: Scheme,
    pub issuer: String,
    port: u16,
    cert_pem: Option<String>,
}

impl Server {
    pub async fn start(bin: &Path, scheme: Scheme) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("lca-conformance-").tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let (issuer, cert_pem) = match scheme {
            Scheme::Http => (format!("http://127.0.0.1:{port}"), None),
            Scheme::Https => {
                let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
                std::fs::write(dir.path().join("cert.pem"), made.cert.pem())?;
                std::fs::write(dir.path().join("key.pem"), made.signing_key.serialize_pem())?;
                (format!("https://localhost:{port}"), Some(made.cert.pem()))
            }
        };
        let mut server = Self { bin: bin.to_owned(), child: None, dir, scheme, issuer, port, cert_pem };
        let log = std::fs::File::create(server.dir.path().join("server.log"))?;
        let mut cmd = server.command();
        cmd.arg("serve").stdout(log.try_clone()?).stderr(log);
        server.child = Some(cmd.spawn().context("starting the server")?);
        server.wait_ready(Duration::from_secs(120)).await?;
        Ok(server)
    }

    /// The binary with this server's settings and nothing of the caller's environment.
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        for (key, _) in std::env::vars() {
            if key.starts_with("LCA_") || key.starts_with("DATABASE_") || key == "SENTRY_DSN" {
                cmd.env_remove(key);
            }
        }
        cmd.env("LCA_DATA_DIR", self.dir.path().join("data"))
            .env("LCA_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("LCA_ISSUER", &self.issuer)
            .env("LCA_LOG", "warn");
        if self.cert_pem.is_some() {
            cmd.env("LCA_TLS_CERT", self.dir.path().join("cert.pem"))
                .env("LCA_TLS_KEY", self.dir.path().join("key.pem"));
        }
        cmd
    }

    /// An HTTP client that trusts this server's certificate and reaches `localhost` on IPv4.
    pub fn http_builder(&self) -> reqwest::ClientBuilder {
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .resolve("localhost", ([127, 0, 0, 1], self.port).into());
        if let Some(pem) = &self.cert_pem {
            b = b.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).expect("our own certificate"));
        }
        b
    }

    async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let http = self.http_builder().build()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(r) = http.get(format!("{}/readyz", self.issuer)).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!("the server exited with {status}:\n{}", self.log_tail());
            }
            ensure!(Instant::now() < deadline, "the server did not become ready:\n{}", self.log_tail());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last lines of the server's output.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Runs a CLI command against the running server's cluster; returns its one JSON object.
    fn cli(&self, args: &[&str], stdin: Option<&str>) -> anyhow::Result<Value> {
        use std::io::Write;
        let mut cmd = self.command();
        cmd.args(args).arg("--json").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        if let Some(input) = stdin {
            child.stdin.take().expect("piped").write_all(input.as_bytes())?;
        }
        drop(child.stdin.take());
        let out = child.wait_with_output()?;
        ensure!(out.status.success(), "`{}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).with_context(|| format!("`{}` printed no JSON", args.join(" ")))
    }

    fn client(&self, name: &str, extra: &[&str]) -> anyhow::Result<Client> {
        let mut args = vec!["client", "create", "--tenant", "conformance", "--name", name];
        args.extend_from_slice(extra);
        let created = self.cli(&args, None)?;
        Ok(Client {
            id: created["client_id"].as_str().context("client_id")?.to_owned(),
            secret: created["client_secret"].as_str().map(str::to_owned),
            method: created["token_endpoint_auth_method"].as_str().unwrap_or("none").to_owned(),
        })
    }

    /// The tenant, the user and the clients the plans need, made through the CLI.
    pub async fn provision(&self) -> anyhow::Result<Ctx> {
        self.cli(&["tenant", "create", "--slug", "conformance", "--name", "Conformance"], None)?;
        let user = self.user("alice@conformance.test", "correct horse battery staple 1")?;
        self.cli(
            &[
                "user",
                "set-profile",
                "--email",
                &user.email,
                "--name",
                "Alice Example",
                "--given-name",
                "Alice",
                "--family-name",
                "Example",
                "--preferred-username",
                "alice",
                "--locale",
                "en-GB",
                "--zoneinfo",
                "Europe/Amsterdam",
                "--email-verified",
                "true",
            ],
            None,
        )?;
        let callback = format!("{RP}/callback");
        let post_logout = format!("{RP}/post_logout_redirect");
        let web = [
            "--grant",
            "authorization_code",
            "--grant",
            "refresh_token",
            "--redirect-uri",
            &callback,
            "--post-logout-redirect-uri",
            &post_logout,
        ];
        // The suite's requests carry no PKCE, so its confidential clients may leave it out.
        let suite: Vec<&str> = [&web[..], &["--pkce-optional"]].concat();
        let client = self.client("Conformance client", &suite)?;
        let client2 = self.client("Conformance client 2", &suite)?;
        let mut post = suite.clone();
        post.extend(["--auth-method", "client_secret_post"]);
        let client_post = self.client("Conformance client (client_secret_post)", &post)?;
        let public = self.client("Conformance public client", &[&["--public"], &web[..]].concat())?;
        let device =
            self.client("Conformance device", &["--public", "--grant", "device_code", "--grant", "refresh_token"])?;
        let service = self.client("Conformance service", &["--grant", "client_credentials", "--role", "viewer"])?;
        // A client of another tenant, to see that nothing crosses over.
        self.cli(&["tenant", "create", "--slug", "elsewhere", "--name", "Elsewhere"], None)?;
        let created = self.cli(
            &[
                "client",
                "create",
                "--tenant",
                "elsewhere",
                "--name",
                "Elsewhere service",
                "--grant",
                "client_credentials",
                "--role",
                "admin",
            ],
            None,
        )?;
        let foreign = Client {
            id: created["client_id"].as_str().context("client_id")?.to_owned(),
            secret: created["client_secret"].as_str().map(str::to_owned),
            method: "client_secret_basic".into(),
        };
        let http = self.http_builder().build()?;
        let discovery: Value = http
            .get(format!("{}/.well-known/openid-configuration", self.issuer))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(Ctx {
            scheme: self.scheme,
            issuer: self.issuer.clone(),
            http,
            builder: Box::new({
                let port = self.port;
                let pem = self.cert_pem.clone();
                move || {
                    let mut b = reqwest::Client::builder()
                        .redirect(reqwest::redirect::Policy::none())
                        .timeout(Duration::from_secs(30))
                        .resolve("localhost", ([127, 0, 0, 1], port).into());
                    if let Some(pem) = &pem {
                        b = b.add_root_certificate(
                            reqwest::Certificate::from_pem(pem.as_bytes()).expect("our certificate"),
                        );
                    }
                    b
                }
            }),
            discovery,
            user,
            client,
            client2,
            client_post,
            public,
            device,
            service,
            foreign,
            callback,
            post_logout,
        })
    }

    fn user(&self, email: &str, password: &str) -> anyhow::Result<User> {
        let made =
            self.cli(&["user", "create", "--email", email, "--password-stdin"], Some(&format!("{password}\n")))?;
        self.cli(&["member", "add", "--tenant", "conformance", "--email", email, "--role", "editor"], None)?;
        let sub = made["user_id"].as_str().or_else(|| made["id"].as_str()).context("the user's id")?.to_owned();
        Ok(User { email: email.to_owned(), password: password.to_owned(), sub })
    }

    /// SIGTERM, so that the server stops its cluster; the data directory goes with `self`.
    pub async fn stop(mut self) {
        if let Some(child) = self.child.take() {
            tokio::task::spawn_blocking(move || terminate(child)).await.ok();
        }
    }
}

/// Ends the server as an operator would (SIGTERM: it stops its embedded cluster), and kills it
/// only if it has not exited within 30 s.
fn terminate(mut child: Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            terminate(child);
        }
    }
}
