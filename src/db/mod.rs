//! The database: the embedded or external PostgreSQL server, the two pools, and the scoped
//! transactions that are the only way request code reaches tenant data.
//!
//! Errors here are `sqlx::Error` (data code speaks the database's language); the HTTP edge
//! turns them into opaque `server_error`s.
//!
//! Two roles (DESIGN.md, "Storage and Row Level Security"):
//! - the *owner* (the login of `DATABASE_URL`) runs migrations and owns the tables;
//! - the *runtime* role `lca_runtime` (no BYPASSRLS, owns nothing) is what every request runs
//!   as: each pooled connection steps down to it with `SET ROLE` when it is opened.

pub mod audit;
pub mod clients;
pub mod consents;
pub mod device;
pub mod embedded;
pub mod grants;
pub mod janitor;
pub mod keys;
pub mod memberships;
pub mod mfa;
pub mod recovery;
pub mod sessions;
pub mod tenants;
pub mod throttle;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, PgPool, Postgres, Transaction};
use uuid::Uuid;

pub use embedded::EmbeddedCluster;

use crate::master_key::AuditKey;

/// The role request paths run as. Created by the first migration.
pub const RUNTIME_ROLE: &str = "lca_runtime";

/// Migrations embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Handles to the database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Database {
    owner: PgPool,
    runtime: PgPool,
    /// The audit chain's MAC key, handed to every transaction (see [`Database::with_audit_key`]).
    audit_key: Option<Arc<AuditKey>>,
}

/// Where to connect.
#[derive(Clone, Debug)]
pub struct ConnectTarget {
    /// Owner rights: migrations.
    pub owner: PgConnectOptions,
    /// Login for the runtime pool; the owner's login when `None`.
    pub runtime: Option<PgConnectOptions>,
    /// Upper bound of the runtime pool.
    pub max_connections: u32,
}

impl Database {
    /// Opens both pools. Connections are made lazily, so a server can start (and answer
    /// `/healthz`) before the database is reachable.
    pub fn connect_lazy(target: &ConnectTarget) -> Self {
        let owner = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(target.owner.clone());
        let runtime = PgPoolOptions::new()
            .max_connections(target.max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    // Every request connection steps down to the runtime role before first use.
                    sqlx::query("SET ROLE lca_runtime").execute(conn).await?;
                    Ok(())
                })
            })
            .connect_lazy_with(target.runtime.clone().unwrap_or_else(|| target.owner.clone()));
        Self { owner, runtime, audit_key: None }
    }

    /// This handle with the audit chain's key: every transaction it opens carries the key to
    /// `audit::append`, which refuses to write without one (fail closed). Set once where the
    /// application state or a CLI command builds the database, never derived per append.
    pub fn with_audit_key(mut self, key: Arc<AuditKey>) -> Self {
        self.audit_key = Some(key);
        self
    }

    /// Applies pending migrations as the owner. Serialised across processes by sqlx's
    /// advisory lock, so `serve` and a CLI command may both call it.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        MIGRATOR.run(&self.owner).await
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.runtime).await.map(|_| ())
    }

    /// A transaction for one tenant: Row Level Security shows and accepts only that tenant's
    /// rows. The setting is transaction-local, so the pooled connection carries no tenant into
    /// the next request.
    pub async fn tenant(&self, tenant_id: Uuid) -> Result<Tx, sqlx::Error> {
        self.scoped(Some(tenant_id), None).await
    }

    /// A transaction acting for one user on their own record (account pages, user creation).
    pub async fn user(&self, user_id: Uuid) -> Result<Tx, sqlx::Error> {
        self.scoped(None, Some(user_id)).await
    }

    /// A transaction for a tenant and one of its users.
    pub async fn tenant_and_user(&self, tenant_id: Uuid, user_id: Uuid) -> Result<Tx, sqlx::Error> {
        self.scoped(Some(tenant_id), Some(user_id)).await
    }

    /// A transaction with no tenant: tenant tables read as empty; only the narrow
    /// `SECURITY DEFINER` lookups (see `migrations/*_lookups.sql`) return anything.
    pub async fn unscoped(&self) -> Result<Tx, sqlx::Error> {
        self.scoped(None, None).await
    }

    async fn scoped(&self, tenant_id: Option<Uuid>, user_id: Option<Uuid>) -> Result<Tx, sqlx::Error> {
        let mut tx = self.runtime.begin().await?;
        if tenant_id.is_some() || user_id.is_some() {
            sqlx::query("SELECT set_config('app.tenant_id', $1, true), set_config('app.user_id', $2, true)")
                .bind(tenant_id.map(|t| t.to_string()).unwrap_or_default())
                .bind(user_id.map(|u| u.to_string()).unwrap_or_default())
                .execute(&mut *tx)
                .await?;
        }
        Ok(Tx { inner: tx, tenant_id, audit_key: self.audit_key.clone() })
    }

    /// Takes the session-level advisory lock `key` on a connection of its own, if no other
    /// session holds it. The lock lasts until [`SessionLock::release`], or until the
    /// connection ends (a process that dies releases it too).
    pub async fn try_session_lock(&self, key: i64) -> Result<Option<SessionLock>, sqlx::Error> {
        // Detached from the pool: the lock must never travel with a pooled connection into
        // someone else's hands.
        let mut conn = self.runtime.acquire().await?.detach();
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(key).fetch_one(&mut conn).await?;
        if locked {
            Ok(Some(SessionLock { conn, key }))
        } else {
            conn.close().await.ok();
            Ok(None)
        }
    }

    /// Closes both pools.
    pub async fn close(&self) {
        self.runtime.close().await;
        self.owner.close().await;
    }
}

