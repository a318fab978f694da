//! What the load tests, the conformance harness and the release-binary integration tests
//! share: the release binary, started on the embedded default in a temporary data directory,
//! on a free port of 127.0.0.1, with a clean environment.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The server process; stopped (SIGTERM, then SIGKILL after 30 s) when dropped.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    /// The server's process id (for its CPU time and memory in the load tests).
    #[allow(dead_code, reason = "not every user of this module measures the process")]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(i32::MAX));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the release binary is built, after `cargo`: here, and by the `Dockerfile` (which
/// `tests/it/container.rs` holds to this).
pub const RELEASE_BUILD: [&str; 5] = ["build", "--release", "--locked", "--bin", "laventecare-auth"];

/// The release binary: `LCA_RELEASE_BIN` if set, else `cargo build --release` of this
/// workspace (quick when it is up to date). For test targets, which cargo builds in the debug
/// profile; a bench has the release binary as `CARGO_BIN_EXE_laventecare-auth`.
pub fn release_binary() -> anyhow::Result<PathBuf> {
    if let Ok(bin) = std::env::var("LCA_RELEASE_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(manifest).args(RELEASE_BUILD);
    // The variables cargo sets for a test binary describe this test, not the build it starts.
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_CRATE_")
            || key.starts_with("CARGO_BIN_")
            || key == "CARGO_MANIFEST_DIR"
            || key == "CARGO_MANIFEST_PATH"
            || key == "CARGO_PRIMARY_PACKAGE"
            || key == "CARGO_TARGET_TMPDIR"
            || key == "OUT_DIR"
        {
            cmd.env_remove(key);
        }
    }
    eprintln!("building the release server (cargo build --release)…");
    let status = cmd.status().map_err(|e| anyhow::anyhow!("running cargo: {e}"))?;
    anyhow::ensure!(status.success(), "cargo build --release failed: {status}");
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| manifest.join("target"));
    let bin = target.join("release").join("laventecare-auth");
    anyhow::ensure!(bin.exists(), "no release binary at {}", bin.display());
    Ok(bin)
}

/// A command of `bin` on the data directory `data`, without the caller's `LCA_*`, `DATABASE_*`
/// and Sentry settings, with `vars` on top of the defaults.
pub fn command(bin: &str, data: &Path, vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(bin);
    for (key, _) in std::env::vars() {
        if key.starts_with("LCA_") || key.starts_with("DATABASE_") || key == "SENTRY_DSN" {
            cmd.env_remove(key);
        }
    }
    cmd.env("LCA_DATA_DIR", data).env("LCA_LOG", "warn").env("LCA_ADMIN_PASSWORD", "an admin passphrase 12");
    cmd.envs(vars.iter().copied());
    cmd
}

/// `serve` on a free port; returns once `/readyz` answers (its log is `data` + `.log`).
pub async fn start(bin: &str, data: &Path, vars: &[(&str, &str)]) -> Server {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = std::fs::File::create(data.with_extension("log")).unwrap();
    let child = command(bin, data, vars)
        .arg("serve")
        .env("LCA_LISTEN", format!("127.0.0.1:{port}"))
        .env("LCA_ISSUER", format!("http://127.0.0.1:{port}"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let server = Server { child, base: format!("http://127.0.0.1:{port}") };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = http.get(format!("{}/readyz", server.base)).send().await
            && r.status().is_success()
        {
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not become ready; see {}",
            data.with_extension("log").display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
