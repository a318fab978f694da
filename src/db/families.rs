//! Ending token families, with the audit event that says why.
//!
//! A family is what one authorization issued (refresh tokens and their access tokens).
//! Whatever ends one — a replay, a membership that ended, a second factor now required, a
//! password change, a recovery, the revocation endpoint — writes `token_family.revoked` with
//! the reason, in the transaction that ends it, so one query of the audit log lists every
//! ended family and why. Deleting a client ends its families in bulk and records the count in
//! `client.deleted` instead of one row per family.

use uuid::Uuid;

use super::audit::{self, Actor};
use super::{Tx, grants};

/// Ends one live family of the transaction's tenant and audits it. True if this call ended
/// it (a family already ended writes nothing, so concurrent replays write one row).
pub async fn revoke(tx: &mut Tx, actor: &Actor, family_id: Uuid, reason: &str) -> Result<bool, sqlx::Error> {
    let Some(ended) = grants::revoke_family(tx, family_id, reason).await? else { return Ok(false) };
    record(tx, actor, &ended, reason).await?;
    Ok(true)
}

/// Ends every live family of a user in the transaction's tenant, auditing each; returns how
/// many.
pub async fn revoke_of_user(tx: &mut Tx, actor: &Actor, user_id: Uuid, reason: &str) -> Result<u64, sqlx::Error> {
    let ended = grants::revoke_user_families(tx, user_id, reason).await?;
    for family in &ended {
        record(tx, actor, family, reason).await?;
    }
    Ok(u64::try_from(ended.len()).unwrap_or(u64::MAX))
}

async fn record(tx: &mut Tx, actor: &Actor, family: &grants::Ended, reason: &str) -> Result<(), sqlx::Error> {
    let details = serde_json::json!({
        "reason": reason,
        "client_id": family.client_id,
        "user_id": family.user_id,
    });
    audit::append(
        tx,
        &actor.event("token_family.revoked", ("token_family", Some(family.family_id.to_string())), details),
    )
    .await
}