/// A scoped transaction (see [`Database::tenant`]). Dropped without [`Tx::commit`], it rolls
/// back.
#[derive(Debug)]
pub struct Tx {
    inner: Transaction<'static, Postgres>,
    tenant_id: Option<Uuid>,
    audit_key: Option<Arc<AuditKey>>,
}

impl Tx {
    /// The tenant this transaction was opened for.
    pub fn tenant_id(&self) -> Option<Uuid> {
        self.tenant_id
    }

    /// Moves the transaction to another tenant, for one action that spans a user's tenants
    /// (a password change ends the user's token families in each).
    pub async fn switch_tenant(&mut self, tenant_id: Uuid) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
            .bind(tenant_id.to_string())
            .execute(&mut *self.inner)
            .await?;
        self.tenant_id = Some(tenant_id);
        Ok(())
    }

    /// Lets the transaction act on one user's own record too (a recovery link, found in its
    /// tenant, then sets that user's password).
    pub async fn switch_user(&mut self, user_id: Uuid) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT set_config('app.user_id', $1, true)")
            .bind(user_id.to_string())
            .execute(&mut *self.inner)
            .await?;
        Ok(())
    }

    /// The key `audit::append` MACs rows with, if the database was given one.
    pub(crate) fn audit_key(&self) -> Option<&AuditKey> {
        self.audit_key.as_deref()
    }

    /// The connection, for the query functions of this module's children.
    pub(crate) fn conn(&mut self) -> &mut sqlx::PgConnection {
        &mut self.inner
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.inner.commit().await
    }
}

/// A session-level advisory lock held on its own connection (see
/// [`Database::try_session_lock`]). Dropped, it closes the connection, which releases it.
#[derive(Debug)]
pub struct SessionLock {
    conn: sqlx::PgConnection,
    key: i64,
}

impl SessionLock {
    /// Releases the lock and closes its connection.
    pub async fn release(mut self) {
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)").bind(self.key).execute(&mut self.conn).await;
        let _ = self.conn.close().await;
    }
}

/// The SQLSTATE of a database error, if it is one.
pub fn sqlstate(err: &sqlx::Error) -> Option<String> {
    match err {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// The name of the violated constraint, for a unique violation (SQLSTATE 23505).
pub fn unique_violation(err: &sqlx::Error) -> Option<String> {
    match err {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            Some(db.constraint().unwrap_or_default().to_owned())
        }
        _ => None,
    }
}

/// The database of a configuration, with the embedded cluster when there is one (stopping it
/// is the caller's, by dropping it or calling [`EmbeddedCluster::stop`]).
pub async fn open(config: &crate::config::Config) -> anyhow::Result<(Database, Option<EmbeddedCluster>)> {
    use anyhow::Context as _;
    match &config.database {
        crate::config::DatabaseConfig::External { url, runtime_url } => {
            let owner: PgConnectOptions = url.parse().context("DATABASE_URL is not a valid PostgreSQL URL")?;
            let runtime = match runtime_url {
                Some(u) => Some(u.parse().context("DATABASE_RUNTIME_URL is not a valid PostgreSQL URL")?),
                None => None,
            };
            let target = ConnectTarget { owner, runtime, max_connections: config.db_max_connections };
            Ok((Database::connect_lazy(&target), None))
        }
        crate::config::DatabaseConfig::Embedded => {
            let cluster = EmbeddedCluster::start(&config.data_dir, config.pg_bindir.as_deref()).await?;
            cluster.ensure_database(embedded::DATABASE_NAME).await?;
            let target = ConnectTarget {
                owner: cluster.connect_options(embedded::DATABASE_NAME),
                runtime: None,
                max_connections: config.db_max_connections,
            };
            Ok((Database::connect_lazy(&target), Some(cluster)))
        }
    }
}
