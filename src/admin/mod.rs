//! The admin surface's domain: who acts ([`Caller`]), what each role may do
//! ([`permissions`]), and the operations the admin API (`crate::api`), the admin pages and the
//! command line share. Every operation first checks the permission table
//! ([`Caller::require`]), then works in a transaction of the caller's own tenant, where Row
//! Level Security hides every other tenant's rows (ARCHITECTURE.md, "Admin surface").

pub mod audit;
pub mod caller;
pub mod clients;
pub mod devices;
pub mod invitations;
pub mod members;
pub mod page;
pub mod permissions;
pub mod platform;
pub mod resources;
pub mod sessions;
pub mod settings;

pub use caller::{Caller, HandlerChecks, Principal};
pub use page::{Cursor, Page};
pub use permissions::{Action, Need};
