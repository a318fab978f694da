//! PostgreSQL stops under load: the server on its embedded default (what a newcomer runs) keeps
//! running; what needs the database answers 503 `temporarily_unavailable` fast, pages a 503
//! page, discovery and JWKS keep answering from memory, `/readyz` says not ready; nothing is
//! half-written; started again, the same process serves again.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use laventecare_auth::db::EmbeddedCluster;
use laventecare_auth::db::embedded::{DATABASE_NAME, find_server_binaries};
use nix::sys::signal::Signal;
use sqlx::Connection as _;

use super::load::{Kind, Load, check_outage, check_pairs};
use super::{Proc, assert_no_panic, until};
use crate::support::{binary, json_out, run_with_stdin};

fn embedded(data: &Path) -> Command {
    let mut cmd = binary();
    cmd.env("LCA_DATA_DIR", data).env_remove("LCA_MASTER_KEY");
    cmd
}

/// Stops the cluster of `data` the way an operator (or a crash) would, as its OS user.
fn pg_ctl_stop(data: &Path, mode: &str) -> std::process::Output {
    use std::os::unix::process::CommandExt as _;
    let root = std::fs::canonicalize(data.join("postgres")).unwrap();
    let mut cmd = Command::new(find_server_binaries().unwrap().join("pg_ctl"));
    cmd.args(["stop", "-w", "-m", mode, "-D"]).arg(root.join("pgdata")).current_dir("/");
    if nix::unistd::Uid::effective().is_root() {
        let pg = nix::unistd::User::from_name("postgres").unwrap().unwrap();
        cmd.uid(pg.uid.as_raw()).gid(pg.gid.as_raw());
    }
    cmd.output().unwrap()
}

/// Whatever happens to the test, its private cluster ends with it.
struct ClusterGuard(PathBuf);

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        if let Ok(root) = std::fs::canonicalize(self.0.join("postgres")) {
            if root.join("pgdata/postmaster.pid").exists() {
                let _ = pg_ctl_stop(&self.0, "immediate");
            }
            let _ = std::fs::remove_dir_all(root);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_stop_under_load_fails_fast_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _guard = ClusterGuard(data.clone());
    let server = Proc::start(embedded(&data), &dir.path().join("server.log")).await;

    let cli = |args: &[&str]| {
        let mut cmd = embedded(&data);
        cmd.args(args);
        json_out(&run_with_stdin(cmd, ""))
    };
    cli(&["tenant", "create", "--slug", "acme", "--name", "Acme", "--json"]);
    let client = cli(&[
        "client",
        "create",
        "--tenant",
        "acme",
        "--name",
        "Load",
        "--grant",
        "client_credentials",
        "--role",
        "viewer",
        "--json",
    ]);
    let load = Load::start(&server.base, &client, 6);

    // Up: everything answers 200.
    let start = Instant::now();
    until(
        Duration::from_secs(30),
        || format!("load while the database is up: {}", load.summary(start)),
        || load.count(Kind::Token, start, 200) >= 20 && load.all_up_since(start, 3),
    )
    .await;

    // Down: an immediate stop (a crash, as far as the server can tell).
    let stopping = Instant::now();
    let out = tokio::task::spawn_blocking({
        let data = data.clone();
        move || pg_ctl_stop(&data, "immediate")
    })
    .await
    .unwrap();
    assert!(out.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr));
    let down = Instant::now();
    until(
        Duration::from_secs(30),
        || format!("answers while the database is down: {}", load.summary(down)),
        || load.all_down_since(down, 5),
    )
    .await;
    let first_503 = load.first(Kind::Token, 503, stopping).unwrap();

    // Up again: the same process serves without a restart.
    let restarting = Instant::now();
    let cluster = EmbeddedCluster::start(&data, None).await.unwrap();
    let up = Instant::now();
    until(
        Duration::from_secs(20),
        || format!("recovery after the database came back: {}", load.summary(up)),
        || load.all_up_since(up, 3),
    )
    .await;
    let recovered = load.first(Kind::Token, 200, up).unwrap();
    let all = load.finish().await;

    let slowest_down = check_outage(&all, down, restarting);
    let slowest_in_flight =
        all.iter().filter(|o| o.started < down && o.started + o.took > stopping).map(|o| o.took).max();
    eprintln!(
        "fault figures (embedded, pg_ctl stop -m immediate): the stop took {:?}; first token 503 {:?} after it began; \
         slowest answer while down {slowest_down:?}, of requests in flight at the stop {slowest_in_flight:?}; first \
         token 200 {:?} after the cluster was back ({:?} after it began starting); {} requests",
        down - stopping,
        first_503 - stopping,
        recovered - up,
        recovered - restarting,
        all.len()
    );

    let mut conn = sqlx::PgConnection::connect_with(&cluster.connect_options(DATABASE_NAME)).await.unwrap();
    let (answered, stored) = check_pairs(&mut conn, &load.client_id, &all).await;
    conn.close().await.unwrap();
    eprintln!("fault figures (embedded): {answered} tokens answered, {stored} stored");
    let mut verify = embedded(&data);
    verify.args(["audit", "verify", "--json"]);
    let out = run_with_stdin(verify, "");
    assert!(out.status.success(), "audit chain intact: {}", String::from_utf8_lossy(&out.stdout));

    assert_no_panic(&server.log());
    let status = server.stop(Signal::SIGTERM);
    assert!(status.success(), "clean exit after the outage: {status}");
    drop(cluster);
}
