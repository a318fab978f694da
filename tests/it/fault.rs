//! Faults (ARCHITECTURE.md, "Cross-cutting concerns": Faults): PostgreSQL stopping under load
//! (`fault/database.rs`) and the server killed in the middle of token exchanges
//! (`fault/crash.rs`). Both run the real binary as a child process; neither touches the shared
//! test cluster's server (the first brings its own cluster, the second kills only the server).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::support::free_port;

mod crash;
mod database;
mod load;
mod network;

/// A `serve` child process whose output goes to files, so a busy server never blocks on a
/// full pipe. Killed when dropped.
pub struct Proc {
    child: Option<Child>,
    pub base: String,
    log: PathBuf,
}

impl Proc {
    /// Starts `serve` on a free port with `cmd`'s environment, logging to `log`, and waits
    /// for `/healthz`. The issuer is the server's own address unless `cmd` sets `LCA_ISSUER`
    /// (instances behind one name).
    pub async fn start(cmd: Command, log: &Path) -> Self {
        Self::start_on(cmd, log, free_port()).await
    }

    /// [`Proc::start`] on `port`.
    pub async fn start_on(mut cmd: Command, log: &Path, port: u16) -> Self {
        let base = format!("http://127.0.0.1:{port}");
        let err = File::options().create(true).append(true).open(log).unwrap();
        let out = err.try_clone().unwrap();
        if !cmd.get_envs().any(|(k, v)| k == "LCA_ISSUER" && v.is_some()) {
            cmd.env("LCA_ISSUER", &base);
        }
        let child = cmd
            .arg("serve")
            .env("LCA_LISTEN", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap();
        let mut proc = Self { child: Some(child), base, log: log.to_path_buf() };
        proc.wait_for_health(Duration::from_secs(90)).await;
        proc
    }

    async fn wait_for_health(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let http = reqwest::Client::new();
        loop {
            if let Ok(r) = http.get(format!("{}/healthz", self.base)).send().await
                && r.status().is_success()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.as_mut().unwrap().try_wait() {
                panic!("server exited with {status}: {}", self.log());
            }
            assert!(Instant::now() < deadline, "server did not answer /healthz: {}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything the process wrote so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Sends `signal` and waits for the process to end.
    pub fn stop(mut self, signal: nix::sys::signal::Signal) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        child.wait().unwrap()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `check` every 20 ms until it holds; fails with `what` after `timeout`.
pub async fn until(timeout: Duration, what: impl Fn() -> String, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {}", what());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// No panic and no internal text in a server's log.
pub fn assert_no_panic(log: &str) {
    assert!(!log.contains("panicked"), "the server panicked:\n{log}");
}
