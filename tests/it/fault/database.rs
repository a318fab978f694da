//! PostgreSQL stops under load: the server on its embedded default (what a newcomer runs) keeps
//! running; what needs the database answers 503 `temporarily_unavailable` fast, pages a 503
//! page, discovery and JWKS keep answering from memory, `/readyz` says not ready; nothing is
//! half-written; started again, the same process serves again.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use laventecare_auth::db::EmbeddedCluster;
use laventecare_auth::db::embedded::{DATABASE_NAME, find_server_binaries};
use nix::sys::signal::Signal;
use sqlx::Connection as _;

use super::{Proc, assert_no_panic, until};
use crate::support::{binary, json_out, run_with_stdin};

/// Words that would mean a library's or the database's text reached a caller.
const LEAKS: &[&str] = &["sqlx", "postgres", "Postgres", "pool", "connection", "error returned", "No such file"];

/// The bound on an answer while the database is down (the brief's "fail fast").
const FAST: Duration = Duration::from_secs(2);

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Token,
    Discovery,
    Jwks,
    Page,
    Ready,
}

const KINDS: [Kind; 5] = [Kind::Token, Kind::Discovery, Kind::Jwks, Kind::Page, Kind::Ready];

#[derive(Debug)]
struct Outcome {
    kind: Kind,
    started: Instant,
    took: Duration,
    /// 0: no HTTP answer at all.
    status: u16,
    content_type: String,
    retry_after: Option<String>,
    body: String,
}

struct Load {
    base: String,
    client_id: String,
    secret: String,
    outcomes: Mutex<Vec<Outcome>>,
    stop: AtomicBool,
}

impl Load {
    async fn one(&self, http: &reqwest::Client, kind: Kind) {
        let req = match kind {
            Kind::Token => http
                .post(format!("{}/token", self.base))
                .basic_auth(&self.client_id, Some(&self.secret))
                .form(&[("grant_type", "client_credentials")]),
            Kind::Discovery => http.get(format!("{}/.well-known/openid-configuration", self.base)),
            Kind::Jwks => http.get(format!("{}/jwks", self.base)),
            // A browser opening the sign-in page: the page creates a session (a write).
            Kind::Page => http.get(format!("{}/login", self.base)).header("accept", "text/html"),
            Kind::Ready => http.get(format!("{}/readyz", self.base)),
        };
        let started = Instant::now();
        let (status, content_type, retry_after, body) = match req.send().await {
            Ok(res) => {
                let header = |name: &str| res.headers().get(name).map(|v| v.to_str().unwrap_or("").to_owned());
                let (ct, ra) = (header("content-type").unwrap_or_default(), header("retry-after"));
                (res.status().as_u16(), ct, ra, res.text().await.unwrap_or_default())
            }
            Err(_) => (0, String::new(), None, String::new()),
        };
        let took = started.elapsed();
        self.outcomes.lock().unwrap().push(Outcome { kind, started, took, status, content_type, retry_after, body });
    }

    /// Per kind, the statuses (with the slowest answer) of the requests started after `after`.
    fn summary(&self, after: Instant) -> String {
        let all = self.outcomes.lock().unwrap();
        let mut seen: std::collections::BTreeMap<String, (usize, Duration)> = Default::default();
        for o in all.iter().filter(|o| o.started >= after) {
            let e = seen.entry(format!("{:?} {}", o.kind, o.status)).or_default();
            e.0 += 1;
            e.1 = e.1.max(o.took);
        }
        format!("{seen:?}")
    }

    fn count(&self, kind: Kind, after: Instant, status: u16) -> usize {
        let all = self.outcomes.lock().unwrap();
        all.iter().filter(|o| o.kind == kind && o.started >= after && o.status == status).count()
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
    let load = Arc::new(Load {
        base: server.base.clone(),
        client_id: client["client_id"].as_str().unwrap().to_owned(),
        secret: client["client_secret"].as_str().unwrap().to_owned(),
        outcomes: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
    });
    let mut workers = Vec::new();
    for w in 0..6 {
        let load = load.clone();
        workers.push(tokio::spawn(async move {
            // A bound far above FAST: a hang shows as a slow answer, not a stuck test. Half the
            // workers keep the session cookie, so their pages load a session (a read) and the
            // others create one (a write).
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .cookie_store(w % 2 == 0)
                .build()
                .unwrap();
            let mut i = w;
            while !load.stop.load(Ordering::Relaxed) {
                load.one(&http, KINDS[i % KINDS.len()]).await;
                i += 1;
            }
        }));
    }

    // Up: everything answers 200.
    let start = Instant::now();
    until(
        Duration::from_secs(30),
        || format!("load while the database is up: {}", load.summary(start)),
        || load.count(Kind::Token, start, 200) >= 20 && KINDS.iter().all(|k| load.count(*k, start, 200) >= 3),
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
        || {
            [Kind::Token, Kind::Page, Kind::Ready].iter().all(|k| load.count(*k, down, 503) >= 5)
                && [Kind::Discovery, Kind::Jwks].iter().all(|k| load.count(*k, down, 200) >= 5)
        },
    )
    .await;
    let first_503 = {
        let all = load.outcomes.lock().unwrap();
        all.iter().filter(|o| o.status == 503 && o.kind == Kind::Token).map(|o| o.started + o.took).min().unwrap()
    };

    // Up again: the same process serves without a restart.
    let restarting = Instant::now();
    let cluster = EmbeddedCluster::start(&data, None).await.unwrap();
    let up = Instant::now();
    until(
        Duration::from_secs(20),
        || format!("recovery after the database came back: {}", load.summary(up)),
        || [Kind::Token, Kind::Page, Kind::Ready].iter().all(|k| load.count(*k, up, 200) >= 3),
    )
    .await;
    let recovered = {
        let all = load.outcomes.lock().unwrap();
        all.iter().filter(|o| o.kind == Kind::Token && o.status == 200 && o.started >= up).map(|o| o.started).min()
    };
    load.stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }

