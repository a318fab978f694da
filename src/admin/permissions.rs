//! The permission table: every action of the admin surface and the least role that may take it
//! (ARCHITECTURE.md, "Admin surface"). The admin API, the admin pages and the tests read this
//! one table; a handler asks [`Caller::require`](super::Caller::require) before it acts.

use crate::vocabulary::Role;

/// What an administrator may do. The word of each (`as_str`) is what the OpenAPI document
/// names in each operation's `x-permission`, so the tests can hold every route to this table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// List and read members.
    ReadMembers,
    /// List and read clients (never a secret).
    ReadClients,
    /// List the devices signed in through the device grant.
    ReadDevices,
    /// List the live sessions (token families) of the tenant.
    ReadSessions,
    /// Read, filter, export and verify the audit log.
    ReadAudit,
    /// Read the tenant's settings.
    ReadSettings,
    /// Register, change, rotate the secret of and delete clients.
    ManageClients,
    /// Revoke a device.
    ManageDevices,
    /// Add members, change their roles, remove them.
    ManageMembers,
    /// Reset a member's second factor, issue a recovery link, sign a member out everywhere.
    RecoverMembers,
    /// End one session.
    EndSessions,
    /// Change the tenant's settings (require MFA).
    ManageSettings,
    /// Create, suspend and reactivate tenants and appoint their first admin.
    ManageTenants,
}

/// Who may take an action: members with at least a role, or platform admins only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Role(Role),
    /// An admin of the platform tenant, acting for it. Anyone else is told the route does not
    /// exist (a 404), so tenant admins cannot even see the platform's routes.
    PlatformAdmin,
}

impl Action {
    /// Every action, in the order of the table.
    pub const ALL: &'static [Action] = &[
        Action::ReadMembers,
        Action::ReadClients,
        Action::ReadDevices,
        Action::ReadSessions,
        Action::ReadAudit,
        Action::ReadSettings,
        Action::ManageClients,
        Action::ManageDevices,
        Action::ManageMembers,
        Action::RecoverMembers,
        Action::EndSessions,
        Action::ManageSettings,
        Action::ManageTenants,
    ];

    /// The table: the least role each action needs (roles nest, admin ⊃ editor ⊃ viewer).
    pub const fn need(self) -> Need {
        match self {
            Action::ReadMembers
            | Action::ReadClients
            | Action::ReadDevices
            | Action::ReadSessions
            | Action::ReadAudit
            | Action::ReadSettings => Need::Role(Role::Viewer),
            Action::ManageClients | Action::ManageDevices => Need::Role(Role::Editor),
            Action::ManageMembers | Action::RecoverMembers | Action::EndSessions | Action::ManageSettings => {
                Need::Role(Role::Admin)
            }
            Action::ManageTenants => Need::PlatformAdmin,
        }
    }

    /// The action's word (`x-permission` in the OpenAPI document).
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::ReadMembers => "members.read",
            Action::ReadClients => "clients.read",
            Action::ReadDevices => "devices.read",
            Action::ReadSessions => "sessions.read",
            Action::ReadAudit => "audit.read",
            Action::ReadSettings => "settings.read",
            Action::ManageClients => "clients.manage",
            Action::ManageDevices => "devices.manage",
            Action::ManageMembers => "members.manage",
            Action::RecoverMembers => "members.recover",
            Action::EndSessions => "sessions.end",
            Action::ManageSettings => "settings.manage",
            Action::ManageTenants => "tenants.manage",
        }
    }

    pub fn from_word(word: &str) -> Option<Action> {
        Action::ALL.iter().copied().find(|a| a.as_str() == word)
    }

    /// Whether a member with `role` (a platform admin when `platform_admin`) may take it.
    pub fn allowed(self, role: Role, platform_admin: bool) -> bool {
        match self.need() {
            Need::Role(least) => role >= least,
            Need::PlatformAdmin => platform_admin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Roles nest: whatever a viewer may do an editor may, whatever an editor may an admin
    /// may; only platform admins manage tenants; every word maps back to its action.
    #[test]
    fn the_table_nests() {
        for a in Action::ALL {
            assert_eq!(Action::from_word(a.as_str()), Some(*a));
            if a.allowed(Role::Viewer, false) {
                assert!(a.allowed(Role::Editor, false), "{a:?}");
            }
            if a.allowed(Role::Editor, false) {
                assert!(a.allowed(Role::Admin, false), "{a:?}");
            }
        }
        assert!(!Action::ManageTenants.allowed(Role::Admin, false));
        assert!(Action::ManageTenants.allowed(Role::Admin, true));
        assert!(!Action::ManageClients.allowed(Role::Viewer, false));
        assert!(Action::ManageClients.allowed(Role::Editor, false));
        assert!(!Action::ManageMembers.allowed(Role::Editor, false));
    }
}
