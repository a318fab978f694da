//! Notices mailed to a user about their own account (ARCHITECTURE.md, "Mail"), when someone
//! else may have acted on it: an administrator reset their second factor, or a device was
//! connected. They go to the account's address in the user's own language (their profile's
//! `locale`, else English), in the background; a notice that cannot be made is logged, never
//! a failure of the action that caused it.

use uuid::Uuid;

use crate::db;
use crate::html::text::{Lang, Text};
use crate::mail::Mail;
use crate::state::AppState;

/// What happened.
#[derive(Debug, Clone, Copy)]
pub enum Notice<'a> {
    /// An administrator removed the second factor (and signed the user out).
    MfaReset,
    /// The user approved a device (`device`: the client's name) on the device page.
    DeviceConnected { device: &'a str },
}

/// Mails `notice` to `user_id`'s address.
pub async fn send(state: &AppState, user_id: Uuid, notice: Notice<'_>) {
    match compose(state, user_id, notice).await {
        Ok(Some(mail)) => state.mailer.send_later(mail),
        Ok(None) => {}
        Err(e) => tracing::error!(user = %user_id, error = %e, "an account notice could not be made"),
    }
}

async fn compose(state: &AppState, user_id: Uuid, notice: Notice<'_>) -> Result<Option<Mail>, sqlx::Error> {
    let mut tx = state.db.user(user_id).await?;
    let email = db::users::claims(&mut tx, user_id).await?.map(|c| c.email);
    let locale = db::users::profile(&mut tx, user_id).await?.and_then(|p| p.locale);
    tx.commit().await?;
    let Some(email) = email else { return Ok(None) };
    let lang = locale.as_deref().and_then(Lang::from_tag).unwrap_or_default();
    let t: &Text = lang.text();
    let when = format!("{}: {}", t.mail_when, lang.datetime(chrono::Utc::now()));
    let (subject, body) = match notice {
        Notice::MfaReset => {
            (t.mail_mfa_reset_subject, format!("{}\n\n{when}\n\n{}\n", t.mail_mfa_reset_body, t.mail_not_you))
        }
        Notice::DeviceConnected { device } => {
            (t.mail_device_subject, format!("{} {device}\n\n{when}\n\n{}\n", t.mail_device_body, t.mail_device_not_you))
        }
    };
    Ok(Some(Mail { to: email, subject: subject.to_owned(), body }))
}
