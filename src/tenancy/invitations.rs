//! Invitations (ARCHITECTURE.md "Mail"): an administrator asks someone, by address, to join
//! the tenant with a role; the mailed one-time link creates the account (with the password
//! the invitee chooses) or links the account that has the address, adds the membership, and
//! verifies the address, once.
//!
//! - Inviting answers the same whether or not the address has an account anywhere (nothing
//!   in [`Invited`] depends on it), so it tells no tenant which addresses have one.
//! - Inviting an address again replaces its open invitation (one open per address and
//!   tenant, migrations/0022); an invitation can be revoked until it is accepted.
//! - For an address without an account, or with one that has no password yet (an
//!   administrator added it), the link is enough: it came to the address's mailbox, and
//!   accepting sets the password the invitee chooses. An account with a password is linked
//!   only by its owner signed in: whoever set that password may not be the mailbox's owner
//!   (another tenant's administrator can make an account for any address), and a click on a
//!   mailed link must not give their account a role here.
//! - Accepting is a POST (a mail scanner that fetches the link accepts nothing), spends the
//!   invitation with one atomic statement, and is refused for a disabled account or a tenant
//!   that is not active.
//! - At most [`PER_ADDRESS_PER_HOUR`] invitations an hour to one address of a tenant, and
//!   [`PER_TENANT_PER_HOUR`] in all: each is a mail in the tenant's name.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::audit::{self, Actor};
use crate::db::{self, Database, Tx};
use crate::identity::Email;
use crate::secrets::{Secret, SecretString};
use crate::service_error::ServiceError;
use crate::vocabulary::{Role, TenantStatus, UserStatus};

/// The longest token a link can carry (a generated one is 43 characters).
pub const MAX_TOKEN_LEN: usize = 128;

/// Open invitations listed per tenant.
pub const LIST_LIMIT: i64 = 200;

/// Invitations a tenant may send to one address per hour.
pub const PER_ADDRESS_PER_HOUR: i32 = 3;

/// Invitations a tenant may send per hour.
pub const PER_TENANT_PER_HOUR: i32 = 200;

/// The account an invitation's address has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Account {
    /// None: accepting creates it, with the password the invitee chooses.
    New,
    /// One without a password (added by an administrator; nobody has signed in with it):
    /// accepting sets the password the invitee chooses.
    WithoutPassword,
    /// One with a password: only this user, signed in, may accept.
    Existing(Uuid),
}

impl Account {
    /// Whether accepting asks for a password.
    pub fn needs_password(self) -> bool {
        !matches!(self, Account::Existing(_))
    }
}

/// An invitation that was made, with the link to mail.
#[derive(Debug)]
pub struct Invited {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub tenant_name: String,
    /// Who invited, as stored: `user:<id>`, `client:<client_id>`, `operator:<name>`.
    pub invited_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// `<issuer>/invite?token=…`: a one-time secret, never logged or shown to the inviter.
    pub link: SecretString,
}

/// An open invitation as its link's page shows it.
#[derive(Debug, Clone)]
pub struct Pending {
    pub tenant_name: String,
    pub email: String,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
    pub account: Account,
}

/// What accepting did.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub user_id: Uuid,
    pub email: String,
    pub tenant_name: String,
    pub role: Role,
    /// The account was created by this acceptance.
    pub created: bool,
    /// The user was a member already (the invitation is spent; nothing else changed).
    pub already_member: bool,
}

/// Why an acceptance did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAccepted {
    /// Unknown, accepted, revoked or expired; or the account is disabled or the tenant not
    /// active.
    Unusable,
    /// The address has no account, or one without a password, and no password was given.
    NeedsPassword,
    /// The address's account has a password: its owner must be signed in to accept.
    SignInFirst,
}

