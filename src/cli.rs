//! The command line (DESIGN.md, "Command line"). Every provisioning command takes `--json` and
//! then prints one JSON object; each works whether or not a server runs on the same data
//! directory or database.

mod audit;

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::config::{Config, ConfigArgs};
use crate::db::Database;
use crate::db::audit::Actor;
use crate::identity::PasswordHasher;
use crate::master_key::{AuditKey, MasterKey};
use crate::tenancy::Role;
use crate::{AppState, bootstrap, clients, identity, tenancy};

pub use self::audit::AuditCommand;

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

#[derive(Subcommand, Debug)]
pub enum JanitorCommand {
    /// Delete expired sessions, codes, token families and retired keys once, in batches;
    /// does nothing while another janitor (a server's, or another run) is working.
    Run {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Replace the signing key of every algorithm. Tokens signed before keep validating: the
    /// retired keys stay in the JWKS until those tokens have expired.
    Rotate {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Create a tenant.
    Create {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Suspend a tenant: no logins, no tokens, until it is reactivated.
    Suspend {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        json: bool,
    },
    /// Reactivate a suspended tenant.
    Reactivate {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        json: bool,
    },
    /// Require a second factor of every member of a tenant (`--off` to stop requiring it).
    RequireMfa {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        off: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user; the password is read from the first line of standard input.
    Create {
        #[arg(long)]
        email: String,
        /// Read the password from standard input (required: passwords never go in arguments).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[arg(long)]
        json: bool,
    },
    /// Issue a one-time recovery link for a member of a tenant: with it they set a new
    /// password and enrol their second factor again.
    Recover {
        #[arg(long)]
        email: String,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum MemberCommand {
    /// Make a user a member of a tenant.
    Add {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = ["admin", "editor", "viewer"])]
        role: String,
        #[arg(long)]
        json: bool,
    },
    /// Change a member's role.
    SetRole {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = ["admin", "editor", "viewer"])]
        role: String,
        #[arg(long)]
        json: bool,
    },
    /// End a membership, and every token family of that user in the tenant.
    Remove {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Register a client. A confidential client's secret is printed once; only its hash is kept.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        /// authorization_code, refresh_token, client_credentials or device_code.
        #[arg(long = "grant", num_args = 1.., required = true)]
        grants: Vec<String>,
        /// A public client (no secret; PKCE required).
        #[arg(long)]
        public: bool,
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// The service account's role (client_credentials).
        #[arg(long, value_parser = ["admin", "editor", "viewer"])]
        role: Option<String>,
        /// Let users choose among their tenants at login.
        #[arg(long)]
        multi_tenant: bool,
        /// Every login through this client needs a second factor.
        #[arg(long)]
        require_mfa: bool,
        #[arg(long, value_parser = ["RS256", "ES256", "EdDSA"])]
        signing_alg: Option<String>,
        /// client_secret_basic (default) or client_secret_post.
        #[arg(long, value_parser = ["client_secret_basic", "client_secret_post"])]
        auth_method: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Change a client's name or redirect URIs; each list given replaces the registered one.
    Update {
        #[arg(long)]
        client_id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Give a confidential client a new secret (printed once); the old one stops working.
    RotateSecret {
        #[arg(long)]
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a client and end every token it was issued.
    Delete {
        #[arg(long)]
        client_id: String,
        #[arg(long)]
        json: bool,
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
    let config = Arc::new(config);
    // The audit key is derived once, here; every transaction of `db` carries it to the appends.
    let master_key = Arc::new(MasterKey::load(&config)?);
    let (db, cluster) = crate::db::open(&config).await?;
    let audit_key = Arc::new(master_key.audit_key());
    let db = db.with_audit_key(audit_key.clone());
    let outcome = run_with(command, &config, &db, (&master_key, &audit_key)).await;
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
        Command::Serve => {
            serve(config.clone(), db.clone(), master_key.clone(), hasher).await?;
        }
        Command::Migrate => {
            eprintln!("migrations applied");
        }
        Command::Tenant { command: TenantCommand::Create { slug, name, json } } => {
            let created = tenancy::create_tenant_by(db, &operator, &slug, &name, false).await?;
            print(json, &created, || format!("created tenant {} ({})", created.slug, created.tenant_id))?;
        }
        Command::Tenant { command: TenantCommand::Suspend { slug, json } } => {
            let done = tenancy::set_suspended(db, &operator, &slug, true).await?;
            print(json, &done, || status_line(&done))?;
        }
        Command::Tenant { command: TenantCommand::Reactivate { slug, json } } => {
            let done = tenancy::set_suspended(db, &operator, &slug, false).await?;
            print(json, &done, || status_line(&done))?;
        }
        Command::Tenant { command: TenantCommand::RequireMfa { slug, off, json } } => {
            let done = tenancy::set_require_mfa(db, &operator, &slug, !off).await?;
            print(json, &done, || {
                let state = if done.require_mfa { "requires" } else { "does not require" };
                format!("tenant {slug} {state} a second factor of its members")
            })?;
        }
        Command::User { command: UserCommand::Create { email, password_stdin: _, json } } => {
            let password = read_password_line()?;
            let created = identity::create_user(db, &hasher, &email, &password).await?;
            print(json, &created, || format!("created user {} ({})", created.email, created.user_id))?;
        }
        Command::User { command: UserCommand::Recover { email, tenant, json } } => {
            let issued = recover_user(config, db, &email, &tenant).await?;
            print(json, &issued, || {
                format!("recovery link for {email} (works once, until {}):\n{}", issued.expires_at, issued.link)
            })?;
        }
        Command::Member { command: MemberCommand::Add { tenant, email, role, json } } => {
            let role: Role = role.parse()?;
            let added = tenancy::add_member_by(db, &operator, &tenant, &email, role).await?;
            print(json, &added, || format!("{email} is now {role} of {tenant}"))?;
        }
        Command::Member { command: MemberCommand::SetRole { tenant, email, role, json } } => {
            let role: Role = role.parse()?;
            let changed = tenancy::set_role(db, &operator, &tenant, &email, role).await?;
            print(json, &changed, || format!("{email} is now {role} of {tenant} (was {})", changed.previous_role))?;
        }
        Command::Member { command: MemberCommand::Remove { tenant, email, json } } => {
            let removed = tenancy::remove_member(db, &operator, &tenant, &email).await?;
            print(json, &removed, || {
                format!("{email} is no longer a member of {tenant}; {} token families ended", removed.families_revoked)
            })?;
        }
        Command::Audit { command: AuditCommand::Verify { tenant, file: None, against, json } } => {
            return audit::audit_verify(db, audit_key, tenant.as_deref(), against.as_ref(), json).await;
        }
        Command::Audit { command: AuditCommand::Verify { file: Some(file), against, json, .. } } => {
            return audit::audit_verify_file(&file, audit_key, against.as_ref(), json);
        }
        Command::Audit { command: AuditCommand::Export { tenant, output, json } } => {
            audit::audit_export(db, &tenant, output.as_deref(), json).await?;
        }
        Command::Janitor { command: JanitorCommand::Run { json } } => {
            let report = crate::janitor::run_once(db, config.janitor.batch_size).await?;
            print(json, &report, || match report.message {
                Some(message) => message.to_owned(),
                None => {
                    let lines: Vec<String> = report
                        .sweeps
                        .iter()
                        .map(|s| format!("  {}: {} rows in {} batches", s.sweep, s.deleted, s.batches))
                        .collect();
                    format!("removed {} rows in {} ms:\n{}", report.deleted, report.elapsed_ms, lines.join("\n"))
                }
            })?;
        }
        Command::Keys { command: KeysCommand::Rotate { json } } => {
            let policy = crate::tokens::KeyRotationPolicy::default();
            let report = crate::tokens::rotate_signing_keys_by(db, &operator, master_key, &policy).await?;
            print(json, &report, || {
                let created: Vec<String> = report.created.iter().map(|k| format!("{} {}", k.alg, k.kid)).collect();
                format!("new signing keys:\n  {}\n(running servers pick them up within a minute)", created.join("\n  "))
            })?;
        }
        Command::Client {
            command:
                ClientCommand::Create {
                    tenant,
                    name,
                    grants,
                    public,
                    redirect_uris,
                    post_logout_redirect_uris,
                    role,
                    multi_tenant,
                    require_mfa,
                    signing_alg,
                    auth_method,
                    json,
                },
        } => {
            let role = role.map(|r| r.parse::<Role>()).transpose()?;
            let created = clients::create_client_by(
                db,
                &operator,
                clients::ClientRequest {
                    tenant,
                    name,
                    grants,
                    public,
                    redirect_uris,
                    post_logout_redirect_uris,
                    role,
                    multi_tenant,
                    require_mfa,
                    signing_alg,
                    auth_method,
                },
            )
            .await?;
            print(json, &created, || match &created.client_secret {
                Some(secret) => format!(
                    "client_id:     {}\nclient_secret: {}\n(the secret is shown only now)",
                    created.client_id,
                    secret.expose()
                ),
                None => format!("client_id: {} (public client)", created.client_id),
            })?;
        }
        Command::Client {
            command: ClientCommand::Update { client_id, name, redirect_uris, post_logout_redirect_uris, json },
        } => {
            let update = clients::ClientUpdate {
                client_id,
                name,
                redirect_uris: (!redirect_uris.is_empty()).then_some(redirect_uris),
                post_logout_redirect_uris: (!post_logout_redirect_uris.is_empty()).then_some(post_logout_redirect_uris),
            };
            let updated = clients::update_client(db, &operator, update).await?;
            print(json, &updated, || {
                format!("updated {} of client {}", updated.changed.join(", "), updated.client_id)
            })?;
        }
        Command::Client { command: ClientCommand::RotateSecret { client_id, json } } => {
            let rotated = clients::rotate_secret(db, &operator, &client_id).await?;
            print(json, &rotated, || {
                format!(
                    "client_id:     {}\nclient_secret: {}\n(the secret is shown only now; the old one no longer works)",
                    rotated.client_id,
                    rotated.client_secret.expose()
                )
            })?;
        }
        Command::Client { command: ClientCommand::Delete { client_id, json } } => {
            let deleted = clients::delete_client(db, &operator, &client_id).await?;
            print(json, &deleted, || {
                format!(
                    "deleted client {}; {} token families and {} access tokens ended",
                    deleted.client_id, deleted.families_revoked, deleted.access_tokens_revoked
                )
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `user recover`: the user must be a member of the tenant.
async fn recover_user(
    config: &Config,
    db: &Database,
    email: &str,
    slug: &str,
) -> anyhow::Result<crate::identity::recovery::IssuedLink> {
    use crate::identity::recovery;
    let tenant = tenancy::find_tenant(db, slug).await?;
    let mut tx = db.unscoped().await?;
    let user = crate::db::users::by_email(&mut tx, email).await?;
    tx.commit().await?;
    let not_member = || anyhow::anyhow!("{email} is not a member of {slug}");
    let user = user.ok_or_else(not_member)?;
    recovery::issue_link(db, config, &operator(), tenant.id, user.id).await?.ok_or_else(not_member)
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

fn status_line(done: &tenancy::TenantStatusChange) -> String {
    match (done.changed, done.status) {
        (true, crate::db::enums::TenantStatus::Suspended) => {
            format!("suspended tenant {}: no logins or tokens until it is reactivated", done.slug)
        }
        (true, _) => format!("reactivated tenant {}", done.slug),
        (false, status) => format!("tenant {} was already {status}", done.slug),
    }
}

/// `serve`: bootstrap, then the HTTP server until SIGINT or SIGTERM; in-flight requests finish.
async fn serve(
    config: Arc<Config>,
    db: Database,
    master_key: Arc<MasterKey>,
    passwords: PasswordHasher,
) -> anyhow::Result<()> {
    if let Some(done) = bootstrap::run(&db, &passwords, &config).await? {
        let mut out = std::io::stdout().lock();
        writeln!(out, "Created the platform tenant and its admin {}.", done.admin_email)?;
        if let Some(password) = &done.generated_password {
            writeln!(out, "One-time password (shown only now): {}", password.expose())?;
        }
        out.flush()?;
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(listen = %config.listen, issuer = %config.issuer, "serving");
    eprintln!("LaventeCare Auth listening on http://{}", config.listen);
    let state = AppState::new(config.clone(), db, master_key).await?;
    let state = AppState { passwords, ..state };
    let (stop_reloader, stopped) = tokio::sync::oneshot::channel::<()>();
    let reloader = crate::tokens::spawn_reloader(state.keys.clone(), crate::tokens::DEFAULT_RELOAD_INTERVAL, async {
        let _ = stopped.await;
    });
    let (stop_janitor, janitor_stopped) = tokio::sync::oneshot::channel::<()>();
    let janitor = config.janitor.interval.map(|interval| {
        crate::janitor::spawn(state.db.clone(), interval, config.janitor.batch_size, async move {
            let _ = janitor_stopped.await;
        })
    });
    let app = crate::app(state);
    axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    let _ = stop_reloader.send(());
    let _ = reloader.await;
    let _ = stop_janitor.send(());
    if let Some(janitor) = janitor {
        let _ = janitor.await;
    }
    tracing::info!("server stopped");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        tracing::error!("cannot install signal handlers; stop the server with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown requested");
}

fn read_password_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    Ok(password.to_owned())
}

fn print<T: Serialize>(json: bool, value: &T, human: impl FnOnce() -> String) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, value)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", human())?;
    }
    Ok(())
}
