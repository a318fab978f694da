//! The words rows store and the domain decides on: a member's [`Role`], a tenant's [`Slug`],
//! and the closed sets of words that text columns hold (statuses, client types), as Rust enums
//! with one mapping each. They sit below `db` so that data code can take them typed; what a
//! role may do is decided above, in `tenancy` and the surfaces (ARCHITECTURE.md, "Code map").
//!
//! Each enum's column has a `CHECK (… IN (…))` constraint (`migrations/0002_tenancy.sql`,
//! `migrations/0009_device.sql`) listing the same words; `tests/it/schema.rs` holds them to it.
//! Rows decode into the enum (`sqlx::Decode`), binds encode from it (`sqlx::Encode`), and the
//! JSON of audit details and command output uses the same word (`serde`), all through
//! [`text_enum!`]'s one table per enum. Code compares enums, never strings, so a misspelt status
//! cannot compile. A word the enum does not know fails the row's decoding.

use std::str::FromStr;

use crate::service_error::ServiceError;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};

/// An enum of a text column: its words, `as_str`, `from_db_str`, `Display`, `serde` and the
/// sqlx mapping as `text`.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $word:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The word stored in the database (and used in JSON).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)+
                }
            }

            /// The value a stored word stands for; `None` for any other string (exact match,
            /// case-sensitive, as the database's constraint is).
            pub fn from_db_str(s: &str) -> Option<Self> {
                match s {
                    $($word => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                $name::from_db_str(&s).ok_or_else(|| {
                    serde::de::Error::unknown_variant(&s, &[$($word,)+])
                })
            }
        }

        impl Type<Postgres> for $name {
            fn type_info() -> PgTypeInfo {
                <str as Type<Postgres>>::type_info()
            }

            fn compatible(ty: &PgTypeInfo) -> bool {
                <str as Type<Postgres>>::compatible(ty)
            }
        }

        impl<'r> Decode<'r, Postgres> for $name {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                let s = <&str as Decode<Postgres>>::decode(value)?;
                $name::from_db_str(s)
                    .ok_or_else(|| format!("unknown {} {s:?} in the database", stringify!($name)).into())
            }
        }

        impl Encode<'_, Postgres> for $name {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as Encode<Postgres>>::encode(self.as_str(), buf)
            }
        }
    };
}

text_enum! {
    /// A member's role in a tenant (`memberships.role`, `clients.service_role`). Roles nest:
    /// admin ⊃ editor ⊃ viewer; `tenancy` holds the rules (`Role::expand`, parsing operator
    /// input).
    Role {
        Viewer = "viewer",
        Editor = "editor",
        Admin = "admin",
    }
}

text_enum! {
    /// Whether a tenant works (`tenants.status`). A suspended tenant's clients are not found,
    /// its users cannot sign in, its tokens are not refreshed and introspect as inactive.
    TenantStatus {
        Active = "active",
        Suspended = "suspended",
    }
}

text_enum! {
    /// Whether a user may sign in (`users.status`).
    UserStatus {
        Active = "active",
        Disabled = "disabled",
    }
}

text_enum! {
    /// A client's type (`clients.client_type`; RFC 6749 §2.1): whether it can keep a secret.
    ClientType {
        /// Authenticates with a secret (or a key).
        Confidential = "confidential",
        /// Cannot keep a secret (browser and native apps, devices): PKCE is required instead.
        Public = "public",
    }
}

text_enum! {
    /// Where a device authorization request is (`device_grants.status`; RFC 8628 §3.5).
    DeviceGrantStatus {
        /// Waiting for the user to enter the code.
        Pending = "pending",
        /// The user approved; the next poll redeems it.
        Approved = "approved",
        /// The user refused (or their sign-in ended before the device redeemed it).
        Denied = "denied",
        /// Redeemed: tokens were issued once.
        Consumed = "consumed",
    }
}

impl Role {
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

/// Operator input (`--role`): the stored word, exactly.
impl FromStr for Role {
    type Err = ServiceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::from_db_str(s)
            .ok_or_else(|| ServiceError::Invalid(format!("unknown role {s:?} (expected admin, editor or viewer)")))
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

    /// Every word maps back to its value, and nothing else parses (the mapping is one table).
    #[test]
    fn words_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::from_db_str(r.as_str()), Some(*r));
        }
        for s in TenantStatus::ALL {
            assert_eq!(TenantStatus::from_db_str(s.as_str()), Some(*s));
        }
        for s in UserStatus::ALL {
            assert_eq!(UserStatus::from_db_str(s.as_str()), Some(*s));
        }
        for t in ClientType::ALL {
            assert_eq!(ClientType::from_db_str(t.as_str()), Some(*t));
        }
        for s in DeviceGrantStatus::ALL {
            assert_eq!(DeviceGrantStatus::from_db_str(s.as_str()), Some(*s));
        }
        assert_eq!(Role::from_db_str("Admin"), None);
        assert_eq!(UserStatus::from_db_str(""), None);
        assert_eq!(ClientType::from_db_str("public "), None);
    }

    /// JSON carries the same words as the database (audit details, `--json` output).
    #[test]
    fn json_uses_the_stored_words() {
        assert_eq!(serde_json::to_value(Role::Admin).unwrap(), "admin");
        assert_eq!(serde_json::to_value(DeviceGrantStatus::Consumed).unwrap(), "consumed");
        assert_eq!(serde_json::from_str::<Role>("\"editor\"").unwrap(), Role::Editor);
        assert!(serde_json::from_str::<Role>("\"owner\"").is_err());
    }
}
