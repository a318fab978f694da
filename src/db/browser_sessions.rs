//! The PostgreSQL store behind tower-sessions: browser sessions in `browser_sessions`, keyed
//! by the SHA-256 of the session id.
//!
//! Written here rather than taken from tower-sessions-sqlx-store, which builds on sqlx 0.8
//! while this crate uses 0.9; the store is four small statements.
//!
//! A session row records every identity the session holds (the signed-in user and a half
//! sign-in), each with the security stamp it was made under (ARCHITECTURE.md, "Security
//! stamp"). Loading refuses a session any of whose identities has a new stamp, or that is older
//! than the absolute lifetime: such a session reads as absent, so the browser starts afresh.

use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

use super::Database;
use crate::secrets::sha256;

/// Session records in PostgreSQL.
#[derive(Clone, Debug)]
pub struct PgSessionStore {
    db: Database,
    /// Absolute lifetime from the session id's issue (a sign-in issues a new one), seconds.
    max_age_secs: f64,
}

impl PgSessionStore {
    pub fn new(db: Database, max_age: std::time::Duration) -> Self {
        Self { db, max_age_secs: max_age.as_secs_f64() }
    }
}

/// The key a session is stored under (also the handle the account page names it by).
pub fn id_hash(id: &Id) -> [u8; 32] {
    sha256(id.to_string().as_bytes())
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

tokio::task_local! {
    /// Set by [`watch`] for one browser request: whether the store found the database
    /// unreachable while serving it.
    static UNREACHABLE: std::cell::Cell<bool>;
}

/// Runs a browser request (the session layer inside `request`) and says whether the store found
/// the database unreachable meanwhile. tower-sessions answers a failed save with a bare 500 and
/// the store's error reaches handlers only as text, so this is how the HTTP edge tells an
/// outage from a bug (ARCHITECTURE.md, "Cross-cutting concerns": Faults).
pub async fn watch<F: std::future::Future>(request: F) -> (F::Output, bool) {
    UNREACHABLE
        .scope(std::cell::Cell::new(false), async move {
            let out = request.await;
            (out, UNREACHABLE.with(std::cell::Cell::get))
        })
        .await
}

fn sql(e: sqlx::Error) -> session_store::Error {
    if super::is_unavailable(&e) {
        // Outside `watch` (a CLI command, a test driving the store) there is no one to tell.
        let _ = UNREACHABLE.try_with(|flag| flag.set(true));
    }
    backend(e)
}

/// Every identity recorded in the session data (see `crate::session`): the signed-in user and
/// a half sign-in (`pre_auth`: password done, second factor next), each with its security
/// stamp. An identity without a readable stamp gets the nil stamp, which no user has, so the
/// session is refused rather than trusted.
fn identities_of(record: &Record) -> (Vec<uuid::Uuid>, Vec<uuid::Uuid>) {
    let mut users = Vec::new();
    let mut stamps = Vec::new();
    for key in [SIGNED_IN_KEY, PRE_AUTH_KEY] {
        let Some(who) = record.data.get(key) else { continue };
        let field = |name: &str| who.get(name).and_then(|v| v.as_str()).and_then(|s| s.parse::<uuid::Uuid>().ok());
        // An identity whose id cannot be read is no identity; the page code never writes one.
        let Some(user) = field("user_id") else { continue };
        users.push(user);
        stamps.push(field("stamp").unwrap_or_else(uuid::Uuid::nil));
    }
    (users, stamps)
}

/// The session data keys of the signed-in user and of a half sign-in (`crate::session`).
pub const SIGNED_IN_KEY: &str = "auth";
pub const PRE_AUTH_KEY: &str = "pre_auth";

fn expiry(record: &Record) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(record.expiry_date.unix_timestamp(), 0).unwrap_or_default()
}

impl PgSessionStore {
    /// Runs `statement` with the record's values — `$1` the id's hash, `$2` the data, `$3` and
    /// `$4` the identities and their stamps, `$5` the cookie's expiry, `$6` the absolute
    /// lifetime in seconds — and returns the rows it wrote.
    async fn write(&self, statement: &'static str, record: &Record) -> session_store::Result<u64> {
        let data = serde_json::to_value(&record.data).map_err(backend)?;
        let (users, stamps) = identities_of(record);
        let mut tx = self.db.unscoped().await.map_err(sql)?;
        let written = sqlx::query(statement)
            .bind(id_hash(&record.id).as_slice())
            .bind(data)
            .bind(&users)
            .bind(&stamps)
            .bind(expiry(record))
            .bind(self.max_age_secs)
            .execute(tx.conn())
            .await
            .map_err(sql)?
            .rows_affected();
        tx.commit().await.map_err(sql)?;
        Ok(written)
    }
}

