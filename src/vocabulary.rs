//! The words of tenancy that rows store and the domain decides on: a member's [`Role`] and a
//! tenant's [`Slug`]. They sit below `db` so that data code can take them typed; what a role
//! may do is decided above, in `tenancy` and the surfaces (ARCHITECTURE.md, "Code map").

use std::fmt;
use std::str::FromStr;

use crate::service_error::ServiceError;

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

    pub fn into_string(self) -> String {
        self.0
    }
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
