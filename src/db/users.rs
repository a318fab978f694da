//! User rows. Users are global identities; see the `users` policies in
//! `migrations/0002_tenancy.sql` for who may read them.

use uuid::Uuid;

use super::Tx;
use crate::vocabulary::UserStatus;

/// What login and provisioning need of a user found by email.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserByEmail {
    pub id: Uuid,
    pub password_hash: Option<String>,
    pub status: UserStatus,
    /// Recorded by whatever this sign-in makes (half sign-in, session); see
    /// [`bump_security_stamp`].
    pub security_stamp: Uuid,
}

/// Inserts a user. The transaction must be opened for the user ([`super::Database::user`]).
pub async fn insert(tx: &mut Tx, id: Uuid, email: &str, password_hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO users (id, email, password_hash) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(email)
        .bind(password_hash)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Inserts a user who has no password yet (invited by an admin; a recovery link sets one).
/// The transaction must be opened for the user, like [`insert`].
pub async fn insert_without_password(tx: &mut Tx, id: Uuid, email: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO users (id, email) VALUES ($1, $2)").bind(id).bind(email).execute(tx.conn()).await?;
    Ok(())
}

/// Finds a user by email, case-insensitively (SECURITY DEFINER lookup).
pub async fn by_email(tx: &mut Tx, email: &str) -> Result<Option<UserByEmail>, sqlx::Error> {
    sqlx::query_as("SELECT id, password_hash, status, security_stamp FROM lca_user_by_email($1)")
        .bind(email)
        .fetch_optional(tx.conn())
        .await
}

/// The claims a user's record gives (userinfo, ID token).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserClaims {
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub status: UserStatus,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// A user visible in the transaction (a member of its tenant, or the user's own record).
pub async fn claims(tx: &mut Tx, user_id: Uuid) -> Result<Option<UserClaims>, sqlx::Error> {
    sqlx::query_as("SELECT id, email, name, status, updated_at FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(tx.conn())
        .await
}

/// Gives the user a new security stamp and returns it: every session, half sign-in,
/// unredeemed code and approved device request made under the old one is refused from now on
/// (ARCHITECTURE.md, "Security stamp"). The transaction must act for the user.
pub async fn bump_security_stamp(tx: &mut Tx, user_id: Uuid) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE users SET security_stamp = gen_random_uuid(), updated_at = now() WHERE id = $1 RETURNING security_stamp",
    )
    .bind(user_id)
    .fetch_one(tx.conn())
    .await
}

/// The user's password hash (the transaction must see the user).
pub async fn password_hash(tx: &mut Tx, user_id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(tx.conn())
        .await
        .map(Option::flatten)
}

/// Sets a new password hash (the transaction must act for the user). Ending what the old
/// password signed in is the caller's (`identity::security`).
pub async fn set_password(tx: &mut Tx, user_id: Uuid, hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $2, password_changed_at = now(), updated_at = now() WHERE id = $1")
        .bind(user_id)
        .bind(hash)
        .execute(tx.conn())
        .await?;
    Ok(())
}
