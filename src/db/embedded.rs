//! The embedded default: a private PostgreSQL cluster started from the server binaries that are
//! installed on the machine, listening on a Unix socket only.
//!
//! Where the cluster lives:
//! - run as an ordinary user, in `<data dir>/postgres/`;
//! - run as root, `initdb` and `postgres` refuse to run, so the cluster runs as the `postgres`
//!   OS user. That user usually cannot traverse the directories above the data directory (a
//!   clone under `/root`), and we do not loosen the permissions of someone's home directory to
//!   fix that. So the cluster lives in `/var/lib/laventecare-auth/clusters/<id>/`, where `<id>`
//!   is derived from the data directory's absolute path, and `<data dir>/postgres` is a symlink
//!   to it.
//!
//! Inside the cluster directory: `pgdata/` (the cluster), `run/` (the socket directory, mode
//! 0700, so the `trust` authentication of the local socket reaches only its owner) and
//! `postgres.log`.
//!
//! Two logins use that socket: the superuser (the owner: migrations, operator tasks) and
//! `lca_runtime` (request connections; `migrations/0010_runtime_login.sql`). The runtime login
//! gets no password of its own, on purpose: the socket directory is the authentication.
//! Whoever can enter it (the cluster's OS user, or root) can already log in as the superuser
//! over the same `trust` line, and a password file in the data directory would be readable by
//! exactly those people, so it would add a secret to manage and no wall. What matters for the
//! runtime login is that SQL on a request connection cannot turn into more rights, and that
//! holds because the session user is `lca_runtime` itself, whatever the authentication.
//!
//! The process that starts the cluster stops it (`stop`); a second process on the same data
//! directory (a CLI command while `serve` runs) finds it running and uses it without owning it.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use nix::fcntl::{Flock, FlockArg};
use nix::unistd::{Gid, Uid, User};
use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// Name of the database the embedded cluster holds for the application.
pub const DATABASE_NAME: &str = "laventecare";
/// Superuser created by `initdb`; the application's owner role.
const SUPERUSER: &str = "postgres";
/// Clusters of processes running as root live below this directory.
const ROOT_CLUSTERS: &str = "/var/lib/laventecare-auth/clusters";

/// One line a person can act on, printed when the server binaries are not installed.
pub const MISSING_BINARIES: &str = "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found: \
install the PostgreSQL server package (Debian/Ubuntu: `apt-get install postgresql`), \
or set DATABASE_URL to use an existing PostgreSQL server";

/// A running embedded cluster.
#[derive(Debug)]
pub struct EmbeddedCluster {
    bin_dir: PathBuf,
    root: PathBuf,
    run_as: Option<(Uid, Gid)>,
    /// True when this process started the cluster and so must stop it.
    owned: bool,
}

