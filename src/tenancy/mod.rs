//! Tenants, memberships and roles (DESIGN.md, "Tenancy model").

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::db::{self, Database};
use crate::error::ServiceError;
use crate::identity::Email;

/// A member's role in a tenant. Roles nest: admin ⊃ editor ⊃ viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Editor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    /// The expanded role list that tokens carry, so a resource server checks a role with one
    /// lookup: admin → ["admin", "editor", "viewer"].
    pub fn expand(self) -> &'static [&'static str] {
        match self {
            Role::Admin => &["admin", "editor", "viewer"],
            Role::Editor => &["editor", "viewer"],
            Role::Viewer => &["viewer"],
        }
    }
}

impl FromStr for Role {
    type Err = ServiceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "editor" => Ok(Role::Editor),
            "viewer" => Ok(Role::Viewer),
            _ => Err(ServiceError::Invalid(format!("unknown role {s:?} (expected admin, editor or viewer)"))),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tenant slug: 1–63 characters of `[a-z0-9-]`, not starting or ending with `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    pub fn parse(s: &str) -> Result<Self, ServiceError> {
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ServiceError::Invalid(format!(
                "invalid tenant slug {s:?}: use 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Slug of the platform tenant created at bootstrap.
pub const PLATFORM_SLUG: &str = "platform";

/// A tenant that was created.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CreatedTenant {
    pub tenant_id: Uuid,
    pub slug: String,
    pub name: String,
}

/// Creates a tenant.
pub async fn create_tenant(
    db: &Database,
    slug: &str,
    name: &str,
    is_platform: bool,
) -> Result<CreatedTenant, ServiceError> {
    let slug = Slug::parse(slug)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ServiceError::Invalid("tenant name must be 1-200 printable characters".into()));
    }
    let id = Uuid::now_v7();
    let mut tx = db.tenant(id).await?;
    match db::tenants::insert(&mut tx, id, slug.as_str(), name, is_platform).await {
        Ok(()) => {}
        Err(e) if db::unique_violation(&e).is_some() => {
            return Err(ServiceError::Conflict(format!("a tenant with slug {:?} already exists", slug.as_str())));
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(CreatedTenant { tenant_id: id, slug: slug.0, name: name.to_owned() })
}

/// Finds an active or suspended tenant by slug, or says clearly that there is none.
pub async fn find_tenant(db: &Database, slug: &str) -> Result<db::tenants::TenantRef, ServiceError> {
    let slug = Slug::parse(slug)?;
    let mut tx = db.unscoped().await?;
    let tenant = db::tenants::by_slug(&mut tx, slug.as_str()).await?;
    tx.commit().await?;
    tenant.ok_or_else(|| ServiceError::NotFound(format!("no tenant with slug {:?}", slug.as_str())))
}

/// A membership that was added.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AddedMember {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub role: Role,
}

/// Makes the user with `email` a member of tenant `slug` with `role`.
pub async fn add_member(db: &Database, slug: &str, email: &str, role: Role) -> Result<AddedMember, ServiceError> {
    let tenant = find_tenant(db, slug).await?;
    let email = Email::parse(email)?;
    let mut tx = db.tenant(tenant.id).await?;
    let Some(user) = db::users::by_email(&mut tx, email.as_str()).await? else {
        return Err(ServiceError::NotFound(format!("no user with email {:?}", email.as_str())));
    };
    if let Some(existing) = db::memberships::role_of(&mut tx, user.id).await? {
        return Err(ServiceError::Conflict(format!(
            "{} is already a member of {slug:?} (role {existing})",
            email.as_str()
        )));
    }
    match db::memberships::insert(&mut tx, tenant.id, user.id, role).await {
        Ok(()) => {}
        // A concurrent `member add` of the same person won the race.
        Err(e) if db::unique_violation(&e).is_some() => {
            return Err(ServiceError::Conflict(format!("{} is already a member of {slug:?}", email.as_str())));
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(AddedMember { tenant_id: tenant.id, user_id: user.id, role })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Roles expand to every role they include, and parse only from their own names.
    #[test]
    fn roles_expand_and_parse() {
        assert_eq!(Role::Admin.expand(), ["admin", "editor", "viewer"]);
        assert_eq!(Role::Editor.expand(), ["editor", "viewer"]);
        assert_eq!(Role::Viewer.expand(), ["viewer"]);
        assert_eq!("editor".parse::<Role>().ok(), Some(Role::Editor));
        assert!("Admin".parse::<Role>().is_err());
        assert!(Role::Admin > Role::Editor && Role::Editor > Role::Viewer);
    }

    /// Slugs keep to `[a-z0-9-]` without edge dashes.
    #[test]
    fn slugs() {
        for ok in ["a", "acme", "acme-2", "0x"] {
            assert!(Slug::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "Acme", "a_b", "a b", "é", &"a".repeat(64)] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
    }
}
