//! Test support: one PostgreSQL cluster for the whole run (started by the same code as the
//! embedded default, or the server of `DATABASE_URL`), a fresh database per test, the router
//! in process, and the real binary as a child process.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use laventecare_auth::config::{Config, ConfigArgs};
use laventecare_auth::db::{self, ConnectTarget, Database, EmbeddedCluster};
use laventecare_auth::master_key::MasterKey;
use laventecare_auth::{AppState, tenancy};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

/// The shared cluster and the migrated template every test database is copied from.
struct Cluster {
    /// Owner/superuser options, database left to the caller.
    admin: PgConnectOptions,
    /// The login of `lca_runtime`, database left to the caller: what request connections use.
    runtime: PgConnectOptions,
    /// Its URL, for child processes (`DATABASE_RUNTIME_URL`); the database is replaced.
    runtime_url: RuntimeUrl,
    /// Builds a URL for a database (for child processes).
    url_base: UrlBase,
    template: String,
}

enum UrlBase {
    /// The embedded cluster's handle; its watchdog stops it when this process exits.
    Embedded(EmbeddedCluster),
    External(url::Url),
}

enum RuntimeUrl {
    /// The embedded cluster's socket, as `lca_runtime` (see `EmbeddedCluster::runtime_url`).
    Embedded,
    External(url::Url),
}

/// The password the harness gives `lca_runtime` on an external test server when
/// `DATABASE_RUNTIME_URL` does not name a login of its own (a deployment sets its own; see
/// the README, "An external PostgreSQL").
const TEST_RUNTIME_PASSWORD: &str = "lca-runtime-test-password";

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        // Its own thread and runtime: each test has its own runtime, and this runs once.
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(start_cluster())
        })
        .join()
        .expect("starting the test cluster panicked")
    })
}

async fn start_cluster() -> Cluster {
    let (admin, url_base) = match std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) {
        Some(url) => {
            let opts: PgConnectOptions = url.parse().expect("DATABASE_URL");
            (opts, UrlBase::External(url::Url::parse(&url).expect("DATABASE_URL")))
        }
        None => {
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("test-cluster");
            let mut cluster = start_embedded(&dir).await;
            cluster.stop_when_process_exits(std::process::id()).expect("cluster watchdog");
            (cluster.connect_options("postgres"), UrlBase::Embedded(cluster))
        }
    };
    let template = make_template(&admin).await;
    // The runtime login exists once the migrations have run (0010 makes lca_runtime a login).
    let (runtime, runtime_url) = match &url_base {
        UrlBase::Embedded(cluster) => (cluster.runtime_connect_options("postgres"), RuntimeUrl::Embedded),
        UrlBase::External(base) => external_runtime_login(&admin, base).await,
    };
    Cluster { admin, url_base, runtime, runtime_url, template }
}

/// The runtime login of an external test server: `DATABASE_RUNTIME_URL` if the run names one,
/// else `DATABASE_URL`'s server and user `lca_runtime` with [`TEST_RUNTIME_PASSWORD`], which the
/// harness sets (as a deployment's administrator would) unless that login already works.
async fn external_runtime_login(admin: &PgConnectOptions, base: &url::Url) -> (PgConnectOptions, RuntimeUrl) {
    if let Some(url) = std::env::var("DATABASE_RUNTIME_URL").ok().filter(|u| !u.is_empty()) {
        let opts: PgConnectOptions = url.parse().expect("DATABASE_RUNTIME_URL");
        return (opts, RuntimeUrl::External(url::Url::parse(&url).expect("DATABASE_RUNTIME_URL")));
    }
    let mut url = base.clone();
    url.set_username("lca_runtime").unwrap();
    url.set_password(Some(TEST_RUNTIME_PASSWORD)).unwrap();
    let opts: PgConnectOptions = url.as_str().parse().unwrap();
    let works = PgConnection::connect_with(&opts.clone().database("postgres")).await;
    match works {
        Ok(conn) => conn.close().await.unwrap(),
        Err(_) => {
            let mut conn = PgConnection::connect_with(&admin.clone().database("postgres")).await.unwrap();
            exec(&mut conn, &format!("ALTER ROLE lca_runtime PASSWORD '{TEST_RUNTIME_PASSWORD}'")).await.unwrap();
            conn.close().await.unwrap();
        }
    }
    (opts, RuntimeUrl::External(url))
}