/// Invites `email` to the tenant with `role`; `invitation.created` is audited.
pub async fn invite(
    db: &Database,
    config: &crate::config::Config,
    actor: &Actor,
    tenant_id: Uuid,
    email: &str,
    role: Role,
) -> Result<Invited, ServiceError> {
    let email = Email::parse(email)?;
    let mut tx = db.tenant(tenant_id).await?;
    let tenant =
        db::tenants::current_row(&mut tx).await?.ok_or_else(|| ServiceError::NotFound("no such tenant".into()))?;
    if tenant.status != TenantStatus::Active {
        return Err(ServiceError::Conflict("the tenant is not active".into()));
    }
    let per_address =
        crate::secrets::sha256(format!("invitation:{tenant_id}:{}", email.as_str().to_lowercase()).as_bytes());
    let per_tenant = crate::secrets::sha256(format!("invitations:{tenant_id}").as_bytes());
    for (key, limit) in [(per_address, PER_ADDRESS_PER_HOUR), (per_tenant, PER_TENANT_PER_HOUR)] {
        if let Some(retry_after) = db::rate_limits::hit(&mut tx, &key, limit, 3600).await? {
            tx.commit().await?;
            return Err(ServiceError::RateLimited { retry_after });
        }
    }
    let replaced = db::invitations::revoke_open_for(&mut tx, email.as_str()).await?;
    let token = Secret::generate();
    let id = Uuid::now_v7();
    let expires_at = Utc::now() + chrono::Duration::from_std(config.ttl.invitation).unwrap_or_default();
    let invited_by = format!("{}:{}", actor.kind, actor.id.as_deref().unwrap_or(""));
    let hash = token.hash();
    let new = db::invitations::NewInvitation {
        id,
        token_hash: &hash,
        email: email.as_str(),
        role,
        invited_by: &invited_by,
        expires_at,
    };
    match db::invitations::insert(&mut tx, tenant_id, &new).await {
        Ok(()) => {}
        Err(e) if db::unique_violation(&e).is_some() => {
            return Err(ServiceError::Conflict("this address was just invited; try again".into()));
        }
        Err(e) => return Err(e.into()),
    }
    let details = serde_json::json!({
        "email": email.as_str(), "role": role, "expires_at": expires_at, "replaced": replaced,
    });
    audit::append(&mut tx, &actor.event("invitation.created", ("invitation", Some(id.to_string())), details)).await?;
    tx.commit().await?;
    let link = format!("{}/invite?token={}", config.issuer, token.expose()).into();
    Ok(Invited {
        id,
        email: email.as_str().to_owned(),
        role,
        tenant_name: tenant.name,
        invited_by,
        created_at: Utc::now(),
        expires_at,
        link,
    })
}

