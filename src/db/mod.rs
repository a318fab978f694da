//! The database: the embedded or external PostgreSQL server, the two pools, and the scoped
//! transactions that are the only way request code reaches tenant data.
//!
//! Errors here are `sqlx::Error` (data code speaks the database's language); the HTTP edge
//! turns them into opaque `server_error`s.
//!
//! Two logins (ARCHITECTURE.md, "Database logins and Row Level Security"):
//! - the *owner* (the login of `DATABASE_URL`, the superuser of the embedded cluster) runs
//!   migrations and owns the tables. Its pool also runs the few writes the request path may
//!   not do (tenants, signing keys), stepped down to `lca_operator` ([`Database::operator`]);
//! - the *runtime* role `lca_runtime` (`LOGIN NOINHERIT`, no BYPASSRLS, not a superuser, owns
//!   nothing, member of nothing) is what every request connection logs in as. Its session user
//!   is `lca_runtime` itself, so `RESET ROLE` and `SET ROLE` cannot climb out of it; a
//!   `SET ROLE` from an owner login could be undone by any SQL on that connection. Every new
//!   request connection is checked ([`runtime_login_problem`]) and refused if it is anything
//!   else, so a misconfigured login fails closed instead of running requests with more rights.

pub mod access_tokens;
pub mod audit;
pub mod authorization_codes;
pub mod browser_sessions;
pub mod clients;
pub mod consents;
pub mod device_grants;
pub mod dpop_proofs;
pub mod email_verifications;
pub mod embedded;
pub mod families;
pub mod invitations;
pub mod janitor;
pub mod logout_notices;
pub mod memberships;
pub mod mfa;
pub mod passkeys;
pub mod password_resets;
pub mod pushed_requests;
pub mod rate_limits;
pub mod recovery;
pub mod refresh_tokens;
pub mod registration_tokens;
pub mod resource_servers;
pub mod signing_keys;
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

/// The role request connections log in as. Created by the first migration, made a login by
/// `migrations/0010_runtime_login.sql`.
pub const RUNTIME_ROLE: &str = "lca_runtime";

/// The role owner-pool transactions step down to for the writes the runtime role may not do
/// (`migrations/0010_runtime_login.sql`).
pub const OPERATOR_ROLE: &str = "lca_operator";

/// How long a request waits for a connection of the request pool before it answers 503
/// `temporarily_unavailable` (ARCHITECTURE.md, "Cross-cutting concerns": Faults). A database
/// that refuses connections (a server restarting, "the database system is starting up") is
/// retried until then; a request that waited this long on a healthy pool is better refused with
/// `Retry-After` than queued.
pub const REQUEST_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether `err` says the database cannot be reached right now, rather than that a query is
/// wrong: the pool found no connection in time, the connection failed or was cut, or the
/// server is shutting down, starting up or full (SQLSTATE class 08, 57P01-57P03, 53300). The
/// HTTP edge answers these with 503 `temporarily_unavailable`, everything else with 500.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")),
        _ => false,
    }
}

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
    /// Owner rights: migrations, and the [`Database::operator`] transactions.
    pub owner: PgConnectOptions,
    /// The login of `lca_runtime` for the request pool. `None` leaves the pool without a
    /// usable login: it is then tried with the owner's, which the check of every new
    /// connection refuses. Enough for `migrate`, which needs no request connection.
    pub runtime: Option<PgConnectOptions>,
    /// Upper bound of the runtime pool.
    pub max_connections: u32,
}