#[async_trait::async_trait]
impl SessionStore for PgSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        const INSERT: &str = "INSERT INTO browser_sessions (id_hash, data, user_ids, stamps, expires_at) \
             VALUES ($1, $2, $3, $4, LEAST($5, now() + make_interval(secs => $6))) ON CONFLICT (id_hash) DO NOTHING";
        // A 128-bit random id never collides in practice; if it does, draw another.
        while self.write(INSERT, record).await? != 1 {
            record.id = Id::default();
        }
        Ok(())
    }

    /// Updates an existing record only: a request still in flight when the session was ended
    /// (sign-out, an administrator ending it) must not bring it back.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        const UPDATE: &str = "UPDATE browser_sessions SET data = $2, user_ids = $3, stamps = $4, \
             expires_at = LEAST($5, created_at + make_interval(secs => $6)) WHERE id_hash = $1";
        self.write(UPDATE, record).await.map(|_| ())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let mut tx = self.db.unscoped().await.map_err(sql)?;
        let row: Option<(serde_json::Value, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
            "SELECT data, expires_at FROM browser_sessions WHERE id_hash = $1 AND expires_at > now() \
                 AND created_at > now() - make_interval(secs => $2) AND lca_identities_current(user_ids, stamps)",
        )
        .bind(id_hash(id).as_slice())
        .bind(self.max_age_secs)
        .fetch_optional(tx.conn())
        .await
        .map_err(sql)?;
        tx.commit().await.map_err(sql)?;
        let Some((data, expires_at)) = row else { return Ok(None) };
        let data = serde_json::from_value(data).map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let expiry_date = time::OffsetDateTime::from_unix_timestamp(expires_at.timestamp()).map_err(backend)?;
        Ok(Some(Record { id: *id, data, expiry_date }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let mut tx = self.db.unscoped().await.map_err(sql)?;
        sqlx::query("DELETE FROM browser_sessions WHERE id_hash = $1")
            .bind(id_hash(id).as_slice())
            .execute(tx.conn())
            .await
            .map_err(sql)?;
        tx.commit().await.map_err(sql)
    }
}

/// Ends every session that holds a user (signed in or halfway) except `keep` (a session
/// hash); returns how many ended.
pub async fn end_for_user(tx: &mut super::Tx, user_id: uuid::Uuid, keep: Option<&[u8]>) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM browser_sessions WHERE user_ids @> ARRAY[$1] AND ($2::bytea IS NULL OR id_hash <> $2)")
        .bind(user_id)
        .bind(keep)
        .execute(tx.conn())
        .await?
        .rows_affected())
}

/// One of a user's sessions, for the account page.
#[derive(Debug, Clone)]
pub struct UserSession {
    /// The stored hash: a handle the user may name to end it (never the cookie's value).
    pub handle: Vec<u8>,
    pub data: serde_json::Value,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// The live sessions of a user.
pub async fn of_user(tx: &mut super::Tx, user_id: uuid::Uuid) -> Result<Vec<UserSession>, sqlx::Error> {
    let rows: Vec<(Vec<u8>, serde_json::Value, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT id_hash, data, expires_at FROM browser_sessions WHERE user_ids @> ARRAY[$1] AND expires_at > now() \
         AND lca_identities_current(user_ids, stamps) ORDER BY expires_at DESC LIMIT 50",
    )
    .bind(user_id)
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.into_iter().map(|(handle, data, expires_at)| UserSession { handle, data, expires_at }).collect())
}

/// Ends one session of a user, named by its handle.
pub async fn end_one(tx: &mut super::Tx, user_id: uuid::Uuid, handle: &[u8]) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM browser_sessions WHERE user_ids @> ARRAY[$1] AND id_hash = $2")
        .bind(user_id)
        .bind(handle)
        .execute(tx.conn())
        .await?
        .rows_affected()
        == 1)
}
