//! The database goes away over TCP (an external `DATABASE_URL`): connections are cut and new
//! ones refused, which sqlx retries until the request pool's acquire timeout. The server sits
//! behind a TCP relay to the shared test cluster, and the test "stops PostgreSQL" by closing the
//! relay, so the cluster other tests use is never touched. Every request that needs the
//! database answers 503 within the bound (before: after the 5 s acquire timeout, with 500);
//! the relay opened again, the same process serves again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::task::JoinHandle;

use super::load::{Kind, Load, check_outage, check_pairs};
use super::{Proc, assert_no_panic, until};
use crate::support::{TestDb, binary, cli, json_out};

/// Where the relay forwards to: the shared cluster's socket, or the server of `DATABASE_URL`.
#[derive(Clone, Debug)]
enum Upstream {
    Unix(String),
    Tcp(String),
}

/// A TCP relay on a fixed local port. Closed, its port refuses connections and every
/// connection through it is cut, as when a database server's host goes down.
struct Relay {
    port: u16,
    upstream: Upstream,
    accept: Mutex<Option<JoinHandle<()>>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    fn new(upstream: Upstream) -> Self {
        let port = crate::support::free_port();
        Self { port, upstream, accept: Mutex::new(None), conns: Arc::new(Mutex::new(Vec::new())) }
    }

    async fn open(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        let (upstream, conns) = (self.upstream.clone(), self.conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                conns.lock().unwrap().push(tokio::spawn(async move {
                    let _ = match &upstream {
                        Upstream::Unix(path) => match UnixStream::connect(path).await {
                            Ok(mut server) => tokio::io::copy_bidirectional(&mut client, &mut server).await,
                            Err(_) => return,
                        },
                        Upstream::Tcp(addr) => match TcpStream::connect(addr).await {
                            Ok(mut server) => tokio::io::copy_bidirectional(&mut client, &mut server).await,
                            Err(_) => return,
                        },
                    };
                }));
            }
        });
        *self.accept.lock().unwrap() = Some(accept);
    }

    /// Closes the port and cuts every connection; returns once all of them are gone.
    async fn close(&self) {
        let accept = self.accept.lock().unwrap().take().unwrap();
        accept.abort();
        let _ = accept.await;
        let conns = std::mem::take(&mut *self.conns.lock().unwrap());
        for c in conns {
            c.abort();
            let _ = c.await;
        }
    }

    /// `url` (a database of the shared cluster) through this relay.
    fn url(&self, url: &str) -> String {
        let parsed = url::Url::parse(url).unwrap();
        let query = |name: &str| parsed.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
        let user = query("user").unwrap_or_else(|| parsed.username().to_owned());
        let mut out = url::Url::parse(&format!("postgres://127.0.0.1:{}{}", self.port, parsed.path())).unwrap();
        out.set_username(&user).unwrap();
        out.set_password(parsed.password()).unwrap();
        out.to_string()
    }
}

/// The server the relay forwards to, from a test database's URL.
fn upstream_of(url: &str) -> Upstream {
    let parsed = url::Url::parse(url).unwrap();
    match parsed.query_pairs().find(|(k, _)| k == "host") {
        Some((_, dir)) => Upstream::Unix(format!("{dir}/.s.PGSQL.5432")),
        None => Upstream::Tcp(format!("{}:{}", parsed.host_str().unwrap(), parsed.port().unwrap_or(5432))),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_unreachable_over_tcp_fails_fast_and_recovers() {
    let t = TestDb::new().await;
    let relay = Relay::new(upstream_of(&t.url()));
    relay.open().await;
    json_out(&cli(&t, &["tenant", "create", "--slug", "acme", "--name", "Acme", "--json"], ""));
    let client = json_out(&cli(
        &t,
        &[
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
        ],
        "",
    ));
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = binary();
    cmd.env("DATABASE_URL", relay.url(&t.url())).env("DATABASE_RUNTIME_URL", relay.url(&t.runtime_url()));
    let server = Proc::start(cmd, &dir.path().join("server.log")).await;
    let load = Load::start(&server.base, &client, 6);

    let start = Instant::now();
    until(
        Duration::from_secs(30),
        || format!("load while the database is reachable: {}", load.summary(start)),
        || load.count(Kind::Token, start, 200) >= 20 && load.all_up_since(start, 3),
    )
    .await;

    let cutting = Instant::now();
    relay.close().await;
    let down = Instant::now();
    until(
        Duration::from_secs(30),
        || format!("answers while the database is unreachable: {}", load.summary(down)),
        || load.all_down_since(down, 3),
    )
    .await;
    let first_503 = load.first(Kind::Token, 503, cutting).unwrap();

    let reopening = Instant::now();
    relay.open().await;
    until(
        Duration::from_secs(20),
        || format!("recovery after the database came back: {}", load.summary(reopening)),
        || load.all_up_since(reopening, 3),
    )
    .await;
    let recovered = load.first(Kind::Token, 200, reopening).unwrap();
    let all = load.finish().await;

    let slowest_down = check_outage(&all, down, reopening);
    eprintln!(
        "fault figures (TCP, refused): first token 503 {:?} after the cut; slowest answer while unreachable \
         {slowest_down:?}; first token 200 {:?} after the port reopened; {} requests",
        first_503 - cutting,
        recovered - reopening,
        all.len()
    );
    let (answered, stored) = check_pairs(&mut t.owner().await, &load.client_id, &all).await;
    eprintln!("fault figures (TCP): {answered} tokens answered, {stored} stored");

    assert_no_panic(&server.log());
    assert!(server.stop(Signal::SIGTERM).success());
    relay.close().await;
}