impl Database {
    /// Opens both pools. Connections are made lazily, so a server can start (and answer
    /// `/healthz`) before the database is reachable.
    pub fn connect_lazy(target: &ConnectTarget) -> Self {
        // Migrations and the operator transactions: few, short, and lazily opened.
        let owner = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(target.owner.clone());
        let runtime = PgPoolOptions::new()
            .max_connections(target.max_connections)
            .acquire_timeout(REQUEST_ACQUIRE_TIMEOUT)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    // Fail closed: a connection that is not a plain lca_runtime login never
                    // reaches request code (sqlx logs the error and retries until the acquire
                    // times out). One query per new connection, not per request.
                    match runtime_login_problem(conn).await? {
                        None => Ok(()),
                        Some(problem) => Err(sqlx::Error::Configuration(problem.into())),
                    }
                })
            })
            .connect_lazy_with(target.runtime.clone().unwrap_or_else(|| target.owner.clone()));
        Self { owner, runtime, audit_key: None }
    }

    /// The request pool's connections: (open, idle, most allowed), for metrics.
    pub fn pool_use(&self) -> (u32, usize, u32) {
        (self.runtime.size(), self.runtime.num_idle(), self.runtime.options().get_max_connections())
    }

    /// This handle with the audit chain's key: every transaction it opens carries the key to
    /// `audit::append`, which refuses to write without one (fail closed). Set once where the
    /// application state or a CLI command builds the database, never derived per append.
    pub fn with_audit_key(mut self, key: Arc<AuditKey>) -> Self {
        self.audit_key = Some(key);
        self
    }

    /// Checks, on a connection of its own, that the runtime pool's login is what request
    /// connections must be (see [`runtime_login_problem`]), and says what to fix if it is not.
    /// Run at start, after the migrations (which make `lca_runtime` a login).
    pub async fn verify_runtime_login(&self) -> anyhow::Result<()> {
        use anyhow::Context as _;
        let options = self.runtime.connect_options();
        let mut conn = sqlx::PgConnection::connect_with(&options).await.with_context(|| {
            format!(
                "cannot log in as {RUNTIME_ROLE} for request connections (user {:?}); with an external \
                 database, set DATABASE_RUNTIME_URL to a login of {RUNTIME_ROLE} (README, \"An external PostgreSQL\")",
                options.get_username()
            )
        })?;
        let problem = runtime_login_problem(&mut conn).await?;
        conn.close().await.ok();
        let unset = if options.get_username() == self.owner.connect_options().get_username() {
            " (DATABASE_RUNTIME_URL is not set, or logs in as the owner of DATABASE_URL)"
        } else {
            ""
        };
        match problem {
            None => Ok(()),
            Some(problem) => anyhow::bail!(
                "refusing to run with this database login for requests: {problem}{unset}. Request connections must log in as {RUNTIME_ROLE} itself \
                 (LOGIN NOINHERIT, not a superuser, no BYPASSRLS, no CREATEROLE, owning nothing, member of no \
                 role): with an external database, set DATABASE_RUNTIME_URL to a login of {RUNTIME_ROLE} \
                 (README, \"An external PostgreSQL\")"
            ),
        }
    }

    /// A connection of the request pool, with no transaction and no tenant: for diagnostics and
    /// for tests that show what SQL on a request connection can and cannot do.
    pub async fn request_connection(&self) -> Result<sqlx::pool::PoolConnection<Postgres>, sqlx::Error> {
        self.runtime.acquire().await
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

    /// A transaction in the tenant of the client `client_id`; `None` when there is no such
    /// client (or its tenant is suspended). See [`Database::in_tenant_of`].
    pub async fn for_client(&self, client_id: &str) -> Result<Option<Tx>, sqlx::Error> {
        self.in_tenant_of(TenantOf::Client(client_id)).await
    }

    /// A transaction in the tenant of what a request presents, found by its `SECURITY
    /// DEFINER` lookup (`migrations/*_lookups.sql`) with the tenant set in the same statement;
    /// `None` when nothing is found, and the transaction ends. Two round trips where a lookup
    /// transaction and then a tenant transaction took five: the protocol's requests start here.
    pub async fn in_tenant_of(&self, presented: TenantOf<'_>) -> Result<Option<Tx>, sqlx::Error> {
        // One statement per lookup, each a constant: nothing of the request is ever SQL text.
        macro_rules! scope_to {
            ($lookup:literal) => {
                concat!(
                    "SELECT set_config('app.tenant_id', coalesce(",
                    $lookup,
                    "($1)::text, ''), true) FROM set_config('app.user_id', '', true)"
                )
            };
        }
        let mut tx = self.runtime.begin().await?;
        let tenant: String = match presented {
            TenantOf::Client(id) => sqlx::query_scalar(scope_to!("lca_client_tenant")).bind(id),
            TenantOf::Code(hash) => sqlx::query_scalar(scope_to!("lca_code_tenant")).bind(hash),
            TenantOf::RefreshToken(hash) => sqlx::query_scalar(scope_to!("lca_refresh_token_tenant")).bind(hash),
            TenantOf::DeviceCode(hash) => sqlx::query_scalar(scope_to!("lca_device_code_tenant")).bind(hash),
            TenantOf::Invitation(hash) => sqlx::query_scalar(scope_to!("lca_invitation_tenant")).bind(hash),
        }
        .fetch_one(&mut *tx)
        .await?;
        let Ok(tenant_id) = tenant.parse::<Uuid>() else { return Ok(None) };
        Ok(Some(Tx { inner: tx, tenant_id: Some(tenant_id), audit_key: self.audit_key.clone() }))
    }

    /// A transaction with no tenant: tenant tables read as empty; only the narrow
    /// `SECURITY DEFINER` lookups (see `migrations/*_lookups.sql`) return anything.
    pub async fn unscoped(&self) -> Result<Tx, sqlx::Error> {
        self.scoped(None, None).await
    }

    /// An owner-pool transaction stepped down to `lca_operator` for one tenant: for the writes
    /// request connections may not do (creating a tenant, its status and MFA policy, signing
    /// keys). `SET LOCAL ROLE` makes Row Level Security hold as in any tenant transaction, also
    /// when the owner is a superuser, and ends with the transaction. Audit rows go in the same
    /// transaction, as everywhere.
    pub async fn operator(&self, tenant_id: Uuid) -> Result<Tx, sqlx::Error> {
        self.operator_scoped(Some(tenant_id), None).await
    }

    /// [`Database::operator`] for a tenant and one of its users (bootstrap: the platform tenant
    /// and its first admin in one transaction).
    pub async fn operator_tenant_and_user(&self, tenant_id: Uuid, user_id: Uuid) -> Result<Tx, sqlx::Error> {
        self.operator_scoped(Some(tenant_id), Some(user_id)).await
    }

    /// [`Database::operator`] with no tenant: tenant tables read as empty (signing keys, which
    /// are global, before a platform tenant exists).
    pub async fn operator_unscoped(&self) -> Result<Tx, sqlx::Error> {
        self.operator_scoped(None, None).await
    }

    async fn operator_scoped(&self, tenant_id: Option<Uuid>, user_id: Option<Uuid>) -> Result<Tx, sqlx::Error> {
        let mut tx = self.owner.begin().await?;
        sqlx::query("SET LOCAL ROLE lca_operator").execute(&mut *tx).await?;
        self.scope(tx, tenant_id, user_id).await
    }

    async fn scoped(&self, tenant_id: Option<Uuid>, user_id: Option<Uuid>) -> Result<Tx, sqlx::Error> {
        let tx = self.runtime.begin().await?;
        self.scope(tx, tenant_id, user_id).await
    }

    async fn scope(
        &self,
        mut tx: Transaction<'static, Postgres>,
        tenant_id: Option<Uuid>,
        user_id: Option<Uuid>,
    ) -> Result<Tx, sqlx::Error> {
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

/// What a request presents that names its tenant (see [`Database::in_tenant_of`]): a client id,
/// or the SHA-256 of an authorization code, a refresh token or a device code.
#[derive(Debug, Clone, Copy)]
pub enum TenantOf<'a> {
    Client(&'a str),
    Code(&'a [u8]),
    RefreshToken(&'a [u8]),
    DeviceCode(&'a [u8]),
    /// An open invitation, by its token's hash (`lca_invitation_tenant`).
    Invitation(&'a [u8]),
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

    /// The tenant for a query's `tenant_id = $1`: the nil id when the transaction has none,
    /// which matches no row (and Row Level Security hides every tenant row anyway).
    pub(crate) fn tenant_or_nil(&self) -> Uuid {
        self.tenant_id.unwrap_or_default()
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

    /// Lets this transaction commit without waiting for its WAL to reach the disk
    /// (`SET LOCAL synchronous_commit = off`, this transaction only). A crash of PostgreSQL can
    /// then lose the last few hundred milliseconds of such commits, so only for writes whose
    /// loss cannot make anything valid that should not be (ARCHITECTURE.md, "Durability").
    pub async fn commit_without_flush(&mut self) -> Result<(), sqlx::Error> {
        sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *self.inner).await?;
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

/// What is wrong with `conn` as a request connection, or `None` when it is a plain
/// `lca_runtime` login: its session user is `lca_runtime` (so `RESET ROLE` cannot return to
/// anyone else), which is not a superuser, has no BYPASSRLS and no CREATEROLE (which could grant
/// it other roles), is a member of no role at all (so `SET ROLE` has nowhere to go; this also
/// catches owning the database, which makes it a member of `pg_database_owner`), and owns no
/// table, schema or function of this database.
pub async fn runtime_login_problem(conn: &mut sqlx::PgConnection) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT CASE \
           WHEN session_user <> 'lca_runtime' THEN format('the login is %I, not lca_runtime', session_user) \
           WHEN current_user <> session_user THEN format('the connection has switched to role %I', current_user) \
           WHEN r.rolsuper THEN 'lca_runtime is a superuser' \
           WHEN r.rolbypassrls THEN 'lca_runtime has BYPASSRLS' \
           WHEN r.rolcreaterole THEN 'lca_runtime has CREATEROLE' \
           WHEN m.roles IS NOT NULL THEN format('lca_runtime is a member of %s', m.roles) \
           WHEN EXISTS (SELECT 1 FROM pg_class c WHERE c.relowner = r.oid) \
             OR EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspowner = r.oid) \
             OR EXISTS (SELECT 1 FROM pg_proc p WHERE p.proowner = r.oid) \
             THEN 'lca_runtime owns objects of this database' \
         END \
         FROM pg_roles r, LATERAL ( \
           SELECT string_agg(quote_ident(o.rolname), ', ' ORDER BY o.rolname) AS roles FROM pg_roles o \
           WHERE o.oid <> r.oid AND pg_has_role(r.oid, o.oid, 'MEMBER')) m \
         WHERE r.rolname = session_user",
    )
    .fetch_optional(conn)
    .await
    .map(|problem: Option<Option<String>>| match problem {
        Some(problem) => problem,
        None => Some("the login's role is not in pg_roles".to_owned()),
    })
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
                runtime: Some(cluster.runtime_connect_options(embedded::DATABASE_NAME)),
                max_connections: config.db_max_connections,
            };
            Ok((Database::connect_lazy(&target), Some(cluster)))
        }
    }
}
