//! Actions on a user's security that span tenants: ending every session and token family,
//! and recording account events in the audit chain of each tenant the user belongs to.

use uuid::Uuid;

use crate::db::{self, Tx, audit};

/// Sessions and token families ended.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Ended {
    pub sessions: u64,
    pub families: u64,
    /// The user's new security stamp: a session kept (`keep`) must record it to go on.
    #[serde(skip)]
    pub stamp: Uuid,
}

/// Signs the user out everywhere: gives them a new security stamp (so anything made under the
/// old one is refused even where a row below is missed), ends every browser session that
/// holds them but `keep` (the hash of the current one), every live token family of theirs in
/// every tenant, approved device requests not yet redeemed, and open password reset links;
/// each client with a back-channel logout URI that had one of those families gets a logout
/// notice (`db::logout_notices`, delivered by `crate::backchannel`). Runs in the caller's
/// transaction, so it commits with the action that caused it (password change, MFA reset,
/// recovery, "sign out everywhere"), and each ended family is audited as done by `actor`.
/// The transaction is switched to act for the user.
pub async fn end_sessions_and_families(
    tx: &mut Tx,
    actor: &audit::Actor,
    user_id: Uuid,
    keep: Option<&[u8]>,
    reason: &str,
) -> Result<Ended, sqlx::Error> {
    tx.switch_user(user_id).await?;
    let stamp = db::users::bump_security_stamp(tx, user_id).await?;
    let sessions = db::browser_sessions::end_for_user(tx, user_id, keep).await?;
    // A password reset link asked for before this must not outlive it.
    db::password_resets::end_for_user(tx, user_id).await?;
    let mut families = 0;
    let original = tx.tenant_id();
    for tenant in db::families::tenants_of_user(tx, user_id).await? {
        tx.switch_tenant(tenant).await?;
        // The relying parties hear of it (back-channel logout), once this commits.
        db::logout_notices::enqueue(tx, user_id, None, reason).await?;
        families += db::families::revoke_of_user(tx, actor, user_id, reason).await?;
        // An approved device request not yet redeemed would become a family after this.
        db::device_grants::deny_approved_of_user(tx, user_id).await?;
    }
    if let Some(t) = original {
        tx.switch_tenant(t).await?;
    }
    Ok(Ended { sessions, families, stamp })
}

/// Appends an account event (password change, MFA enrolment…) to the chain of every tenant
/// the user is an active member of, so each tenant's administrators see it; a user with no
/// membership has it in the platform tenant's chain.
pub async fn append_for_user(tx: &mut Tx, user_id: Uuid, event: &audit::Event<'_>) -> Result<(), sqlx::Error> {
    let original = tx.tenant_id();
    let mut tenants: Vec<Uuid> =
        db::memberships::of_user(tx, user_id).await?.into_iter().map(|m| m.tenant_id).collect();
    if tenants.is_empty() {
        tenants.extend(db::tenants::platform(tx).await?);
    }
    for tenant in tenants {
        tx.switch_tenant(tenant).await?;
        audit::append(tx, event).await?;
    }
    if let Some(t) = original {
        tx.switch_tenant(t).await?;
    }
    Ok(())
}

/// Whether a user must pass a second factor to sign in at all: they have one (TOTP or a
/// passkey), an
/// administrator reset it (enrol again), or they administer a tenant (admin tokens and admin
/// pages never rest on a password alone).
pub async fn needs_second_factor(tx: &mut Tx, user_id: Uuid, state: &db::mfa::MfaState) -> Result<bool, sqlx::Error> {
    if state.has_second_factor() || state.mfa_enrol_required {
        return Ok(true);
    }
    is_admin_anywhere(tx, user_id).await
}

/// Admin of any active tenant (the platform tenant's admins included).
pub async fn is_admin_anywhere(tx: &mut Tx, user_id: Uuid) -> Result<bool, sqlx::Error> {
    Ok(db::memberships::of_user(tx, user_id).await?.iter().any(|m| m.role == crate::vocabulary::Role::Admin))
}

/// Whether this user must pass a second factor for tokens in the transaction's tenant: the
/// client or the tenant requires it, or [`needs_second_factor`] says so. One rule for the
/// authorization endpoint, the device page, refreshes and device redemption. The
/// transaction must be opened for the tenant; it is switched to act for the user as well.
pub async fn second_factor_required(tx: &mut Tx, client_requires: bool, user_id: Uuid) -> Result<bool, sqlx::Error> {
    if client_requires || db::tenants::requires_mfa(tx).await? {
        return Ok(true);
    }
    tx.switch_user(user_id).await?;
    match db::mfa::state(tx, user_id).await? {
        Some(st) => needs_second_factor(tx, user_id, &st).await,
        None => Ok(true),
    }
}
