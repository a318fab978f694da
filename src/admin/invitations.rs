//! Invitations to the caller's tenant (`tenancy::invitations` has the rules): listing the open
//! ones, inviting an address with a role, withdrawing. Members' permissions apply: reading
//! them is `members.read`, the rest `members.manage`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Action, Caller};
use crate::config::Config;
use crate::db::{self, Database};
use crate::service_error::ServiceError;
use crate::tenancy::invitations::{self, Invited};
use crate::vocabulary::Role;

/// An open invitation as the admin surface shows it (never its link).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Invitation {
    pub id: Uuid,
    pub email: String,
    #[schema(value_type = String, example = "viewer")]
    pub role: Role,
    /// Who invited: `user:<id>`, `client:<client_id>` or `operator:<name>`.
    pub invited_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl From<db::invitations::InvitationRow> for Invitation {
    fn from(r: db::invitations::InvitationRow) -> Self {
        Self {
            id: r.id,
            email: r.email,
            role: r.role,
            invited_by: r.invited_by,
            created_at: r.created_at,
            expires_at: r.expires_at,
        }
    }
}

impl From<&Invited> for Invitation {
    fn from(i: &Invited) -> Self {
        Self {
            id: i.id,
            email: i.email.clone(),
            role: i.role,
            invited_by: i.invited_by.clone(),
            created_at: i.created_at,
            expires_at: i.expires_at,
        }
    }
}

/// The tenant's open invitations, newest first (at most [`invitations::LIST_LIMIT`]).
pub async fn list(db: &Database, caller: &Caller) -> Result<Vec<Invitation>, ServiceError> {
    caller.require(Action::ReadMembers)?;
    Ok(invitations::open(db, caller.tenant_id).await?.into_iter().map(Invitation::from).collect())
}

/// Invites `email` with `role`; the caller mails [`Invited::link`]. The answer is the same
/// whether or not the address has an account.
pub async fn invite(
    db: &Database,
    config: &Config,
    caller: &Caller,
    email: &str,
    role: Role,
) -> Result<Invited, ServiceError> {
    caller.require(Action::ManageMembers)?;
    invitations::invite(db, config, &caller.actor, caller.tenant_id, email, role).await
}

/// Withdraws an open invitation; `NotFound` when there is none by that id.
pub async fn withdraw(db: &Database, caller: &Caller, id: Uuid) -> Result<(), ServiceError> {
    caller.require(Action::ManageMembers)?;
    if invitations::revoke(db, &caller.actor, caller.tenant_id, id).await? {
        Ok(())
    } else {
        Err(ServiceError::NotFound("no such open invitation".into()))
    }
}
