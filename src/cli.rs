//! The command line (DESIGN.md, "Command line"). Every provisioning command takes `--json` and
//! then prints one JSON object; each works whether or not a server runs on the same data
//! directory or database.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::config::{Config, ConfigArgs};
use crate::db::Database;
use crate::identity::PasswordHasher;
use crate::master_key::MasterKey;
use crate::tenancy::Role;
use crate::{AppState, bootstrap, clients, identity, tenancy};

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
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check every tenant's hash chain (or one tenant's); exits 1 at the first broken row.
    Verify {
        #[arg(long)]
        tenant: Option<String>,
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
        #[arg(long, value_parser = ["RS256", "ES256", "EdDSA"])]
        signing_alg: Option<String>,
        /// client_secret_basic (default) or client_secret_post.
        #[arg(long, value_parser = ["client_secret_basic", "client_secret_post"])]
        auth_method: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// Runs a command; the exit code says whether it worked.
pub async fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    let config = Arc::new(config);
    let (db, cluster) = crate::db::open(&config).await?;
    let outcome = run_with(command, &config, &db).await;
    db.close().await;
    if let Some(mut cluster) = cluster {
        cluster.stop()?;
    }
    outcome
}

async fn run_with(command: Command, config: &Arc<Config>, db: &Database) -> anyhow::Result<ExitCode> {
    db.migrate().await.context("database migration failed")?;
    let hasher = PasswordHasher::new();
    match command {
        Command::Serve => {
            serve(config.clone(), db.clone(), hasher).await?;
        }
        Command::Migrate => {
            eprintln!("migrations applied");
        }
        Command::Tenant { command: TenantCommand::Create { slug, name, json } } => {
            let created = tenancy::create_tenant(db, &slug, &name, false).await?;
            print(json, &created, || format!("created tenant {} ({})", created.slug, created.tenant_id))?;
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
            let added = tenancy::add_member(db, &tenant, &email, role).await?;
            print(json, &added, || format!("{email} is now {role} of {tenant}"))?;
        }
        Command::Audit { command: AuditCommand::Verify { tenant, json } } => {
            return audit_verify(db, tenant.as_deref(), json).await;
        }
        Command::Keys { command: KeysCommand::Rotate { json } } => {
            let master_key = MasterKey::load(config)?;
            let report = crate::tokens::rotate(db, &master_key, &crate::tokens::RotationPolicy::default()).await?;
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
                    signing_alg,
                    auth_method,
                    json,
                },
        } => {
            let role = role.map(|r| r.parse::<Role>()).transpose()?;
            let created = clients::create_client(
                db,
                clients::ClientRequest {
                    tenant,
                    name,
                    grants,
                    public,
                    redirect_uris,
                    post_logout_redirect_uris,
                    role,
                    multi_tenant,
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
    let actor = recovery::Actor::Operator(operator_name());
    recovery::issue_link(db, config, &actor, tenant.id, user.id, &recovery::Origin::default())
        .await?
        .ok_or_else(not_member)
}

/// Who runs the command line, for the audit log's actor.
fn operator_name() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| nix::unistd::User::from_uid(nix::unistd::getuid()).ok().flatten().map(|u| u.name))
        .unwrap_or_else(|| format!("uid:{}", nix::unistd::getuid()))
}

/// One tenant's verdict.
#[derive(Serialize)]
struct ChainReport {
    tenant: String,
    rows: usize,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    broken_at: Option<crate::db::audit::ChainBreak>,
}

/// `audit verify`: walks each tenant's chain in a transaction for that tenant.
async fn audit_verify(db: &Database, only: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let mut tx = db.unscoped().await?;
    let mut tenants = crate::db::tenants::list(&mut tx).await?;
    tx.commit().await?;
    if let Some(slug) = only {
        tenants.retain(|(_, s)| s == slug);
        if tenants.is_empty() {
            anyhow::bail!("no tenant with slug {slug:?}");
        }
    }
    let mut reports = Vec::new();
    for (id, slug) in tenants {
        let mut tx = db.tenant(id).await?;
        let rows = crate::db::audit::rows(&mut tx).await?;
        tx.commit().await?;
        let verdict = crate::db::audit::verify_chain(&rows);
        reports.push(ChainReport { tenant: slug, rows: rows.len(), ok: verdict.is_ok(), broken_at: verdict.err() });
    }
    let all_ok = reports.iter().all(|r| r.ok);
    let summary = serde_json::json!({ "ok": all_ok, "tenants": reports });
    print(json, &summary, || {
        reports
            .iter()
            .map(|r| match &r.broken_at {
                None => format!("{}: {} rows, chain intact", r.tenant, r.rows),
                Some(b) => format!("{}: BROKEN at row {}: {}", r.tenant, b.seq, b.problem),
            })
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `serve`: bootstrap, then the HTTP server until SIGINT or SIGTERM; in-flight requests finish.
async fn serve(config: Arc<Config>, db: Database, passwords: PasswordHasher) -> anyhow::Result<()> {
    let master_key = Arc::new(MasterKey::load(&config)?);
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
    let app = crate::app(state);
    axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    let _ = stop_reloader.send(());
    let _ = reloader.await;
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