/// Why the embedded cluster could not be started.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("{MISSING_BINARIES}")]
    MissingBinaries,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl EmbeddedCluster {
    /// Starts the cluster for `data_dir` (creating it on first use), or attaches to the one
    /// another process already runs there.
    /// `bin_dir` overrides where the server binaries are looked for.
    pub async fn start(data_dir: &Path, bin_dir: Option<&Path>) -> Result<Self, EmbeddedError> {
        let bin_dir = match bin_dir {
            Some(dir) => has_server_binaries(dir).then(|| dir.to_path_buf()),
            None => find_server_binaries(),
        }
        .ok_or(EmbeddedError::MissingBinaries)?;
        let data_dir = data_dir.to_path_buf();
        // Everything below is blocking file and process work; keep it off the async workers.
        tokio::task::spawn_blocking(move || Self::start_blocking(bin_dir, &data_dir))
            .await
            .context("embedded cluster start task failed")?
            .map_err(EmbeddedError::Other)
    }

    fn start_blocking(bin_dir: PathBuf, data_dir: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(data_dir).with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
        let data_dir = fs::canonicalize(data_dir)?;
        let run_as = if Uid::effective().is_root() {
            let user = User::from_name(SUPERUSER)?.context(
                "running as root, the embedded cluster needs the `postgres` OS user \
                 (created by the PostgreSQL server package)",
            )?;
            Some((user.uid, user.gid))
        } else {
            None
        };
        let root = cluster_root(&data_dir, run_as.is_some())?;
        let mut cluster = Self { bin_dir, root, run_as, owned: false };

        // Two processes starting at once: the lock makes the second wait, then find the
        // cluster running.
        let lock_file =
            fs::OpenOptions::new().create(true).truncate(false).write(true).open(data_dir.join(".cluster.lock"))?;
        let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
            .map_err(|(_, e)| anyhow::anyhow!("cannot lock the data directory: {e}"))?;

        if cluster.is_running() {
            tracing::info!(cluster = %cluster.root.display(), "using the running embedded PostgreSQL cluster");
            return Ok(cluster);
        }
        if !cluster.pgdata().join("PG_VERSION").exists() {
            cluster.init()?;
        }
        cluster.pg_ctl_start()?;
        cluster.owned = true;
        Ok(cluster)
    }

    /// Directory holding `pgdata/`, `run/` and the log.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn pgdata(&self) -> PathBuf {
        self.root.join("pgdata")
    }

    fn socket_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    /// Connection options for a database of this cluster, as its superuser.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(self.socket_dir())
            .username(SUPERUSER)
            .database(database)
            .log_statements(tracing::log::LevelFilter::Debug)
    }

    /// Connection options for a database of this cluster, as the runtime role `lca_runtime`
    /// (request connections; see the module documentation for why there is no password).
    pub fn runtime_connect_options(&self, database: &str) -> PgConnectOptions {
        self.connect_options(database).username(super::RUNTIME_ROLE)
    }

    /// A URL for `database` on this cluster (for child processes and `psql`).
    pub fn url(&self, database: &str) -> String {
        self.url_as(database, SUPERUSER)
    }

    /// A URL for `database` on this cluster logging in as `lca_runtime`.
    pub fn runtime_url(&self, database: &str) -> String {
        self.url_as(database, super::RUNTIME_ROLE)
    }

    fn url_as(&self, database: &str, user: &str) -> String {
        let host: String =
            url::form_urlencoded::byte_serialize(self.socket_dir().as_os_str().as_encoded_bytes()).collect();
        format!("postgres:///{database}?host={host}&user={user}")
    }

    fn is_running(&self) -> bool {
        let status = self.command("pg_ctl").arg("status").arg("-D").arg(self.pgdata()).output();
        matches!(status, Ok(out) if out.status.success()) && self.socket_dir().join(".s.PGSQL.5432").exists()
    }

    fn init(&self) -> anyhow::Result<()> {
        for dir in [self.root.clone(), self.socket_dir()] {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
            self.chown(&dir)?;
        }
        tracing::info!(cluster = %self.root.display(), "creating the embedded PostgreSQL cluster");
        let out = self
            .command("initdb")
            .arg("-D")
            .arg(self.pgdata())
            .args(["-U", SUPERUSER, "--auth-local=trust", "--auth-host=reject", "-E", "UTF8", "--no-locale"])
            .output()
            .context("cannot run initdb")?;
        if !out.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }

    fn pg_ctl_start(&self) -> anyhow::Result<()> {
        // Unix socket only (`listen_addresses=''`), in a directory only the owner can enter.
        let options = format!(
            "-c listen_addresses='' -c unix_socket_directories='{}' -c unix_socket_permissions=0700 -c max_connections=200",
            self.socket_dir().display()
        );
        let out = self
            .command("pg_ctl")
            .arg("start")
            .arg("-w")
            .args(["-t", "60"])
            .arg("-D")
            .arg(self.pgdata())
            .arg("-l")
            .arg(self.root.join("postgres.log"))
            .arg("-o")
            .arg(options)
            .output()
            .context("cannot run pg_ctl")?;
        if !out.status.success() {
            bail!(
                "the embedded PostgreSQL cluster did not start (see {}): {}",
                self.root.join("postgres.log").display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        tracing::info!(cluster = %self.root.display(), "embedded PostgreSQL cluster started");
        Ok(())
    }

    /// Creates the application database if it is missing.
    pub async fn ensure_database(&self, database: &str) -> anyhow::Result<()> {
        let mut conn = sqlx::PgConnection::connect_with(&self.connect_options("postgres")).await?;
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database)
            .fetch_one(&mut conn)
            .await?;
        if !exists {
            // Identifiers cannot be bound; the name is ours, quote it anyway.
            let stmt = format!("CREATE DATABASE \"{}\"", database.replace('"', "\"\""));
            match sqlx::raw_sql(sqlx::AssertSqlSafe(stmt)).execute(&mut conn).await {
                Ok(_) => {}
                // Another process created it between our check and our CREATE.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
                Err(e) => return Err(e.into()),
            }
        }
        conn.close().await?;
        Ok(())
    }

    /// Stops the cluster if this process started it; a cluster we only attached to keeps
    /// running for its owner.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if !self.owned {
            return Ok(());
        }
        let out = self
            .command("pg_ctl")
            .arg("stop")
            .args(["-m", "fast", "-w"])
            .arg("-D")
            .arg(self.pgdata())
            .output()
            .context("cannot run pg_ctl")?;
        self.owned = false;
        if !out.status.success() {
            bail!("pg_ctl stop failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        tracing::info!(cluster = %self.root.display(), "embedded PostgreSQL cluster stopped");
        Ok(())
    }

    /// Starts a watchdog that stops this cluster once process `pid` has exited. The test
    /// harness uses it: a test binary cannot run code after its last test.
    pub fn stop_when_process_exits(&mut self, pid: u32) -> anyhow::Result<()> {
        if !self.owned {
            return Ok(());
        }
        let script =
            format!("while [ -d /proc/{pid} ]; do sleep 0.5; done; exec \"$0\" stop -m fast -D \"$1\" >/dev/null 2>&1");
        let mut cmd = self.command("sh");
        cmd.arg("-c").arg(script).arg(self.bin_dir.join("pg_ctl")).arg(self.pgdata());
        cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        cmd.spawn().context("cannot start the cluster watchdog")?;
        self.owned = false;
        Ok(())
    }

    /// A command for one of the server binaries (or `sh`), run as the cluster's OS user.
    fn command(&self, program: &str) -> Command {
        let path = if program == "sh" { PathBuf::from("/bin/sh") } else { self.bin_dir.join(program) };
        let mut cmd = Command::new(path);
        // The caller's working directory may be one the postgres user cannot enter.
        cmd.current_dir(if self.root.exists() { &self.root } else { Path::new("/") });
        cmd.env("LC_ALL", "C");
        if let Some((uid, gid)) = self.run_as {
            // std drops the supplementary groups of root when a uid is set.
            cmd.uid(uid.as_raw()).gid(gid.as_raw());
        }
        cmd
    }

    fn chown(&self, path: &Path) -> anyhow::Result<()> {
        if let Some((uid, gid)) = self.run_as {
            nix::unistd::chown(path, Some(uid), Some(gid))
                .with_context(|| format!("cannot give {} to the postgres user", path.display()))?;
        }
        Ok(())
    }
}

