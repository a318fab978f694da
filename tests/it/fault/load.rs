//! Load for the database-outage tests: workers that loop over client_credentials token
//! requests, discovery, JWKS, the sign-in page and `/readyz`, recording every answer and how
//! long it took; and the checks of what was answered while the database was away.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgConnection;
use tokio::task::JoinHandle;

/// Words that would mean a library's or the database's text reached a caller.
const LEAKS: &[&str] = &["sqlx", "postgres", "Postgres", "pool", "connection", "error returned", "No such file"];

/// The bound on an answer while the database is away: well under the request pool's acquire
/// timeout of before (5 s).
pub const FAST: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Token,
    Discovery,
    Jwks,
    Page,
    Ready,
}

pub const KINDS: [Kind; 5] = [Kind::Token, Kind::Discovery, Kind::Jwks, Kind::Page, Kind::Ready];
/// What needs the database.
pub const NEEDS_DB: [Kind; 3] = [Kind::Token, Kind::Page, Kind::Ready];
/// What is served from memory (the document and the keys loaded at start).
pub const FROM_MEMORY: [Kind; 2] = [Kind::Discovery, Kind::Jwks];

#[derive(Debug)]
pub struct Outcome {
    pub kind: Kind,
    pub started: Instant,
    pub took: Duration,
    /// 0: no HTTP answer at all.
    pub status: u16,
    content_type: String,
    retry_after: Option<String>,
    body: String,
}

pub struct Load {
    base: String,
    pub client_id: String,
    secret: String,
    outcomes: Mutex<Vec<Outcome>>,
    stop: AtomicBool,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Load {
    /// Starts `n` workers against `base`, as the client_credentials client of `client` (the
    /// JSON `client create` printed).
    pub fn start(base: &str, client: &serde_json::Value, n: usize) -> Arc<Self> {
        let load = Arc::new(Self {
            base: base.to_owned(),
            client_id: client["client_id"].as_str().unwrap().to_owned(),
            secret: client["client_secret"].as_str().unwrap().to_owned(),
            outcomes: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            workers: Mutex::new(Vec::new()),
        });
        for w in 0..n {
            let me = load.clone();
            load.workers.lock().unwrap().push(tokio::spawn(async move {
                // A bound far above FAST: a hang shows as a slow answer, not a stuck test. Half
                // the workers keep the session cookie, so their pages load a session (a read)
                // and the others create one (a write).
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(15))
                    .cookie_store(w % 2 == 0)
                    .build()
                    .unwrap();
                let mut i = w;
                while !me.stop.load(Ordering::Relaxed) {
                    me.one(&http, KINDS[i % KINDS.len()]).await;
                    i += 1;
                }
            }));
        }
        load
    }

