//! The tenant's APIs (resource servers, `clients::resources` has the rules): listing,
//! registering, changing and removing them. They decide which clients get tokens meant for
//! which API, so they go with the clients' permissions: reading them is `clients.read`, the
//! rest `clients.manage`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Action, Caller};
use crate::clients::resources::{self, ResourceChange, ResourceRequest};
use crate::db::Database;
use crate::db::resource_servers::ResourceServerRow;
use crate::service_error::ServiceError;

/// A registered API as the admin surface shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Resource {
    pub id: Uuid,
    /// What a client names in `resource` (RFC 8707), and the access token's `aud`.
    #[schema(example = "https://orders.example.com/")]
    pub identifier: String,
    #[schema(example = "Orders API")]
    pub name: String,
    /// The scopes the API defines.
    #[schema(example = json!(["orders:read", "orders:write"]))]
    pub scopes: Vec<String>,
    /// The clients of the tenant that may ask for tokens meant for it.
    pub client_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl From<ResourceServerRow> for Resource {
    fn from(r: ResourceServerRow) -> Self {
        Self {
            id: r.id,
            identifier: r.identifier,
            name: r.name,
            scopes: r.scopes,
            client_ids: r.client_ids,
            created_at: r.created_at,
        }
    }
}

/// The tenant's APIs, by identifier.
pub async fn list(db: &Database, caller: &Caller) -> Result<Vec<Resource>, ServiceError> {
    caller.require(Action::ReadClients)?;
    Ok(resources::list(db, caller.tenant_id).await?.into_iter().map(Resource::from).collect())
}

/// Registers an API.
pub async fn register(db: &Database, caller: &Caller, req: ResourceRequest) -> Result<Resource, ServiceError> {
    caller.require(Action::ManageClients)?;
    Ok(resources::register(db, &caller.actor, caller.tenant_id, req).await?.into())
}

/// Changes an API's name, scopes or clients.
pub async fn update(
    db: &Database,
    caller: &Caller,
    id: Uuid,
    change: ResourceChange,
) -> Result<Resource, ServiceError> {
    caller.require(Action::ManageClients)?;
    Ok(resources::update(db, &caller.actor, caller.tenant_id, id, change).await?.into())
}

/// Removes an API; `NotFound` when the tenant has none by that id.
pub async fn remove(db: &Database, caller: &Caller, id: Uuid) -> Result<(), ServiceError> {
    caller.require(Action::ManageClients)?;
    resources::remove(db, &caller.actor, caller.tenant_id, id).await?;
    Ok(())
}
