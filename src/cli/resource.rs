//! `resource`: the tenant's APIs, for resource indicators (RFC 8707): register one with its
//! identifier, scopes and allowed clients; list, change and remove them. The same functions
//! serve the admin API (`admin::resources`).

use clap::Subcommand;
use uuid::Uuid;

use super::output::print;
use crate::admin::{self, Caller};
use crate::clients::resources::{ResourceChange, ResourceRequest};
use crate::db::Database;
use crate::db::audit::Actor;

#[derive(Subcommand, Debug)]
pub enum ResourceCommand {
    /// Register an API: clients it allows may ask for access tokens whose `aud` is its
    /// identifier, by sending `resource=<identifier>`.
    Create {
        #[arg(long)]
        tenant: String,
        /// An absolute URI without a fragment or query, e.g. https://orders.example.com/
        #[arg(long)]
        identifier: String,
        #[arg(long)]
        name: String,
        /// A scope the API defines (repeat for more), e.g. orders:read.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// A client of the tenant that may ask for tokens for it (repeat for more).
        #[arg(long = "client")]
        clients: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// The tenant's APIs.
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Change an API: each option given replaces what is registered.
    Update {
        #[arg(long)]
        tenant: String,
        /// The API's id (`resource list`).
        id: Uuid,
        #[arg(long)]
        name: Option<String>,
        /// The scopes, all of them (repeat; `--no-scopes` for none).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[arg(long, conflicts_with = "scopes")]
        no_scopes: bool,
        /// The allowed clients, all of them (repeat; `--no-clients` for none).
        #[arg(long = "client")]
        clients: Vec<String>,
        #[arg(long, conflicts_with = "clients")]
        no_clients: bool,
        #[arg(long)]
        json: bool,
    },
    /// Remove an API: no new token is issued for it.
    Delete {
        #[arg(long)]
        tenant: String,
        id: Uuid,
        #[arg(long)]
        json: bool,
    },
}

/// The replacement list an `update` option gives: the values, or none with its `--no-…`.
fn replacement(values: Vec<String>, none: bool) -> Option<Vec<String>> {
    (none || !values.is_empty()).then_some(values)
}

/// Runs one `resource` subcommand as `operator`, in the named tenant, and prints its result.
pub(super) async fn run(command: ResourceCommand, db: &Database, operator: &Actor) -> anyhow::Result<()> {
    match command {
        ResourceCommand::Create { tenant, identifier, name, scopes, clients, json } => {
            let caller = Caller::operator(db, &tenant, operator.clone()).await?;
            let req = ResourceRequest { identifier, name, scopes, client_ids: clients };
            let api = admin::resources::register(db, &caller, req).await?;
            print(json, &api, || {
                format!("API {} ({}) registered in {tenant}: id {}", api.identifier, api.name, api.id)
            })?;
        }
        ResourceCommand::List { tenant, json } => {
            let caller = Caller::operator(db, &tenant, operator.clone()).await?;
            let apis = admin::resources::list(db, &caller).await?;
            let out = serde_json::json!({ "tenant": tenant, "resource_servers": apis });
            print(json, &out, || {
                let mut lines = vec![format!("{} APIs in {tenant}", apis.len())];
                for a in &apis {
                    lines.push(format!(
                        "{}  {}  {}  scopes: {}  clients: {}",
                        a.id,
                        a.identifier,
                        a.name,
                        a.scopes.join(" "),
                        a.client_ids.join(" ")
                    ));
                }
                lines.join("\n")
            })?;
        }
        ResourceCommand::Update { tenant, id, name, scopes, no_scopes, clients, no_clients, json } => {
            let caller = Caller::operator(db, &tenant, operator.clone()).await?;
            let change = ResourceChange {
                name,
                scopes: replacement(scopes, no_scopes),
                client_ids: replacement(clients, no_clients),
            };
            let api = admin::resources::update(db, &caller, id, change).await?;
            print(json, &api, || format!("API {} of {tenant} changed", api.identifier))?;
        }
        ResourceCommand::Delete { tenant, id, json } => {
            let caller = Caller::operator(db, &tenant, operator.clone()).await?;
            admin::resources::remove(db, &caller, id).await?;
            let out = serde_json::json!({ "tenant": tenant, "id": id, "deleted": true });
            print(json, &out, || format!("API {id} of {tenant} removed"))?;
        }
    }
    Ok(())
}