    let all = std::mem::take(&mut *load.outcomes.lock().unwrap());
    // Never a 500, never a dropped connection, whatever the moment.
    for o in &all {
        assert!(o.status == 200 || o.status == 503, "{:?} answered {}: {}", o.kind, o.status, o.body);
    }
    let slowest_down = all.iter().filter(|o| o.started >= down && o.started < restarting).map(|o| o.took).max();
    let slowest_in_flight =
        all.iter().filter(|o| o.started < down && o.started + o.took > stopping).map(|o| o.took).max();
    eprintln!(
        "fault figures: pg_ctl stop took {:?}; first token 503 {:?} after the stop began; slowest answer while down {:?}, \
         of requests in flight at the stop {:?}; first token 200 {:?} after the cluster was back ({:?} after it began \
         starting); {} requests",
        down - stopping,
        first_503.saturating_duration_since(stopping),
        slowest_down,
        slowest_in_flight,
        recovered.map(|r| r - up),
        recovered.map(|r| r - restarting),
        all.len()
    );
    for o in all.iter().filter(|o| o.started >= down && o.started < restarting) {
        assert!(o.took < FAST, "{:?} took {:?} while the database was down", o.kind, o.took);
        for word in LEAKS {
            assert!(!o.body.contains(word), "{word:?} leaked into {:?}: {}", o.kind, o.body);
        }
        match o.kind {
            Kind::Token | Kind::Ready => {
                assert_eq!(o.status, 503, "{:?}: {}", o.kind, o.body);
                let v: serde_json::Value = serde_json::from_str(&o.body).unwrap();
                assert_eq!(v["error"], "temporarily_unavailable", "{v}");
                assert!(v["request_id"].is_string(), "{v}");
                assert!(o.retry_after.as_deref().is_some_and(|r| r.parse::<u64>().is_ok_and(|s| s >= 1)), "{o:?}");
            }
            Kind::Page => {
                assert_eq!(o.status, 503, "{}", o.body);
                assert!(o.content_type.starts_with("text/html"), "a page, not {}: {}", o.content_type, o.body);
                assert!(o.retry_after.is_some(), "{o:?}");
            }
            // Served from memory: the document and the keys loaded at start.
            Kind::Discovery | Kind::Jwks => assert_eq!(o.status, 200),
        }
    }

    // Nothing half-written: every token that was answered is stored with its audit event, and
    // every stored token has exactly one (a transaction the stop cut off left neither).
    let issued: Vec<String> = all
        .iter()
        .filter(|o| o.kind == Kind::Token && o.status == 200)
        .map(|o| {
            let v: serde_json::Value = serde_json::from_str(&o.body).unwrap();
            crate::flow::claims(v["access_token"].as_str().unwrap())["jti"].as_str().unwrap().to_owned()
        })
        .collect();
    let mut conn = sqlx::PgConnection::connect_with(&cluster.connect_options(DATABASE_NAME)).await.unwrap();
    let stored: Vec<String> = sqlx::query_scalar("SELECT jti::text FROM access_tokens WHERE client_id = $1 ORDER BY 1")
        .bind(&load.client_id)
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let audited: Vec<String> = sqlx::query_scalar(
        "SELECT details->>'jti' FROM audit_events WHERE action = 'token.issued' AND details->>'client_id' = $1 ORDER BY 1",
    )
    .bind(&load.client_id)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    assert_eq!(stored, audited, "access-token rows and their audit events pair up");
    for jti in &issued {
        assert!(stored.binary_search(jti).is_ok(), "token {jti} was answered but is not stored");
    }
    eprintln!("fault figures: {} tokens answered, {} stored", issued.len(), stored.len());
    let mut verify = embedded(&data);
    verify.args(["audit", "verify", "--json"]);
    let out = run_with_stdin(verify, "");
    assert!(out.status.success(), "audit chain intact: {}", String::from_utf8_lossy(&out.stdout));

    let log = server.log();
    assert_no_panic(&log);
    let status = server.stop(Signal::SIGTERM);
    assert!(status.success(), "clean exit after the outage: {status}");
    drop(cluster);
}
