//! `tenant`: create, suspend, reactivate, require a second factor, open registration, client ID
//! metadata documents, passkey sign-in.

use clap::Subcommand;

use super::output::print;
use crate::db::Database;
use crate::db::audit::Actor;
use crate::tenancy;

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
    /// Let anyone register a public client with loopback or private-use redirect URIs at
    /// `/register?tenant=SLUG` (RFC 7591; `--off` to stop it).
    OpenRegistration {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        off: bool,
        #[arg(long)]
        json: bool,
    },
    /// Offer signing in with a passkey alone, without a password, on the login page of the
    /// tenant's clients (`--off` to stop offering it).
    PasskeySignIn {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        off: bool,
        #[arg(long)]
        json: bool,
    },
    /// Let the tenant's users sign in to clients whose client_id is the https URL of a client
    /// ID metadata document, fetched when first used (`--off` to stop it).
    ClientMetadata {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        off: bool,
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

/// Runs one `tenant` subcommand as `operator` and prints its result.
pub(super) async fn run(command: TenantCommand, db: &Database, operator: &Actor) -> anyhow::Result<()> {
    match command {
        TenantCommand::Create { slug, name, json } => {
            let created = tenancy::create_tenant_by(db, operator, &slug, &name, false).await?;
            print(json, &created, || format!("created tenant {} ({})", created.slug, created.tenant_id))?;
        }
        TenantCommand::Suspend { slug, json } => {
            let done = tenancy::set_suspended(db, operator, &slug, true).await?;
            print(json, &done, || status_line(&done))?;
        }
        TenantCommand::Reactivate { slug, json } => {
            let done = tenancy::set_suspended(db, operator, &slug, false).await?;
            print(json, &done, || status_line(&done))?;
        }
        TenantCommand::OpenRegistration { slug, off, json } => {
            let changed = tenancy::set_open_registration(db, operator, &slug, !off).await?;
            let out = serde_json::json!({ "slug": slug, "open_registration": !off, "changed": changed });
            print(json, &out, || {
                let state = if off { "does not take" } else { "takes" };
                format!("tenant {slug} {state} open client registrations")
            })?;
        }
        TenantCommand::PasskeySignIn { slug, off, json } => {
            let changed = tenancy::set_passkey_sign_in(db, operator, &slug, !off).await?;
            let out = serde_json::json!({ "slug": slug, "passkey_sign_in": !off, "changed": changed });
            print(json, &out, || {
                let state = if off { "does not offer" } else { "offers" };
                format!("tenant {slug} {state} signing in with a passkey alone")
            })?;
        }
        TenantCommand::ClientMetadata { slug, off, json } => {
            let changed = tenancy::set_allow_client_metadata_documents(db, operator, &slug, !off).await?;
            let out = serde_json::json!({ "slug": slug, "allow_client_metadata_documents": !off, "changed": changed });
            print(json, &out, || {
                let state = if off { "does not accept" } else { "accepts" };
                format!("tenant {slug} {state} clients of client ID metadata documents")
            })?;
        }
        TenantCommand::RequireMfa { slug, off, json } => {
            let done = tenancy::set_require_mfa(db, operator, &slug, !off).await?;
            print(json, &done, || {
                let state = if done.require_mfa { "requires" } else { "does not require" };
                format!("tenant {slug} {state} a second factor of its members")
            })?;
        }
    }
    Ok(())
}

fn status_line(done: &tenancy::TenantStatusChange) -> String {
    match (done.changed, done.status) {
        (true, crate::vocabulary::TenantStatus::Suspended) => {
            format!("suspended tenant {}: no logins or tokens until it is reactivated", done.slug)
        }
        (true, _) => format!("reactivated tenant {}", done.slug),
        (false, status) => format!("tenant {} was already {status}", done.slug),
    }
}
