//! `user`: create a user (the password from standard input), issue a recovery link, set a
//! profile.

use std::io::BufRead;

use anyhow::Context;
use clap::Subcommand;

use super::output::print;
use crate::config::Config;
use crate::db::Database;
use crate::db::audit::Actor;
use crate::identity::PasswordHasher;
use crate::identity::profile::{self, Field, ProfileEdit};
use crate::{identity, tenancy};

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user; the password is read from the first line of standard input. A link to
    /// verify the address is mailed to it (through `LCA_SMTP_URL`; without it, to the log).
    Create {
        #[arg(long)]
        email: String,
        /// Read the password from standard input (required: passwords never go in arguments).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Send no verification link (the address stays unverified until one is asked for on
        /// the account page).
        #[arg(long)]
        no_verification_mail: bool,
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
    /// Set a user's profile (OIDC Core §5.1 claims). Only the fields given change; an empty
    /// value (`--locale ""`) removes one.
    SetProfile {
        #[arg(long)]
        email: String,
        #[command(flatten)]
        fields: ProfileArgs,
        #[arg(long)]
        json: bool,
    },
}

/// The fields of `user set-profile`.
#[derive(clap::Args, Debug)]
pub struct ProfileArgs {
    /// Full name (`name`), 1-200 characters.
    #[arg(long)]
    name: Option<String>,
    /// Given name(s) (`given_name`).
    #[arg(long)]
    given_name: Option<String>,
    /// Family name(s) (`family_name`).
    #[arg(long)]
    family_name: Option<String>,
    /// Shorthand name (`preferred_username`), 1-100 characters, no spaces.
    #[arg(long)]
    preferred_username: Option<String>,
    /// A BCP 47 language tag such as nl-NL (`locale`).
    #[arg(long)]
    locale: Option<String>,
    /// An IANA time zone name such as Europe/Amsterdam (`zoneinfo`).
    #[arg(long)]
    zoneinfo: Option<String>,
    /// Whether the email address is verified (`email_verified`).
    #[arg(long, action = clap::ArgAction::Set)]
    email_verified: Option<bool>,
}

impl ProfileArgs {
    fn edit(self) -> ProfileEdit {
        let field = |v: Option<String>| v.as_deref().map_or(Field::Keep, Field::from_input);
        ProfileEdit {
            name: field(self.name),
            given_name: field(self.given_name),
            family_name: field(self.family_name),
            preferred_username: field(self.preferred_username),
            locale: field(self.locale),
            zoneinfo: field(self.zoneinfo),
            email_verified: self.email_verified,
        }
    }
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
        UserCommand::Create { email, password_stdin: _, no_verification_mail, json } => {
            let password = read_password_line()?;
            let user = identity::create_user(db, hasher, &email, &password).await?;
            let verification_mailed = !no_verification_mail && mail_verification(config, db, operator, &user).await;
            let created = Created { user, verification_mailed };
            print(json, &created, || {
                let mailed = if verification_mailed { "; a verification link was mailed" } else { "" };
                format!("created user {} ({}){mailed}", created.user.email, created.user.user_id)
            })?;
        }
        UserCommand::Recover { email, tenant, json } => {
            let issued = recover_user(config, db, operator, &email, &tenant).await?;
            print(json, &issued, || {
                format!("recovery link for {email} (works once, until {}):\n{}", issued.expires_at, issued.link)
            })?;
        }
        UserCommand::SetProfile { email, fields, json } => {
            let changed = set_profile(db, operator, &email, fields.edit()).await?;
            print(json, &changed, || match changed.changed.as_slice() {
                [] => format!("the profile of {email} is unchanged"),
                fields => format!("changed {} of {email}", fields.join(", ")),
            })?;
        }
    }
    Ok(())
}

/// What `user create` prints.
#[derive(serde::Serialize)]
struct Created {
    #[serde(flatten)]
    user: identity::CreatedUser,
    /// Whether a verification link went to the address.
    verification_mailed: bool,
}

/// Mails a verification link to a new user (in English: a new account has no language yet).
/// A failure is reported and does not undo the account.
async fn mail_verification(config: &Config, db: &Database, operator: &Actor, user: &identity::CreatedUser) -> bool {
    let sent = async {
        let mailer = crate::mail::Mailer::from_config(config)?;
        match identity::verification::issue(db, config, user.user_id, operator).await? {
            Ok(issued) => {
                let lang = crate::html::text::Lang::default();
                mailer.send(crate::notify::verification_mail(lang, &issued)).await?;
                anyhow::Ok(true)
            }
            Err(_) => Ok(false),
        }
    };
    match sent.await {
        Ok(sent) => sent,
        Err(e) => {
            eprintln!("warning: no verification link was mailed to {}: {e:#}", user.email);
            false
        }
    }
}

/// `user set-profile`: any user, by email.
async fn set_profile(
    db: &Database,
    operator: &Actor,
    email: &str,
    edit: ProfileEdit,
) -> anyhow::Result<profile::Changed> {
    let mut tx = db.unscoped().await?;
    let user = crate::db::users::by_email(&mut tx, email).await?;
    tx.commit().await?;
    let no_user = || anyhow::anyhow!("no user has the email {email}");
    let user = user.ok_or_else(no_user)?;
    profile::change(db, operator, profile::Editor::Operator, user.id, &edit).await?.ok_or_else(no_user)
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
