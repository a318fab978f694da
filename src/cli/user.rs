//! `user`: create a user (the password from standard input), issue a recovery link.

use std::io::BufRead;

use anyhow::Context;
use clap::Subcommand;

use super::output::print;
use crate::config::Config;
use crate::db::Database;
use crate::db::audit::Actor;
use crate::identity::PasswordHasher;
use crate::{identity, tenancy};

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

/// Runs one `user` subcommand as `operator` and prints its result.
pub(super) async fn run(
    command: UserCommand,
    config: &Config,
    db: &Database,
    hasher: &PasswordHasher,
    operator: &Actor,
) -> anyhow::Result<()> {
    match command {
        UserCommand::Create { email, password_stdin: _, json } => {
            let password = read_password_line()?;
            let created = identity::create_user(db, hasher, &email, &password).await?;
            print(json, &created, || format!("created user {} ({})", created.email, created.user_id))?;
        }
        UserCommand::Recover { email, tenant, json } => {
            let issued = recover_user(config, db, operator, &email, &tenant).await?;
            print(json, &issued, || {
                format!("recovery link for {email} (works once, until {}):\n{}", issued.expires_at, issued.link)
            })?;
        }
    }
    Ok(())
}

/// `user recover`: the user must be a member of the tenant.
async fn recover_user(
    config: &Config,
    db: &Database,
    operator: &Actor,
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
    recovery::issue_link(db, config, operator, tenant.id, user.id).await?.ok_or_else(not_member)
}

fn read_password_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    Ok(password.to_owned())
}