/// Starts (or attaches to) the test cluster. The previous test run's watchdog may be stopping
/// it right now: then wait for it to stop and start it again.
async fn start_embedded(dir: &std::path::Path) -> EmbeddedCluster {
    for _ in 0..60 {
        let cluster = EmbeddedCluster::start(dir, None).await.expect("start the test cluster");
        match PgConnection::connect_with(&cluster.connect_options("postgres")).await {
            Ok(conn) => {
                conn.close().await.ok();
                return cluster;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    panic!("the test cluster did not come up");
}

/// Creates (once per set of migrations) a migrated database to copy tests' databases from,
/// and drops the databases earlier runs left behind.
async fn make_template(admin: &PgConnectOptions) -> String {
    let mut hash = 0xcbf29ce484222325u64;
    for m in db::MIGRATOR.iter() {
        for b in m.checksum.iter() {
            hash = (hash ^ u64::from(*b)).wrapping_mul(0x100000001b3);
        }
    }
    let template = format!("lca_tpl_{hash:016x}");
    let mut conn =
        PgConnection::connect_with(&admin.clone().database("postgres")).await.expect("connect to the test cluster");
    // One process at a time builds the template.
    sqlx::query("SELECT pg_advisory_lock(7419)").execute(&mut conn).await.unwrap();
    let leftovers: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 't\\_%'")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    for name in leftovers {
        let _ = exec(&mut conn, &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
    }
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(&template)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    if !exists {
        let building = format!("{template}_build");
        exec(&mut conn, &format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)")).await.unwrap();
        exec(&mut conn, &format!("CREATE DATABASE \"{building}\"")).await.unwrap();
        let target = ConnectTarget { owner: admin.clone().database(&building), runtime: None, max_connections: 1 };
        let database = Database::connect_lazy(&target);
        database.migrate().await.expect("migrations apply to an empty database");
        database.close().await;
        exec(&mut conn, &format!("ALTER DATABASE \"{building}\" RENAME TO \"{template}\"")).await.unwrap();
    }
    sqlx::query("SELECT pg_advisory_unlock(7419)").execute(&mut conn).await.unwrap();
    template
}

async fn exec(conn: &mut PgConnection, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(conn).await.map(|_| ())
}

/// A fresh, migrated database for one test.
pub struct TestDb {
    pub name: String,
    /// The library's handle, as the server opens it: owner pool and a request pool that logs in
    /// as `lca_runtime`.
    pub db: Database,
    owner: PgConnectOptions,
    runtime: PgConnectOptions,
}

impl TestDb {
    pub async fn new() -> Self {
        let c = cluster();
        let name = format!("t_{}", Uuid::now_v7().simple());
        let mut conn = PgConnection::connect_with(&c.admin.clone().database("postgres")).await.unwrap();
        exec(&mut conn, &format!("CREATE DATABASE \"{name}\" TEMPLATE \"{}\"", c.template)).await.unwrap();
        // Database privileges are not copied from the template (migrations/0014).
        exec(&mut conn, &format!("REVOKE TEMPORARY ON DATABASE \"{name}\" FROM PUBLIC")).await.unwrap();
        conn.close().await.unwrap();
        let owner = c.admin.clone().database(&name);
        let runtime = c.runtime.clone().database(&name);
        let target = ConnectTarget { owner: owner.clone(), runtime: Some(runtime.clone()), max_connections: 10 };
        // The key the binary derives from TEST_MASTER_KEY, so library and CLI write one chain.
        let master_key = MasterKey::load(&test_config(&[("LCA_MASTER_KEY", TEST_MASTER_KEY)])).unwrap();
        let db = Database::connect_lazy(&target).with_audit_key(Arc::new(master_key.audit_key()));
        Self { db, name, owner, runtime }
    }

    /// A URL of this database logging in as `lca_runtime`, for a child process's
    /// `DATABASE_RUNTIME_URL`.
    pub fn runtime_url(&self) -> String {
        match &cluster().runtime_url {
            RuntimeUrl::Embedded => match &cluster().url_base {
                UrlBase::Embedded(cluster) => cluster.runtime_url(&self.name),
                UrlBase::External(_) => unreachable!("an embedded runtime login on an external server"),
            },
            RuntimeUrl::External(base) => {
                let mut url = base.clone();
                url.set_path(&format!("/{}", self.name));
                url.to_string()
            }
        }
    }

    /// Points a child process at this database: `DATABASE_URL` (owner) and
    /// `DATABASE_RUNTIME_URL` (request connections), as a deployment on an external server.
    pub fn database_env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.env("DATABASE_URL", self.url()).env("DATABASE_RUNTIME_URL", self.runtime_url())
    }

    /// A URL of this database with owner rights, for a child process.
    pub fn url(&self) -> String {
        match &cluster().url_base {
            UrlBase::Embedded(cluster) => cluster.url(&self.name),
            UrlBase::External(base) => {
                let mut url = base.clone();
                url.set_path(&format!("/{}", self.name));
                url.to_string()
            }
        }
    }

    /// A connection with owner (superuser) rights: sees every row.
    pub async fn owner(&self) -> PgConnection {
        PgConnection::connect_with(&self.owner).await.unwrap()
    }

    /// A connection logged in as the runtime role, exactly as the server's request pool does
    /// (its session user is lca_runtime: no role to return to).
    pub async fn runtime(&self) -> PgConnection {
        let mut conn = PgConnection::connect_with(&self.runtime).await.unwrap();
        let who: (String, String) =
            sqlx::query_as("SELECT session_user::text, current_user::text").fetch_one(&mut conn).await.unwrap();
        assert_eq!(who, ("lca_runtime".to_owned(), "lca_runtime".to_owned()));
        conn
    }

    /// A connection as the request pool made it before issue #9: the owner's login stepped
    /// down with `SET ROLE lca_runtime` (for tests that show why that was not enough).
    pub async fn owner_stepped_down(&self) -> PgConnection {
        let mut conn = self.owner().await;
        sqlx::query("SET ROLE lca_runtime").execute(&mut conn).await.unwrap();
        conn
    }

    /// Drops the database (every connection to it is cut).
    pub async fn drop_database(&self) {
        let mut conn = PgConnection::connect_with(&cluster().admin.clone().database("postgres")).await.unwrap();
        exec(&mut conn, &format!("DROP DATABASE \"{}\" WITH (FORCE)", self.name)).await.unwrap();
    }

    /// The application state on this database.
    pub async fn state(&self) -> AppState {
        self.state_with(&[]).await
    }

    /// The application state with these settings (as environment variable names).
    pub async fn state_with(&self, vars: &[(&str, &str)]) -> AppState {
        let mut vars = vars.to_vec();
        vars.push(("LCA_MASTER_KEY", TEST_MASTER_KEY));
        let config = Arc::new(test_config(&vars));
        let master_key = Arc::new(MasterKey::load(&config).unwrap());
        AppState::new(config, self.db.clone(), master_key).await.unwrap()
    }

    /// Creates a tenant through the library.
    pub async fn tenant(&self, slug: &str) -> Uuid {
        tenancy::create_tenant(&self.db, slug, slug, false).await.unwrap().tenant_id
    }
}

/// A fixed master key for tests (32 zero bytes would do, but this reads as a key).
pub const TEST_MASTER_KEY: &str = "dGVzdC1tYXN0ZXIta2V5LXRoaXJ0eS10d28tYnl0ZXM=";

/// A configuration as the binary would build it from these variables.
pub fn test_config(vars: &[(&str, &str)]) -> Config {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Args {
        #[command(flatten)]
        config: ConfigArgs,
    }
    let mut argv = vec!["test".to_owned()];
    for (k, v) in vars {
        let flag = k.trim_start_matches("LCA_").to_lowercase().replace('_', "-");
        argv.push(format!("--{flag}={v}"));
    }
    Config::from_args(Args::try_parse_from(argv).unwrap().config).unwrap()
}

/// The `laventecare-auth` binary, with a clean environment for its settings.
pub fn binary() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_laventecare-auth"));
    for (key, _) in std::env::vars() {
        if key.starts_with("LCA_") || key.starts_with("DATABASE_") || key == "SENTRY_DSN" {
            cmd.env_remove(key);
        }
    }
    cmd.env("LCA_MASTER_KEY", TEST_MASTER_KEY);
    cmd
}

/// Runs a CLI command against `db`, feeding `stdin`.
pub fn cli(db: &TestDb, args: &[&str], stdin: &str) -> Output {
    let mut cmd = binary();
    db.database_env(&mut cmd).args(args);
    run_with_stdin(cmd, stdin)
}

pub fn run_with_stdin(mut cmd: Command, stdin: &str) -> Output {
    use std::io::Write;
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// Parses the one JSON object a `--json` command printed.
pub fn json_out(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "command failed: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(stdout.lines().count(), 1, "one line of JSON: {stdout}");
    serde_json::from_str(&stdout).unwrap()
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `serve` child process; killed when dropped.
pub struct Server {
    child: Option<Child>,
    pub base: String,
}

impl Server {
    /// Starts `serve` with `cmd`'s environment on a free port and waits for `/healthz`.
    pub async fn start(mut cmd: Command) -> Self {
        let port = free_port();
        let child = cmd
            .arg("serve")
            .env("LCA_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut server = Self { child: Some(child), base: format!("http://127.0.0.1:{port}") };
        server.wait_for_health(Duration::from_secs(90)).await;
        server
    }

    /// Waits for `/healthz`; a server that exits instead fails the test with its output.
    async fn wait_for_health(&mut self, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(format!("{}/healthz", self.base)).send().await
                && r.status().is_success()
            {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let out = self.child.take().unwrap().wait_with_output().unwrap();
                panic!("server exited with {status}: {}", String::from_utf8_lossy(&out.stderr));
            }
            assert!(std::time::Instant::now() < deadline, "server did not answer /healthz");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends a signal and waits for the process; returns its output.
    pub fn stop(mut self, signal: nix::sys::signal::Signal) -> Output {
        let child = self.child.take().unwrap();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, signal).unwrap();
        child.wait_with_output().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