    async fn one(&self, http: &reqwest::Client, kind: Kind) {
        let req = match kind {
            Kind::Token => http
                .post(format!("{}/token", self.base))
                .basic_auth(&self.client_id, Some(&self.secret))
                .form(&[("grant_type", "client_credentials")]),
            Kind::Discovery => http.get(format!("{}/.well-known/openid-configuration", self.base)),
            Kind::Jwks => http.get(format!("{}/jwks", self.base)),
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

    /// Per kind and status, the count and the slowest answer of the requests started after
    /// `after` (for a timeout's message).
    pub fn summary(&self, after: Instant) -> String {
        let all = self.outcomes.lock().unwrap();
        let mut seen: std::collections::BTreeMap<String, (usize, Duration)> = Default::default();
        for o in all.iter().filter(|o| o.started >= after) {
            let e = seen.entry(format!("{:?} {}", o.kind, o.status)).or_default();
            e.0 += 1;
            e.1 = e.1.max(o.took);
        }
        format!("{seen:?}")
    }

    pub fn count(&self, kind: Kind, after: Instant, status: u16) -> usize {
        let all = self.outcomes.lock().unwrap();
        all.iter().filter(|o| o.kind == kind && o.started >= after && o.status == status).count()
    }

    /// Whether everything needing the database answered 503 at least `n` times since `after`,
    /// and what is served from memory 200.
    pub fn all_down_since(&self, after: Instant, n: usize) -> bool {
        NEEDS_DB.iter().all(|k| self.count(*k, after, 503) >= n)
            && FROM_MEMORY.iter().all(|k| self.count(*k, after, 200) >= n)
    }

    /// Whether everything answered 200 at least `n` times since `after`.
    pub fn all_up_since(&self, after: Instant, n: usize) -> bool {
        KINDS.iter().all(|k| self.count(*k, after, 200) >= n)
    }

    /// When the first answer of `kind` with `status` arrived that was asked at or after `after`.
    pub fn first(&self, kind: Kind, status: u16, after: Instant) -> Option<Instant> {
        let all = self.outcomes.lock().unwrap();
        all.iter()
            .filter(|o| o.kind == kind && o.status == status && o.started >= after)
            .map(|o| o.started + o.took)
            .min()
    }

    /// Stops the workers and returns every outcome.
    pub async fn finish(&self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        let workers = std::mem::take(&mut *self.workers.lock().unwrap());
        for w in workers {
            w.await.unwrap();
        }
        std::mem::take(&mut *self.outcomes.lock().unwrap())
    }
}

/// Never a 500, never a dropped connection, whatever the moment; and what was asked while the
/// database was away (`from..to`) and answered before it came back did so within [`FAST`], 503 `temporarily_unavailable`
/// with `Retry-After` (JSON for the API, an HTML page for a browser), without internal text,
/// while discovery and JWKS kept answering 200. Returns the slowest answer in the window.
pub fn check_outage(all: &[Outcome], from: Instant, to: Instant) -> Option<Duration> {
    for o in all {
        assert!(o.status == 200 || o.status == 503, "{:?} answered {}: {}", o.kind, o.status, o.body);
    }
    // Asked and answered while it was away: one asked just before it came back may be served.
    let window = || all.iter().filter(|o| o.started >= from && o.started + o.took < to);
    for o in window() {
        assert!(o.took < FAST, "{:?} took {:?} while the database was away", o.kind, o.took);
        for word in LEAKS {
            assert!(!o.body.contains(word), "{word:?} leaked into {:?}: {}", o.kind, o.body);
        }
        if FROM_MEMORY.contains(&o.kind) {
            assert_eq!(o.status, 200, "{:?} is served from memory", o.kind);
            continue;
        }
        assert_eq!(o.status, 503, "{:?}: {}", o.kind, o.body);
        assert!(o.retry_after.as_deref().is_some_and(|r| r.parse::<u64>().is_ok_and(|s| s >= 1)), "{o:?}");
        if o.kind == Kind::Page {
            assert!(o.content_type.starts_with("text/html"), "a page, not {}: {}", o.content_type, o.body);
        } else {
            let v: serde_json::Value = serde_json::from_str(&o.body).unwrap();
            assert_eq!(v["error"], "temporarily_unavailable", "{v}");
            assert!(v["request_id"].is_string(), "{v}");
        }
    }
    window().map(|o| o.took).max()
}

/// Nothing half-written: every token that was answered is stored with its audit event, and
/// every stored token of the client has exactly one (a transaction the outage cut off left
/// neither). Returns (answered, stored).
pub async fn check_pairs(conn: &mut PgConnection, client_id: &str, all: &[Outcome]) -> (usize, usize) {
    let issued: Vec<String> = all
        .iter()
        .filter(|o| o.kind == Kind::Token && o.status == 200)
        .map(|o| {
            let v: serde_json::Value = serde_json::from_str(&o.body).unwrap();
            crate::flow::claims(v["access_token"].as_str().unwrap())["jti"].as_str().unwrap().to_owned()
        })
        .collect();
    let stored: Vec<String> = sqlx::query_scalar("SELECT jti::text FROM access_tokens WHERE client_id = $1 ORDER BY 1")
        .bind(client_id)
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    let audited: Vec<String> = sqlx::query_scalar(
        "SELECT details->>'jti' FROM audit_events WHERE action = 'token.issued' AND details->>'client_id' = $1 ORDER BY 1",
    )
    .bind(client_id)
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert_eq!(stored, audited, "access-token rows and their audit events pair up");
    for jti in &issued {
        assert!(stored.binary_search(jti).is_ok(), "token {jti} was answered but is not stored");
    }
    (issued.len(), stored.len())
}
