//! `member`: add a user to a tenant, change their role, end the membership.

use clap::{Args, Subcommand};

use super::output::print;
use crate::db::Database;
use crate::db::audit::Actor;
use crate::tenancy;
use crate::vocabulary::Role;

#[derive(Subcommand, Debug)]
pub enum MemberCommand {
    /// Make a user a member of a tenant.
    Add(MemberRole),
    /// Change a member's role.
    SetRole(MemberRole),
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

/// A member and the role they are to have (`member add`, `member set-role`).
#[derive(Args, Debug)]
pub struct MemberRole {
    #[arg(long)]
    tenant: String,
    #[arg(long)]
    email: String,
    #[arg(long, value_parser = ["admin", "editor", "viewer"])]
    role: String,
    #[arg(long)]
    json: bool,
}

/// Runs one `member` subcommand as `operator` and prints its result.
pub(super) async fn run(command: MemberCommand, db: &Database, operator: &Actor) -> anyhow::Result<()> {
    match command {
        MemberCommand::Add(MemberRole { tenant, email, role, json }) => {
            let role: Role = role.parse()?;
            let added = tenancy::add_member_by(db, operator, &tenant, &email, role).await?;
            print(json, &added, || format!("{email} is now {role} of {tenant}"))?;
        }
        MemberCommand::SetRole(MemberRole { tenant, email, role, json }) => {
            let role: Role = role.parse()?;
            let changed = tenancy::set_role(db, operator, &tenant, &email, role).await?;
            print(json, &changed, || format!("{email} is now {role} of {tenant} (was {})", changed.previous_role))?;
        }
        MemberCommand::Remove { tenant, email, json } => {
            let removed = tenancy::remove_member(db, operator, &tenant, &email).await?;
            print(json, &removed, || {
                format!("{email} is no longer a member of {tenant}; {} token families ended", removed.families_revoked)
            })?;
        }
    }
    Ok(())
}
