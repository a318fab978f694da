//! User rows. Users are global identities; see the `users` policies in
//! `migrations/0002_tenancy.sql` for who may read them.

use uuid::Uuid;

use super::Tx;
use crate::vocabulary::UserStatus;

/// The columns of [`Profile`], for `concat!` (queries are static text).
macro_rules! profile_columns {
    () => {
        "name, given_name, family_name, preferred_username, locale, zoneinfo, email_verified"
    };
}

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
    pub status: UserStatus,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    #[sqlx(flatten)]
    pub profile: Profile,
}

/// A user visible in the transaction (a member of its tenant, or the user's own record).
pub async fn claims(tx: &mut Tx, user_id: Uuid) -> Result<Option<UserClaims>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT id, email, status, updated_at, ", profile_columns!(), " FROM users WHERE id = $1"))
        .bind(user_id)
        .fetch_optional(tx.conn())
        .await
}

/// What a user keeps about themselves (OIDC Core §5.1), as stored; `identity::profile`
/// validates it and is the only writer.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Profile {
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub preferred_username: Option<String>,
    pub locale: Option<String>,
    pub zoneinfo: Option<String>,
    pub email_verified: bool,
}

/// The profile of a user visible in the transaction.
pub async fn profile(tx: &mut Tx, user_id: Uuid) -> Result<Option<Profile>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", profile_columns!(), " FROM users WHERE id = $1"))
        .bind(user_id)
        .fetch_optional(tx.conn())
        .await
}

/// The profile, with the row locked until the transaction ends: two edits at once apply one
/// after the other, and each records what it changed from what the other left. The
/// transaction must act for the user.
pub async fn profile_for_update(tx: &mut Tx, user_id: Uuid) -> Result<Option<Profile>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", profile_columns!(), " FROM users WHERE id = $1 FOR UPDATE"))
        .bind(user_id)
        .fetch_optional(tx.conn())
        .await
}

/// Stores the whole profile and bumps `updated_at` (the `updated_at` claim); returns it. The
/// transaction must act for the user.
pub async fn set_profile(
    tx: &mut Tx,
    user_id: Uuid,
    p: &Profile,
) -> Result<chrono::DateTime<chrono::Utc>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE users SET name = $2, given_name = $3, family_name = $4, preferred_username = $5, locale = $6, \
         zoneinfo = $7, email_verified = $8, updated_at = now() WHERE id = $1 RETURNING updated_at",
    )
    .bind(user_id)
    .bind(&p.name)
    .bind(&p.given_name)
    .bind(&p.family_name)
    .bind(&p.preferred_username)
    .bind(&p.locale)
    .bind(&p.zoneinfo)
    .bind(p.email_verified)
    .fetch_one(tx.conn())
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

/// Marks the user's address verified, if `email` is still their address (case aside); `false`
/// when it is not (the transaction must act for the user).
pub async fn verify_email(tx: &mut Tx, user_id: Uuid, email: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE users SET email_verified = true, updated_at = now() WHERE id = $1 AND lower(email) = lower($2)",
    )
    .bind(user_id)
    .bind(email)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}
