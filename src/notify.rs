//! Mail to a user (ARCHITECTURE.md, "Mail"): notices about their own account, when someone
//! else may have acted on it (an administrator reset their second factor, or a device was
//! connected), and the mails that carry an invitation or an email verification link. Notices
//! go to the account's address in the user's own language (their profile's `locale`, else
//! English), in the background; a notice that cannot be made is logged, never a failure of
//! the action that caused it.

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
    tx.commit().await?;
    let Some(email) = email else { return Ok(None) };
    let lang = profile_lang(state, user_id).await?;
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

/// A mail that carries a one-time link: what it is for (`lead`), the link, when it expires,
/// and what to do if nobody asked for it.
pub fn link_mail(
    lang: Lang,
    to: &str,
    subject: String,
    lead: &str,
    link: &crate::secrets::SecretString,
    expires_at: chrono::DateTime<chrono::Utc>,
    not_you: &str,
) -> Mail {
    use crate::secrets::ExposeSecret;
    let t = lang.text();
    let (link, expires) = (link.expose_secret(), lang.datetime(expires_at));
    let body = format!("{lead}\n\n{link}\n\n{} {expires}.\n\n{not_you}\n", t.mail_reset_expires);
    Mail { to: to.to_owned(), subject, body }
}

/// The mail that carries an invitation, in `lang` (the inviter's page language: the invitee's
/// own is not known before they have an account in this tenant).
pub fn invitation_mail(lang: Lang, invited: &crate::tenancy::invitations::Invited) -> Mail {
    let t = lang.text();
    let lead =
        format!("{}\n\n{} ({})\n\n{}", t.mail_invite_body, invited.tenant_name, invited.role, t.mail_invite_accept);
    let subject = format!("{} {}", t.mail_invite_subject, invited.tenant_name);
    link_mail(lang, &invited.email, subject, &lead, &invited.link, invited.expires_at, t.mail_invite_not_you)
}

/// The mail that carries an email verification link, in `lang`.
pub fn verification_mail(lang: Lang, issued: &crate::identity::verification::Issued) -> Mail {
    let t = lang.text();
    let subject = t.mail_verify_subject.to_owned();
    link_mail(lang, &issued.email, subject, t.mail_verify_body, &issued.link, issued.expires_at, t.mail_verify_not_you)
}

/// The user's profile language, else English.
async fn profile_lang(state: &AppState, user_id: Uuid) -> Result<Lang, sqlx::Error> {
    let mut tx = state.db.user(user_id).await?;
    let locale = db::users::profile(&mut tx, user_id).await?.and_then(|p| p.locale);
    tx.commit().await?;
    Ok(locale.as_deref().and_then(Lang::from_tag).unwrap_or_default())
}

/// The notice of a password change, to the account's address: when, and from where.
pub fn password_changed_mail(lang: Lang, email: &str, ip: Option<std::net::IpAddr>) -> Mail {
    let t = lang.text();
    account_notice_mail(lang, email, ip, t.mail_password_changed_subject, t.mail_password_changed_body)
}

/// A notice of a change to the account's security, to the account's address: what
/// (`subject`, `what`), when, and from where.
pub fn account_notice_mail(lang: Lang, email: &str, ip: Option<std::net::IpAddr>, subject: &str, what: &str) -> Mail {
    let t = lang.text();
    let ip = ip.map(|ip| ip.to_string()).unwrap_or_default();
    let body = format!(
        "{}\n\n{}: {email}\n{}: {}\n{}: {ip}\n\n{}\n",
        what,
        t.mail_account,
        t.mail_when,
        lang.datetime(chrono::Utc::now()),
        t.mail_ip,
        t.mail_not_you,
    );
    Mail { to: email.to_owned(), subject: subject.to_owned(), body }
}
