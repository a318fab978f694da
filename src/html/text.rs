//! Every string the hosted pages show, one table per language ([`EN`] in `en.rs`, [`NL`] in
//! `nl.rs`; the admin pages' [`ADMIN`] in `admin.rs`), and how a
//! request's language is chosen from a list of tags ([`Lang`]).
//!
//! Plain tables rather than a message-format crate (fluent, rust-i18n): a table is a struct,
//! so a key missing from one language does not compile, a lookup is a field read, and the
//! pages' strings need neither plurals nor arguments (a count is shown after its label).
//! `tests/it/language.rs` holds each table to being a translation (no value left in English
//! but the ones that are the same in both languages). The admin pages' words
//! ([`AdminText`]) are English only for now.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod admin;
mod admin_nl;
mod en;
mod nl;

pub use admin::{ADMIN, AdminText};
pub use admin_nl::ADMIN_NL;
pub use en::EN;
pub use nl::NL;

/// A language the hosted pages are shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    Nl,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Nl];

    /// The admin pages' words in this language.
    pub fn admin(self) -> &'static AdminText {
        match self {
            Lang::En => &ADMIN,
            Lang::Nl => &ADMIN_NL,
        }
    }

    /// Its table of words.
    pub fn text(self) -> &'static Text {
        match self {
            Lang::En => &EN,
            Lang::Nl => &NL,
        }
    }

    /// Its BCP 47 tag, as discovery's `ui_locales_supported` lists it.
    pub fn tag(self) -> &'static str {
        self.text().lang
    }

    /// The language of one BCP 47 tag, by its primary subtag (`nl`, `nl-NL` and `nl-BE` are
    /// Dutch); `None` for one we do not have.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?;
        Lang::ALL.into_iter().find(|l| primary.eq_ignore_ascii_case(l.tag()))
    }

    /// The first language we have of `ui_locales` (OIDC Core §3.1.2.1: space-separated tags in
    /// order of preference).
    pub fn from_ui_locales(list: &str) -> Option<Lang> {
        list.split_whitespace().find_map(Lang::from_tag)
    }

    /// The language we have that an `Accept-Language` header (RFC 9110 §12.5.4) prefers most:
    /// highest `q` first, in order among equals; `q=0` means "not this one", and `*` is not a
    /// choice of ours to make.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(u16, Lang)> = None;
        for range in header.split(',').take(32) {
            let mut parts = range.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let q = parts
                .find_map(|p| {
                    p.trim().split_once('=').filter(|(k, _)| k.trim().eq_ignore_ascii_case("q")).map(|(_, v)| v)
                })
                .map_or(Some(1000), |q| q.trim().parse::<f32>().ok().map(|q| (q.clamp(0.0, 1.0) * 1000.0) as u16));
            let (Some(q), Some(lang)) = (q, Lang::from_tag(tag)) else { continue };
            if q > 0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, lang)| lang)
    }

    /// A moment as this language writes it (day, month name, year, time; UTC).
    pub fn datetime(self, at: DateTime<Utc>) -> String {
        match self {
            Lang::En => at.format_localized("%-d %b %Y, %H:%M UTC", chrono::Locale::en_GB).to_string(),
            Lang::Nl => at.format_localized("%-d %b %Y %H:%M UTC", chrono::Locale::nl_NL).to_string(),
        }
    }
}

