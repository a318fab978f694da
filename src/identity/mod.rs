//! People: user accounts, email addresses and passwords.

pub mod mfa;
pub mod passkeys;
pub mod password;
pub mod profile;
pub mod recovery;
pub mod reset;
pub mod security;
pub mod throttle;
pub mod verification;

use uuid::Uuid;

use crate::db::{self, Database};
use crate::service_error::ServiceError;
pub use password::PasswordHasher;

/// An email address as users type it: trimmed, one `@`, no spaces or control characters, at
/// most 254 characters (RFC 5321's path limit). Compared without regard to case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, ServiceError> {
        let s = s.trim();
        let valid = s.len() <= 254
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            && matches!(s.split_once('@'), Some((local, domain))
                if !local.is_empty() && local.len() <= 64 && !domain.is_empty() && !domain.contains('@')
                    && !domain.starts_with('.') && !domain.ends_with('.'));
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(ServiceError::Invalid(format!("{s:?} is not a valid email address")))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user that was created.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CreatedUser {
    pub user_id: Uuid,
    pub email: String,
}

/// Creates a user with a password (checked against the password rules, stored as bcrypt).
pub async fn create_user(
    db: &Database,
    hasher: &PasswordHasher,
    email: &str,
    password: &str,
) -> Result<CreatedUser, ServiceError> {
    let email = Email::parse(email)?;
    password::check_rules(password)?;
    let hash = hasher.hash(password).await?;
    let id = Uuid::now_v7();
    let mut tx = db.user(id).await?;
    match db::users::insert(&mut tx, id, email.as_str(), &hash).await {
        Ok(()) => {}
        Err(e) if db::unique_violation(&e).is_some() => {
            return Err(ServiceError::Conflict(format!("a user with email {:?} already exists", email.as_str())));
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(CreatedUser { user_id: id, email: email.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plausible addresses pass; ones with spaces, no local part or two `@` do not.
    #[test]
    fn emails() {
        for ok in ["a@b", "Ann.Lee+tag@example.com", "  x@y.z  "] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "@b", "a@", "a@@b", "a b@c", "a@b.", "a@.b", "a\n@b"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }
}
