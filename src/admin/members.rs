//! Members of the caller's tenant: listing, adding (inviting someone new), changing roles,
//! removing, acting on a member's sign-ins (sign out everywhere, MFA reset, a recovery
//! link), and editing a member's profile. Each checks the permission table first, then runs
//! in the caller's tenant.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Action, Caller, Cursor, HandlerChecks, Page};
use crate::config::Config;
use crate::db::{self, Database};
use crate::identity::profile::{self, Editor, ProfileEdit};
use crate::identity::recovery::{self, IssuedLink, MemberAction, Rule};
use crate::identity::security::Ended;
use crate::service_error::ServiceError;
use crate::tenancy::members::{self, MembershipChange, Unknown};
use crate::vocabulary::Role;

/// A member as the admin surface shows them.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Member {
    pub user_id: Uuid,
    pub email: String,
    #[schema(value_type = String, example = "editor")]
    pub role: Role,
    /// Whether the member has enrolled a second factor (TOTP).
    pub mfa_enrolled: bool,
    pub joined_at: DateTime<Utc>,
}

impl From<db::memberships::MemberRow> for Member {
    fn from(r: db::memberships::MemberRow) -> Self {
        Self { user_id: r.user_id, email: r.email, role: r.role, mfa_enrolled: r.mfa_enrolled, joined_at: r.joined_at }
    }
}

fn no_member() -> ServiceError {
    ServiceError::NotFound("no such member".into())
}

/// A page of the tenant's members, by user id.
pub async fn list(db: &Database, caller: &Caller, cursor: &Cursor) -> Result<Page<Member>, ServiceError> {
    caller.require(Action::ReadMembers)?;
    let after = match cursor.after.as_deref() {
        Some(key) => Some(key.parse::<Uuid>().map_err(|_| ServiceError::Invalid("unreadable cursor".into()))?),
        None => None,
    };
    let mut tx = db.tenant(caller.tenant_id).await?;
    let rows = db::memberships::page(&mut tx, after, cursor.fetch()).await?;
    tx.commit().await?;
    Ok(cursor.page(rows.into_iter().map(Member::from).collect(), |m| m.user_id.to_string()))
}

/// How many members the tenant has.
pub async fn count(db: &Database, caller: &Caller) -> Result<u64, ServiceError> {
    caller.require(Action::ReadMembers)?;
    let mut tx = db.tenant(caller.tenant_id).await?;
    let n = db::memberships::count(&mut tx).await?;
    tx.commit().await?;
    Ok(u64::try_from(n).unwrap_or_default())
}

/// One member; `NotFound` for anyone who is not a member of the caller's tenant.
pub async fn get(db: &Database, caller: &Caller, user_id: Uuid) -> Result<Member, ServiceError> {
    caller.require(Action::ReadMembers)?;
    let mut tx = db.tenant(caller.tenant_id).await?;
    let row = db::memberships::member(&mut tx, user_id).await?;
    tx.commit().await?;
    row.map(Member::from).ok_or_else(no_member)
}

/// Adds the person with `email` with `role`; someone without an account is invited (created
/// without a password: a recovery link lets them set one). The answer is the same either way,
/// so it tells no tenant which emails have an account elsewhere.
pub async fn add(db: &Database, caller: &Caller, email: &str, role: Role) -> Result<Member, ServiceError> {
    caller.require(Action::ManageMembers)?;
    let added = members::add_member_in(db, &caller.actor, caller.tenant_id, email, role, Unknown::Invite).await?;
    get(db, caller, added.user_id).await
}

/// Changes a member's role (the last admin cannot be demoted).
pub async fn set_role(
    db: &Database,
    caller: &Caller,
    user_id: Uuid,
    role: Role,
) -> Result<MembershipChange, ServiceError> {
    caller.require(Action::ManageMembers)?;
    members::set_role_in(db, &caller.actor, caller.tenant_id, user_id, role).await?.ok_or_else(no_member)
}

/// Ends a membership and the member's token families in this tenant.
pub async fn remove(db: &Database, caller: &Caller, user_id: Uuid) -> Result<MembershipChange, ServiceError> {
    caller.require(Action::ManageMembers)?;
    members::remove_member_in(db, &caller.actor, caller.tenant_id, user_id).await?.ok_or_else(no_member)
}

/// The recovery rule applies unless a test turned the handler checks off.
fn rule(caller: &Caller) -> Rule {
    match caller.checks() {
        HandlerChecks::Enforced => Rule::Checked,
        HandlerChecks::Disabled => Rule::Skipped,
    }
}

/// Signs a member out everywhere, or resets their second factor (and signs them out).
/// `NotFound` when the recovery rule refuses: someone who also belongs to a tenant the caller
/// does not administer is out of the caller's reach, and a 404 says no more than that.
pub async fn act_on(
    db: &Database,
    caller: &Caller,
    user_id: Uuid,
    action: MemberAction,
) -> Result<Ended, ServiceError> {
    caller.require(Action::RecoverMembers)?;
    recovery::act_on_member(db, &caller.actor, caller.tenant_id, user_id, action, rule(caller))
        .await?
        .ok_or_else(no_member)
}

/// A one-time recovery link for a member (shown once), under the same rule as [`act_on`].
pub async fn recovery_link(
    db: &Database,
    config: &Config,
    caller: &Caller,
    user_id: Uuid,
) -> Result<IssuedLink, ServiceError> {
    caller.require(Action::RecoverMembers)?;
    recovery::issue_link_under(db, config, &caller.actor, caller.tenant_id, user_id, rule(caller))
        .await?
        .ok_or_else(no_member)
}

/// A member's profile, as the admin API answers a change of it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct MemberProfile {
    pub user_id: Uuid,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub preferred_username: Option<String>,
    pub locale: Option<String>,
    pub zoneinfo: Option<String>,
    pub email_verified: bool,
    pub updated_at: DateTime<Utc>,
    /// The fields this request changed (none: nothing was written).
    pub changed: Vec<&'static str>,
}

impl From<profile::Changed> for MemberProfile {
    fn from(c: profile::Changed) -> Self {
        let p = c.profile;
        Self {
            user_id: c.user_id,
            name: p.name,
            given_name: p.given_name,
            family_name: p.family_name,
            preferred_username: p.preferred_username,
            locale: p.locale,
            zoneinfo: p.zoneinfo,
            email_verified: p.email_verified,
            updated_at: c.updated_at,
            changed: c.changed,
        }
    }
}

/// Edits a member's profile (`identity::profile`). A user is global, so every tenant they
/// belong to sees the change: it takes the recovery rule, like [`act_on`] — someone who also
/// belongs to a tenant the caller does not administer is `NotFound`.
pub async fn set_profile(
    db: &Database,
    caller: &Caller,
    user_id: Uuid,
    edit: &ProfileEdit,
) -> Result<MemberProfile, ServiceError> {
    caller.require(Action::ManageMembers)?;
    let editor = Editor::Admin { tenant_id: caller.tenant_id, rule: rule(caller) };
    profile::change(db, &caller.actor, editor, user_id, edit).await?.map(MemberProfile::from).ok_or_else(no_member)
}
