//! The command line (README, "Command line"; ARCHITECTURE.md, "Code map"). Every provisioning command takes `--json` and
//! then prints one JSON object; each works whether or not a server runs on the same data
//! directory or database.
//!
//! This module parses and prepares (the master key, the database, the migrations, the checks
//! every command shares); each subcommand group lives in its own module beside its clap enum.

pub mod audit;
pub mod client;
pub mod device;
pub mod janitor;
pub mod keys;
pub mod member;
mod output;
pub mod resource;
pub mod serve;
pub mod tenant;
pub mod user;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigArgs};
use crate::db::Database;
use crate::db::audit::Actor;
use crate::identity::PasswordHasher;
use crate::master_key::{AuditKey, MasterKey};

use self::audit::AuditCommand;
use self::client::ClientCommand;
use self::device::DeviceCommand;
use self::janitor::JanitorCommand;
use self::keys::KeysCommand;
use self::member::MemberCommand;
use self::tenant::TenantCommand;
use self::user::UserCommand;

/// LaventeCare Auth: a multi-tenant OpenID Connect provider.
///
/// With no DATABASE_URL it runs its own PostgreSQL cluster in the data directory.
#[derive(Parser, Debug)]
#[command(name = "laventecare-auth", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (migrates first; bootstraps an empty database).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Memberships of users in tenants.
    Member {
        #[command(subcommand)]
        command: MemberCommand,
    },
    /// Clients (relying parties and service accounts).
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// The tenant's APIs (resource servers), for resource indicators (RFC 8707).
    Resource {
        #[command(subcommand)]
        command: resource::ResourceCommand,
    },
    /// Devices (what the device grant signed in): list, revoke.
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Deleting what has expired.
    Janitor {
        #[command(subcommand)]
        command: JanitorCommand,
    },
}

/// Runs a command; the exit code says whether it worked.
pub async fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    // Checking an export needs no database: answer before one is opened (or started). It
    // needs the key the chain was made with, and must not make up a new one.
    if let Command::Audit { command: AuditCommand::Verify { file: Some(file), against, json, .. } } = &command {
        let key = MasterKey::load_existing(&config)?.audit_key();
        return audit::audit_verify_file(file, &key, against.as_ref(), *json);
    }
    // A bad certificate or key stops `serve` before anything is written: no master key, no cluster.
    let tls = match (&command, config.tls.as_ref()) {
        (Command::Serve, Some(files)) => Some(serve::tls_config(files)?),
        _ => None,
    };
    let config = Arc::new(config);
    // The audit key is derived once, here; every transaction of `db` carries it to the appends.
    let master_key = Arc::new(MasterKey::load(&config)?);
    let (db, cluster) = crate::db::open(&config).await?;
    let audit_key = Arc::new(master_key.audit_key());
    let db = db.with_audit_key(audit_key.clone());
    let outcome = run_with(command, &config, &db, (&master_key, &audit_key), tls).await;
    db.close().await;
    if let Some(mut cluster) = cluster {
        cluster.stop()?;
    }
    outcome
}

async fn run_with(
    command: Command,
    config: &Arc<Config>,
    db: &Database,
    (master_key, audit_key): (&Arc<MasterKey>, &AuditKey),
    tls: Option<rustls::ServerConfig>,
) -> anyhow::Result<ExitCode> {
    db.migrate().await.context("database migration failed")?;
    // Every other command makes request-style connections: refuse before any of them if their
    // login is not a plain lca_runtime (never fall back to the owner's).
    if !matches!(command, Command::Migrate) {
        db.verify_runtime_login().await?;
    }
    if !matches!(command, Command::Migrate | Command::Audit { .. }) {
        audit::check_master_key(db, audit_key).await?;
    }
    let hasher = PasswordHasher::new();
    let operator = operator();
    match command {
        Command::Serve => serve::run(config.clone(), db.clone(), master_key.clone(), hasher, tls).await?,
        Command::Migrate => eprintln!("migrations applied"),
        Command::Tenant { command } => tenant::run(command, db, &operator).await?,
        Command::User { command } => user::run(command, config, db, &hasher, &operator).await?,
        Command::Member { command } => member::run(command, db, &operator).await?,
        Command::Client { command } => client::run(command, db, &operator).await?,
        Command::Resource { command } => resource::run(command, db, &operator).await?,
        Command::Device { command } => device::run(command, db, &operator).await?,
        Command::Audit { command } => return audit::run(command, db, audit_key).await,
        Command::Keys { command } => keys::run(command, db, &operator, master_key).await?,
        Command::Janitor { command } => janitor::run(command, config, db).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The person running a command: the OS user ($USER, else the name of the real uid).
fn operator() -> Actor {
    let name = std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| {
        let uid = nix::unistd::getuid();
        match nix::unistd::User::from_uid(uid) {
            Ok(Some(user)) => user.name,
            _ => format!("uid:{uid}"),
        }
    });
    Actor::operator(name)
}