/// The words of the hosted pages.
#[derive(Debug)]
pub struct Text {
    /// The BCP 47 tag of the language (`<html lang>`).
    pub lang: &'static str,
    pub product: &'static str,
    pub sign_in_title: &'static str,
    pub sign_in_to: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub sign_in: &'static str,
    pub bad_credentials: &'static str,
    pub consent_title: &'static str,
    pub consent_intro: &'static str,
    pub consent_allow: &'static str,
    pub consent_deny: &'static str,
    /// Before the name of an API (resource indicators) the application will call for the user.
    pub consent_api: &'static str,
    pub consent_signed_in_as: &'static str,
    pub tenant_title: &'static str,
    pub tenant_intro: &'static str,
    pub tenant_continue: &'static str,
    pub error_title: &'static str,
    pub error_reference: &'static str,
    pub signed_out_title: &'static str,
    pub signed_out_body: &'static str,
    pub logout_title: &'static str,
    pub logout_body: &'static str,
    pub logout_confirm: &'static str,
    pub continue_label: &'static str,
    pub form_post_body: &'static str,
    pub signed_in_title: &'static str,
    pub signed_in_body: &'static str,
    pub sign_out: &'static str,
    pub mfa_title: &'static str,
    pub mfa_intro: &'static str,
    pub mfa_code: &'static str,
    pub mfa_verify: &'static str,
    pub mfa_bad_code: &'static str,
    pub enrol_title: &'static str,
    pub enrol_required: &'static str,
    pub enrol_scan: &'static str,
    pub enrol_key: &'static str,
    pub enrol_submit: &'static str,
    pub backup_title: &'static str,
    pub backup_intro: &'static str,
    pub backup_download: &'static str,
    pub backup_used: &'static str,
    pub account_title: &'static str,
    pub account_profile: &'static str,
    pub account_profile_intro: &'static str,
    pub account_profile_name: &'static str,
    pub account_profile_given_name: &'static str,
    pub account_profile_family_name: &'static str,
    pub account_profile_username: &'static str,
    pub account_profile_locale: &'static str,
    pub account_profile_zoneinfo: &'static str,
    pub account_profile_email_verified: &'static str,
    pub account_profile_email_unverified: &'static str,
    pub account_profile_save: &'static str,
    pub account_profile_saved: &'static str,
    pub account_mfa: &'static str,
    pub account_mfa_on: &'static str,
    pub account_mfa_off: &'static str,
    pub account_mfa_enrol: &'static str,
    pub account_mfa_reenrol: &'static str,
    pub account_backup_regenerate: &'static str,
    pub account_password: &'static str,
    pub account_current_password: &'static str,
    pub account_new_password: &'static str,
    pub account_password_changed: &'static str,
    pub account_password_wrong: &'static str,
    pub account_sessions: &'static str,
    pub account_this_session: &'static str,
    pub account_end_session: &'static str,
    pub account_half_sign_in: &'static str,
    pub account_sign_out_everywhere: &'static str,
    pub account_back: &'static str,
    pub admin_reset_mfa: &'static str,
    pub admin_recovery_link: &'static str,
    pub admin_mfa_reset_done: &'static str,
    pub admin_sign_out: &'static str,
    pub admin_sign_out_done: &'static str,
    pub admin_link_title: &'static str,
    pub admin_link_body: &'static str,
    pub recover_title: &'static str,
    pub recover_intro: &'static str,
    pub recover_submit: &'static str,
    pub recover_invalid: &'static str,
    pub recover_done: &'static str,
    pub device_title: &'static str,
    pub device_intro: &'static str,
    pub device_code_label: &'static str,
    pub device_bad_code: &'static str,
    pub device_confirm_title: &'static str,
    pub device_confirm_intro: &'static str,
    pub device_confirm_check: &'static str,
    pub device_approve: &'static str,
    pub device_deny: &'static str,
    pub device_approved_title: &'static str,
    pub device_approved_body: &'static str,
    pub device_denied_title: &'static str,
    pub device_denied_body: &'static str,
    pub account_devices: &'static str,
    pub account_devices_none: &'static str,
    pub account_device_since: &'static str,
    pub account_device_revoke: &'static str,
    /// What each scope lets a client do, on the consent and device pages.
    pub scope_openid: &'static str,
    pub scope_profile: &'static str,
    pub scope_email: &'static str,
    pub scope_offline_access: &'static str,
    pub scope_admin: &'static str,
    /// The notice mailed after a password change (`pages::account`).
    pub mail_password_changed_subject: &'static str,
    pub mail_password_changed_body: &'static str,
    pub mail_account: &'static str,
    pub mail_when: &'static str,
    pub mail_ip: &'static str,
    pub mail_not_you: &'static str,
    /// Self-service password reset (`pages::reset`) and its mail.
    pub forgot_link: &'static str,
    pub forgot_title: &'static str,
    pub forgot_intro: &'static str,
    pub forgot_submit: &'static str,
    pub forgot_sent_title: &'static str,
    pub forgot_sent_body: &'static str,
    pub reset_title: &'static str,
    pub reset_intro: &'static str,
    pub reset_submit: &'static str,
    pub reset_invalid: &'static str,
    pub reset_done: &'static str,
    pub mail_reset_subject: &'static str,
    pub mail_reset_body: &'static str,
    pub mail_reset_expires: &'static str,
    pub mail_reset_not_you: &'static str,
    /// Account notices (`notify`).
    pub mail_mfa_reset_subject: &'static str,
    pub mail_mfa_reset_body: &'static str,
    pub mail_device_subject: &'static str,
    pub mail_device_body: &'static str,
    pub mail_device_not_you: &'static str,
    /// The password rules (`identity::password::Problem`; `{n}` is the limit).
    pub password_too_short: &'static str,
    pub password_too_long: &'static str,
    pub password_too_common: &'static str,
    /// Error pages (`Words::Of`, written by `error::finish_errors`).
    pub error_form_expired_title: &'static str,
    pub error_form_expired_body: &'static str,
    pub error_sign_in_expired_title: &'static str,
    pub error_sign_in_expired_body: &'static str,
    pub error_bad_client_title: &'static str,
    pub error_logout_invalid_title: &'static str,
    pub error_unknown_organisation_title: &'static str,
    pub error_unknown_organisation_body: &'static str,
    pub error_too_many_title: &'static str,
    pub error_too_many_body: &'static str,
    pub error_busy_title: &'static str,
    pub error_busy_body: &'static str,
    pub error_unavailable_title: &'static str,
    pub error_unavailable_body: &'static str,
    /// Email verification (`identity::verification`) and invitations (`tenancy::invitations`).
    pub account_verify_send: &'static str,
    pub account_verify_sent: &'static str,
    pub account_verify_too_often: &'static str,
    pub verify_title: &'static str,
    pub verify_intro: &'static str,
    pub verify_submit: &'static str,
    pub verify_done: &'static str,
    pub verify_invalid: &'static str,
    pub mail_verify_subject: &'static str,
    pub mail_verify_body: &'static str,
    pub mail_verify_not_you: &'static str,
    pub invite_title: &'static str,
    pub invite_intro: &'static str,
    pub invite_role: &'static str,
    pub invite_for: &'static str,
    pub invite_new_account: &'static str,
    pub invite_existing_account: &'static str,
    pub invite_accept: &'static str,
    pub invite_sign_in: &'static str,
    pub invite_sign_in_button: &'static str,
    pub invite_set_password: &'static str,
    pub invite_done: &'static str,
    pub invite_already: &'static str,
    pub invite_invalid: &'static str,
    pub mail_invite_subject: &'static str,
    pub mail_invite_body: &'static str,
    pub mail_invite_accept: &'static str,
    pub mail_invite_not_you: &'static str,
    pub account_passkeys: &'static str,
    pub account_passkeys_intro: &'static str,
    pub account_passkeys_none: &'static str,
    pub passkey_name: &'static str,
    pub passkey_add: &'static str,
    pub passkey_added_on: &'static str,
    pub passkey_last_used: &'static str,
    pub passkey_never_used: &'static str,
    pub passkey_remove: &'static str,
    pub passkey_removed: &'static str,
    pub passkey_sign_in: &'static str,
    pub passkey_use: &'static str,
    pub passkey_or_code: &'static str,
    pub enrol_passkey_instead: &'static str,
    pub passkey_failed: &'static str,
    pub passkey_expired: &'static str,
    pub passkey_name_invalid: &'static str,
    pub passkey_duplicate: &'static str,
    pub passkey_unsupported: &'static str,
    pub passkey_not_offered: &'static str,
    pub mail_passkey_added_subject: &'static str,
    pub mail_passkey_added_body: &'static str,
    pub mail_passkey_removed_subject: &'static str,
    pub mail_passkey_removed_body: &'static str,
}