impl Drop for EmbeddedCluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::error!(error = %e, "could not stop the embedded PostgreSQL cluster");
        }
    }
}

/// Where the cluster of `data_dir` lives (see the module documentation).
fn cluster_root(data_dir: &Path, as_root: bool) -> anyhow::Result<PathBuf> {
    let link = data_dir.join("postgres");
    if !as_root {
        return Ok(link);
    }
    let id = hex::encode(&Sha256::digest(data_dir.as_os_str().as_encoded_bytes())[..8]);
    let root = Path::new(ROOT_CLUSTERS).join(id);
    fs::DirBuilder::new().recursive(true).mode(0o755).create(ROOT_CLUSTERS)?;
    match fs::read_link(&link) {
        Ok(target) if target == root => {}
        Ok(_) => {
            fs::remove_file(&link)?;
            std::os::unix::fs::symlink(&root, &link)?;
        }
        Err(_) if link.exists() => {
            bail!("{} exists and is not the link to the embedded cluster; move it away", link.display())
        }
        Err(_) => std::os::unix::fs::symlink(&root, &link)?,
    }
    Ok(root)
}

/// Finds the directory holding `initdb`, `pg_ctl` and `postgres`: `pg_config --bindir`, else
/// the newest `/usr/lib/postgresql/<version>/bin` (Debian's layout).
pub fn find_server_binaries() -> Option<PathBuf> {
    let has_all = |dir: &Path| has_server_binaries(dir);
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_all(&dir) {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_all(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn has_server_binaries(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"].iter().all(|b| dir.join(b).is_file())
}
