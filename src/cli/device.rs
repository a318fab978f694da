//! `device`: the devices of a tenant (token families begun by the device grant, RFC 8628):
//! list them, with when and from where each last refreshed, and revoke one. The same functions
//! serve the admin API and pages (`admin::devices`).

use clap::Subcommand;
use uuid::Uuid;

use super::output::print;
use crate::admin::{self, Caller, Cursor};
use crate::db::Database;
use crate::db::audit::Actor;

#[derive(Subcommand, Debug)]
pub enum DeviceCommand {
    /// The tenant's live devices, oldest first (every page of them).
    List {
        #[arg(long)]
        tenant: String,
        /// Only this member's devices (their user id).
        #[arg(long)]
        user: Option<Uuid>,
        #[arg(long)]
        json: bool,
    },
    /// End a device's tokens: its next refresh fails and it must be paired again.
    Revoke {
        #[arg(long)]
        tenant: String,
        /// The device's family id (`device list`).
        family_id: Uuid,
        #[arg(long)]
        json: bool,
    },
}

/// Runs one `device` subcommand as `operator`, in the named tenant, and prints its result.
pub(super) async fn run(command: DeviceCommand, db: &Database, operator: &Actor) -> anyhow::Result<()> {
    match command {
        DeviceCommand::List { tenant, user, json } => {
            let caller = Caller::operator(db, &tenant, operator.clone()).await?;
            let mut devices = Vec::new();
            let mut cursor = Cursor::first(admin::page::MAX_LIMIT);
            loop {
                let page = admin::devices::list(db, &caller, user, &cursor).await?;
                devices.extend(page.items);
                match page.next_cursor {
                    Some(next) => cursor = Cursor::parse(Some(&next), Some(admin::page::MAX_LIMIT))?,
                    None => break,
                }
            }
            let out = serde_json::json!({ "tenant": tenant, "devices": devices });
            print(json, &out, || {
                let mut lines = vec![format!("{} live devices in {tenant}", devices.len())];
                for d in &devices {
                    let seen =
                        d.last_refresh_at.map_or_else(|| "never refreshed".to_owned(), |t| format!("last refresh {t}"));
                    let from = d.last_refresh_ip.as_deref().unwrap_or("-");
                    let who = d.email.as_deref().unwrap_or("-");
                    lines.push(format!(
                        "{}  {}  {who}  approved {}  {seen} from {from}",
                        d.family_id, d.client_id, d.created_at
                    ));
                }
                lines.join("\n")
            })?;
        }
        DeviceCommand::Revoke { tenant, family_id, json } => {
            let caller = Caller::operator(db, &tenant, operator.clone()).await?;
            admin::devices::revoke(db, &caller, family_id).await?;
            let out = serde_json::json!({ "tenant": tenant, "family_id": family_id, "revoked": true });
            print(json, &out, || format!("device {family_id} of {tenant} revoked: it must be paired again"))?;
        }
    }
    Ok(())
}