/// Words of a page whose language is known only when it is written: an error page, which
/// `error::finish_errors` writes after the handler (ARCHITECTURE.md, "Languages").
#[derive(Clone, Debug)]
pub enum Words {
    /// A field of the page tables, read in the page's language.
    Of(fn(&'static Text) -> &'static str),
    /// Words already in the page's language, or detail for an application's developer
    /// (English, like the protocol's `error_description`).
    Said(std::borrow::Cow<'static, str>),
}

impl Words {
    /// The words in `lang`.
    pub fn in_lang(&self, lang: Lang) -> std::borrow::Cow<'static, str> {
        match self {
            Words::Of(field) => field(lang.text()).into(),
            Words::Said(words) => words.clone(),
        }
    }
}

impl From<&'static str> for Words {
    fn from(words: &'static str) -> Self {
        Words::Said(words.into())
    }
}

impl From<String> for Words {
    fn from(words: String) -> Self {
        Words::Said(words.into())
    }
}

/// What a scope lets the application do, in the user's words.
pub fn scope_description(t: &'static Text, scope: &str) -> Option<&'static str> {
    match scope {
        "openid" => Some(t.scope_openid),
        "profile" => Some(t.scope_profile),
        "email" => Some(t.scope_email),
        "offline_access" => Some(t.scope_offline_access),
        "admin" => Some(t.scope_admin),
        _ => None,
    }
}
