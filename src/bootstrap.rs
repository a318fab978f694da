//! First start: on a database without a platform tenant, create it and a platform admin.

use uuid::Uuid;

use crate::config::Config;
use crate::db::audit::{self, Actor};
use crate::db::{self, Database};
use crate::identity::{Email, PasswordHasher, password};
use crate::secrets::Secret;
use crate::service_error::ServiceError;
use crate::tenancy::PLATFORM_SLUG;
use crate::vocabulary::Role;

/// What bootstrap created.
#[derive(Debug)]
pub struct Bootstrapped {
    pub tenant_id: Uuid,
    pub admin_email: String,
    /// Set when the password was generated (and must be shown once); `None` when it came from
    /// `LCA_ADMIN_PASSWORD`.
    pub generated_password: Option<Secret>,
}

/// Creates the platform tenant and its first admin, unless a platform tenant exists. Safe when
/// several instances start at once: the unique index on the platform flag lets one win.
pub async fn run(
    db: &Database,
    hasher: &PasswordHasher,
    config: &Config,
) -> Result<Option<Bootstrapped>, ServiceError> {
    let mut tx = db.unscoped().await?;
    let existing = db::tenants::platform(&mut tx).await?;
    let admin_user = db::users::by_email(&mut tx, &config.admin_email).await?;
    tx.commit().await?;
    if existing.is_some() {
        return Ok(None);
    }
    let email = Email::parse(&config.admin_email)?;
    let (password, generated) = match &config.admin_password {
        Some(p) => {
            password::check_rules(p)?;
            (Secret::from_presented(p.clone()), false)
        }
        None => (Secret::generate(), true),
    };

    let tenant_id = Uuid::now_v7();
    let user_id = admin_user.as_ref().map_or_else(Uuid::now_v7, |u| u.id);
    let hash = match admin_user {
        None => Some(hasher.hash(password.expose()).await?),
        Some(_) => None,
    };
    // Writing a tenant takes owner rights (migrations/0010); the user, membership and audit rows
    // go in the same transaction, still under RLS for this tenant and user.
    let mut tx = db.operator_tenant_and_user(tenant_id, user_id).await?;
    match db::tenants::insert(&mut tx, tenant_id, PLATFORM_SLUG, "Platform", true).await {
        Ok(()) => {}
        // Another instance bootstrapped first.
        Err(e) if db::unique_violation(&e).is_some() => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    if let Some(hash) = &hash {
        db::users::insert(&mut tx, user_id, email.as_str(), hash).await?;
    }
    db::memberships::insert(&mut tx, tenant_id, user_id, Role::Admin).await?;
    let system = Actor::system();
    let details = serde_json::json!({ "slug": PLATFORM_SLUG, "name": "Platform", "is_platform": true });
    audit::append(&mut tx, &system.event("tenant.created", ("tenant", Some(tenant_id.to_string())), details)).await?;
    let details = serde_json::json!({ "role": Role::Admin });
    audit::append(&mut tx, &system.event("membership.added", ("user", Some(user_id.to_string())), details)).await?;
    tx.commit().await?;
    Ok(Some(Bootstrapped {
        tenant_id,
        admin_email: email.as_str().to_owned(),
        generated_password: (generated && hash.is_some()).then_some(password),
    }))
}
