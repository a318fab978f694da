//! A user's second factor (TOTP secret, backup codes, used time steps), in a transaction for
//! that user ([`super::Database::user`]). The password is a column of the user's row
//! (`db::users`).

use uuid::Uuid;

use super::Tx;
use crate::vocabulary::UserStatus;

/// What sign-in needs to know of a user's second factor.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MfaState {
    pub email: String,
    pub status: UserStatus,
    pub totp_secret: Option<Vec<u8>>,
    pub totp_pending: Option<Vec<u8>>,
    pub mfa_enrol_required: bool,
    /// Unused backup codes.
    pub backup_codes_left: i64,
    /// Registered passkeys (`db::passkeys`).
    pub passkeys: i64,
    /// The security stamp a new sign-in records (ARCHITECTURE.md, "Security stamp").
    pub security_stamp: Uuid,
}

impl MfaState {
    pub fn has_totp(&self) -> bool {
        self.totp_secret.is_some()
    }

    /// Whether the user has a second factor at all: TOTP or a passkey.
    pub fn has_second_factor(&self) -> bool {
        self.has_totp() || self.passkeys > 0
    }
}

pub async fn state(tx: &mut Tx, user_id: Uuid) -> Result<Option<MfaState>, sqlx::Error> {
    sqlx::query_as(
        "SELECT email, status, totp_secret, totp_pending, mfa_enrol_required, security_stamp, \
                (SELECT count(*) FROM backup_codes b WHERE b.user_id = u.id AND b.used_at IS NULL) AS backup_codes_left, \
                (SELECT count(*) FROM passkeys k WHERE k.user_id = u.id) AS passkeys \
         FROM users u WHERE id = $1",
    )
    .bind(user_id)
    .fetch_optional(tx.conn())
    .await
}

/// Stores a secret being enrolled (sealed), replacing an earlier unfinished one.
pub async fn set_pending(tx: &mut Tx, user_id: Uuid, sealed: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET totp_pending = $2 WHERE id = $1")
        .bind(user_id)
        .bind(sealed)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Makes the pending secret the active one, with the step its first code matched, and
/// replaces the backup codes. Only if the pending secret is still the one that was checked.
pub async fn activate(
    tx: &mut Tx,
    user_id: Uuid,
    checked_pending: &[u8],
    step: i64,
    backup_hashes: &[[u8; 32]],
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, totp_enabled_at = now(), \
           totp_last_step = $3, mfa_enrol_required = false, updated_at = now() \
         WHERE id = $1 AND totp_pending = $2",
    )
    .bind(user_id)
    .bind(checked_pending)
    .bind(step)
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1;
    if done {
        replace_backup_codes(tx, user_id, backup_hashes).await?;
    }
    Ok(done)
}

/// Replaces every backup code of the user.
pub async fn replace_backup_codes(tx: &mut Tx, user_id: Uuid, hashes: &[[u8; 32]]) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM backup_codes WHERE user_id = $1").bind(user_id).execute(tx.conn()).await?;
    let hashes: Vec<Vec<u8>> = hashes.iter().map(|h| h.to_vec()).collect();
    sqlx::query("INSERT INTO backup_codes (user_id, code_hash) SELECT $1, unnest($2::bytea[])")
        .bind(user_id)
        .bind(hashes)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Accepts a TOTP time step once: only a step later than the last accepted one passes, in
/// one statement, so two requests with the same code cannot both succeed.
pub async fn accept_step(tx: &mut Tx, user_id: Uuid, step: i64) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE users SET totp_last_step = $2 \
         WHERE id = $1 AND totp_secret IS NOT NULL AND (totp_last_step IS NULL OR totp_last_step < $2)",
    )
    .bind(user_id)
    .bind(step)
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1)
}

/// Uses a backup code once (one atomic UPDATE); returns the codes left, or `None` if the
/// code is not an unused code of the user.
pub async fn use_backup_code(tx: &mut Tx, user_id: Uuid, code_hash: &[u8]) -> Result<Option<i64>, sqlx::Error> {
    let used = sqlx::query(
        "UPDATE backup_codes SET used_at = now() WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
    )
    .bind(user_id)
    .bind(code_hash)
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1;
    if !used {
        return Ok(None);
    }
    let left = sqlx::query_scalar("SELECT count(*) FROM backup_codes WHERE user_id = $1 AND used_at IS NULL")
        .bind(user_id)
        .fetch_one(tx.conn())
        .await?;
    Ok(Some(left))
}

/// Removes the second factor (TOTP, backup codes and passkeys); the next sign-in must enrol
/// again.
pub async fn reset(tx: &mut Tx, user_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query("DELETE FROM backup_codes WHERE user_id = $1").bind(user_id).execute(tx.conn()).await?;
    sqlx::query("DELETE FROM passkeys WHERE user_id = $1").bind(user_id).execute(tx.conn()).await?;
    Ok(sqlx::query(
        "UPDATE users SET totp_secret = NULL, totp_pending = NULL, totp_enabled_at = NULL, totp_last_step = NULL, \
           mfa_enrol_required = true, updated_at = now() WHERE id = $1",
    )
    .bind(user_id)
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1)
}

/// Marks the enrolment an administrator's reset asked for as done (a passkey was registered in
/// place of TOTP; `activate` does it for TOTP).
pub async fn enrolled(tx: &mut Tx, user_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET mfa_enrol_required = false, updated_at = now() WHERE id = $1 AND mfa_enrol_required")
        .bind(user_id)
        .execute(tx.conn())
        .await?;
    Ok(())
}