/// The tenant's open invitations, newest first.
pub async fn open(db: &Database, tenant_id: Uuid) -> Result<Vec<db::invitations::InvitationRow>, ServiceError> {
    let mut tx = db.tenant(tenant_id).await?;
    let rows = db::invitations::open(&mut tx, LIST_LIMIT).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Revokes an open invitation; `false` when there is none by that id in the tenant.
pub async fn revoke(db: &Database, actor: &Actor, tenant_id: Uuid, id: Uuid) -> Result<bool, ServiceError> {
    let mut tx = db.tenant(tenant_id).await?;
    if !db::invitations::revoke(&mut tx, id).await? {
        return Ok(false);
    }
    let event = actor.event("invitation.revoked", ("invitation", Some(id.to_string())), serde_json::json!({}));
    audit::append(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(true)
}

/// A transaction in the tenant of the invitation `token` names, if its tenant is active.
async fn in_tenant_of(db: &Database, token: &str) -> Result<Option<(Tx, [u8; 32], String)>, ServiceError> {
    if token.len() > MAX_TOKEN_LEN {
        return Ok(None);
    }
    let hash = crate::secrets::sha256(token.as_bytes());
    let Some(mut tx) = db.in_tenant_of(db::TenantOf::Invitation(&hash)).await? else { return Ok(None) };
    match db::tenants::current_row(&mut tx).await? {
        Some(t) if t.status == TenantStatus::Active => Ok(Some((tx, hash, t.name))),
        _ => Ok(None),
    }
}

/// The open invitation a link names, without spending it.
pub async fn pending(db: &Database, token: &str) -> Result<Option<Pending>, ServiceError> {
    let Some((mut tx, hash, tenant_name)) = in_tenant_of(db, token).await? else { return Ok(None) };
    let Some(row) = db::invitations::usable(&mut tx, &hash).await? else { return Ok(None) };
    let account = db::users::by_email(&mut tx, &row.email).await?;
    tx.commit().await?;
    let account = match account {
        Some(u) if u.status != UserStatus::Active => return Ok(None),
        Some(u) if u.password_hash.is_some() => Account::Existing(u.id),
        Some(_) => Account::WithoutPassword,
        None => Account::New,
    };
    Ok(Some(Pending { tenant_name, email: row.email, role: row.role, expires_at: row.expires_at, account }))
}

/// Accepts the invitation a link names, in one transaction: spends it, creates the account
/// with `password_hash` when the address has none (or gives it that password when it has
/// none), verifies the address, adds the membership and audits each step. An account with a
/// password is linked only when `signed_in` is that user. Nothing changes when it is refused.
pub async fn accept(
    db: &Database,
    token: &str,
    password_hash: Option<&str>,
    signed_in: Option<Uuid>,
    origin: &Actor,
) -> Result<Result<Accepted, NotAccepted>, ServiceError> {
    let Some((mut tx, hash, tenant_name)) = in_tenant_of(db, token).await? else {
        return Ok(Err(NotAccepted::Unusable));
    };
    let Some(row) = db::invitations::accept(&mut tx, &hash).await? else { return Ok(Err(NotAccepted::Unusable)) };
    let tenant_id = tx.tenant_id().unwrap_or_default();
    let mut password_set = false;
    let (user_id, created) = match (db::users::by_email(&mut tx, &row.email).await?, password_hash) {
        (Some(user), _) if user.status != UserStatus::Active => return Ok(Err(NotAccepted::Unusable)),
        (Some(user), _) if user.password_hash.is_some() => {
            if signed_in != Some(user.id) {
                return Ok(Err(NotAccepted::SignInFirst));
            }
            (user.id, false)
        }
        (Some(user), Some(hash)) => {
            tx.switch_user(user.id).await?;
            db::users::set_password(&mut tx, user.id, hash).await?;
            password_set = true;
            (user.id, false)
        }
        (_, None) => return Ok(Err(NotAccepted::NeedsPassword)),
        (None, Some(hash)) => {
            let id = Uuid::now_v7();
            tx.switch_user(id).await?;
            match db::users::insert(&mut tx, id, &row.email, hash).await {
                Ok(()) => {}
                Err(e) if db::unique_violation(&e).is_some() => {
                    return Err(ServiceError::Conflict("an account with this address was just created".into()));
                }
                Err(e) => return Err(e.into()),
            }
            (id, true)
        }
    };
    let actor = Actor { kind: "user", id: Some(user_id.to_string()), ..origin.clone() };
    let target = || ("user", Some(user_id.to_string()));
    if password_set {
        // The first password of an account: whatever was made under its old stamp ends.
        crate::identity::security::end_sessions_and_families(&mut tx, &actor, user_id, None, "invitation").await?;
    }
    if created {
        audit::append(&mut tx, &actor.event("user.created", target(), serde_json::json!({ "by": "invitation" })))
            .await?;
    }
    // The link came to this address: it is verified, and older verification links are spent.
    tx.switch_user(user_id).await?;
    db::users::verify_email(&mut tx, user_id, &row.email).await?;
    db::email_verifications::end_for_user(&mut tx, user_id).await?;
    db::invitations::set_accepted_by(&mut tx, row.id, user_id).await?;
    let already_member = db::memberships::role_of(&mut tx, user_id).await?.is_some();
    if !already_member {
        match db::memberships::insert(&mut tx, tenant_id, user_id, row.role).await {
            Ok(()) => {}
            Err(e) if db::unique_violation(&e).is_some() => {
                return Err(ServiceError::Conflict("this account was just added to the tenant".into()));
            }
            Err(e) => return Err(e.into()),
        }
        let details = serde_json::json!({ "role": row.role, "invitation": row.id });
        audit::append(&mut tx, &actor.event("membership.added", target(), details)).await?;
    }
    let details = serde_json::json!({
        "user": user_id, "created": created, "password_set": password_set, "already_member": already_member,
    });
    audit::append(&mut tx, &actor.event("invitation.accepted", ("invitation", Some(row.id.to_string())), details))
        .await?;
    tx.commit().await?;
    Ok(Ok(Accepted { user_id, email: row.email, tenant_name, role: row.role, created, already_member }))
}
