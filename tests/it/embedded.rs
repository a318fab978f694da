//! The embedded default, end to end with the real binary: `serve` with no DATABASE_URL starts
//! its own cluster, a CLI command uses it while the server runs, a signal stops both, and the
//! next start reuses the data.

use std::path::Path;

use nix::sys::signal::Signal;

use crate::support::{Server, binary, json_out, run_with_stdin};

fn embedded(data_dir: &Path) -> std::process::Command {
    let mut cmd = binary();
    cmd.env("LCA_DATA_DIR", data_dir).env_remove("LCA_MASTER_KEY");
    cmd
}

fn cluster_is_running(data_dir: &Path) -> bool {
    data_dir.join("postgres/pgdata/postmaster.pid").exists()
}

/// First start creates the cluster, bootstraps and prints the one-time password; the CLI
/// works beside it; SIGINT stops server and cluster; the second start reuses the data.
#[tokio::test]
async fn serve_starts_stops_and_reuses_its_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    let server = Server::start(embedded(&data)).await;
    let http = reqwest::Client::new();
    assert_eq!(http.get(format!("{}/readyz", server.base)).send().await.unwrap().status(), 200);
    assert!(cluster_is_running(&data));
    assert!(data.join("master.key").exists(), "master key generated into the data dir");

    // A CLI command on the same data directory while the server runs.
    let mut cmd = embedded(&data);
    cmd.args(["tenant", "create", "--slug", "kept", "--name", "Kept", "--json"]);
    let created = json_out(&run_with_stdin(cmd, ""));
    assert_eq!(created["slug"], "kept");
    // The server still answers: the CLI did not stop the cluster it did not start.
    assert_eq!(http.get(format!("{}/readyz", server.base)).send().await.unwrap().status(), 200);

    let out = server.stop(Signal::SIGINT);
    assert!(out.status.success(), "clean exit on SIGINT: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("One-time password (shown only now): "), "{stdout}");
    assert!(!cluster_is_running(&data), "cluster stopped with the server");

    // Second start: same data, no second bootstrap.
    let server = Server::start(embedded(&data)).await;
    assert_eq!(http.get(format!("{}/readyz", server.base)).send().await.unwrap().status(), 200);
    let mut cmd = embedded(&data);
    cmd.args(["tenant", "create", "--slug", "kept", "--name", "Kept", "--json"]);
    let dup = run_with_stdin(cmd, "");
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"), "the tenant survived the restart");
    let out = server.stop(Signal::SIGTERM);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("One-time password"), "bootstrap runs once");
    assert!(!cluster_is_running(&data));

    // The cluster of a root process lives outside the data dir; remove it with the test.
    let target = std::fs::canonicalize(data.join("postgres")).unwrap();
    std::fs::remove_dir_all(target).unwrap();
}

/// Without the server binaries, the command exits with one line naming the package.
#[tokio::test]
async fn missing_binaries_say_what_to_install() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = embedded(&dir.path().join("data"));
    cmd.env("LCA_PG_BINDIR", dir.path()).arg("migrate");
    let out = run_with_stdin(cmd, "");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("apt-get install postgresql"), "{stderr}");
}
