//! A user's profile: the OIDC Core §5.1 standard claims a person keeps about themselves
//! (`name`, `given_name`, `family_name`, `preferred_username`, `locale`, `zoneinfo`) and
//! whether their email address is verified. One function, [`change`], validates and stores an
//! edit for all three surfaces: the account page (the user, [`Editor::Own`]), the admin API
//! ([`Editor::Admin`], under the recovery rule: a user is global, so every tenant they belong
//! to sees what an administrator writes) and the command line ([`Editor::Operator`]).

use uuid::Uuid;

use crate::db::audit::Actor;
use crate::db::{self, Database, users::Profile};
use crate::identity::recovery::{self, Rule};
use crate::identity::security;
use crate::service_error::ServiceError;

/// Longest `name`, `given_name` and `family_name`, in characters.
pub const NAME_MAX: usize = 200;
/// Longest `preferred_username`, in characters.
pub const USERNAME_MAX: usize = 100;
/// Longest `locale` (a BCP 47 tag); RFC 5646 §4.4.1 asks implementations to hold at least 35.
pub const LOCALE_MAX: usize = 35;
/// Longest `zoneinfo`.
pub const ZONE_MAX: usize = 64;

/// What an edit does to one field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Field {
    /// Leave it as it is.
    #[default]
    Keep,
    /// Remove it (the claim is then left out).
    Clear,
    /// Set it to this (validated by [`change`]).
    Set(String),
}

impl Field {
    /// A form's text box: empty (or only spaces) clears the field, anything else sets it.
    pub fn from_input(s: &str) -> Self {
        if s.trim_matches(' ').is_empty() { Self::Clear } else { Self::Set(s.to_owned()) }
    }
}

/// An edit of a profile; fields left at [`Field::Keep`] are not touched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileEdit {
    pub name: Field,
    pub given_name: Field,
    pub family_name: Field,
    pub preferred_username: Field,
    pub locale: Field,
    pub zoneinfo: Field,
    /// Only an administrator or an operator may say an address is verified.
    pub email_verified: Option<bool>,
}

/// Who edits, which decides what they may change and whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Editor {
    /// The user themselves (not `email_verified`).
    Own,
    /// An administrator of `tenant_id`, on a member within reach (`identity::recovery`); the
    /// rule's handler half is skipped only by the admin surface's tests.
    Admin { tenant_id: Uuid, rule: Rule },
    /// An operator at the command line, on anyone.
    Operator,
}

/// The profile after an edit, and the fields it changed (none: nothing was written).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Changed {
    pub user_id: Uuid,
    pub profile: Profile,
    pub changed: Vec<&'static str>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// Validates `edit` (every field, before anything is read), then in one transaction: locks
/// the user's row, stores the fields that differ with a new `updated_at`, and appends
/// `user.profile_changed` (each changed field, from and to) to the chain of each of the
/// user's tenants. `None` when there is no such user, or (an administrator) the user is out
/// of reach — the caller answers both as a missing member.
pub async fn change(
    db: &Database,
    actor: &Actor,
    editor: Editor,
    target: Uuid,
    edit: &ProfileEdit,
) -> Result<Option<Changed>, ServiceError> {
    let edit = checked(edit)?;
    if editor == Editor::Own && edit.email_verified.is_some() {
        return Err(ServiceError::Forbidden("only an administrator may mark an email address verified".into()));
    }
    let mut tx = match editor {
        Editor::Own | Editor::Operator => db.user(target).await?,
        Editor::Admin { tenant_id, rule } => {
            if rule == Rule::Checked && !recovery::may_act(db, actor, tenant_id, target).await? {
                return Ok(None);
            }
            let mut tx = db.tenant_and_user(tenant_id, target).await?;
            // The data-level guard, in the transaction that writes.
            if !recovery::within_reach(&mut tx, actor, target).await? {
                return Ok(None);
            }
            tx
        }
    };
    let Some(before) = db::users::profile_for_update(&mut tx, target).await? else { return Ok(None) };
    let after = apply(&before, &edit);
    let diff = differences(&before, &after);
    let updated_at = if diff.is_empty() {
        let row = db::users::claims(&mut tx, target).await?;
        row.map(|u| u.updated_at).unwrap_or_default()
    } else {
        let updated_at = db::users::set_profile(&mut tx, target, &after).await?;
        let details: serde_json::Map<String, serde_json::Value> = diff
            .iter()
            .map(|(field, from, to)| ((*field).to_owned(), serde_json::json!({ "from": from, "to": to })))
            .collect();
        let event = actor.event(
            "user.profile_changed",
            ("user", Some(target.to_string())),
            serde_json::json!({ "changed": details }),
        );
        security::append_for_user(&mut tx, target, &event).await?;
        updated_at
    };
    tx.commit().await?;
    let changed = diff.iter().map(|(field, _, _)| *field).collect();
    Ok(Some(Changed { user_id: target, profile: after, changed, updated_at }))
}

/// `edit` with every [`Field::Set`] value validated and normalised.
fn checked(edit: &ProfileEdit) -> Result<ProfileEdit, ServiceError> {
    let field = |f: &Field, name: &'static str, check: fn(&str) -> Result<String, String>| match f {
        Field::Set(v) => check(v).map(Field::Set).map_err(|why| ServiceError::Invalid(format!("{name}: {why}"))),
        other => Ok(other.clone()),
    };
    Ok(ProfileEdit {
        name: field(&edit.name, "name", name_part)?,
        given_name: field(&edit.given_name, "given_name", name_part)?,
        family_name: field(&edit.family_name, "family_name", name_part)?,
        preferred_username: field(&edit.preferred_username, "preferred_username", username)?,
        locale: field(&edit.locale, "locale", locale)?,
        zoneinfo: field(&edit.zoneinfo, "zoneinfo", zoneinfo)?,
        email_verified: edit.email_verified,
    })
}

fn apply(before: &Profile, edit: &ProfileEdit) -> Profile {
    let pick = |old: &Option<String>, f: &Field| match f {
        Field::Keep => old.clone(),
        Field::Clear => None,
        Field::Set(v) => Some(v.clone()),
    };
    Profile {
        name: pick(&before.name, &edit.name),
        given_name: pick(&before.given_name, &edit.given_name),
        family_name: pick(&before.family_name, &edit.family_name),
        preferred_username: pick(&before.preferred_username, &edit.preferred_username),
        locale: pick(&before.locale, &edit.locale),
        zoneinfo: pick(&before.zoneinfo, &edit.zoneinfo),
        email_verified: edit.email_verified.unwrap_or(before.email_verified),
    }
}

type Difference = (&'static str, serde_json::Value, serde_json::Value);

/// The fields that differ, each with its value before and after (`null`: absent).
fn differences(before: &Profile, after: &Profile) -> Vec<Difference> {
    let texts = [
        ("name", &before.name, &after.name),
        ("given_name", &before.given_name, &after.given_name),
        ("family_name", &before.family_name, &after.family_name),
        ("preferred_username", &before.preferred_username, &after.preferred_username),
        ("locale", &before.locale, &after.locale),
        ("zoneinfo", &before.zoneinfo, &after.zoneinfo),
    ];
    let mut out: Vec<Difference> =
        texts.into_iter().filter(|(_, a, b)| a != b).map(|(f, a, b)| (f, a.clone().into(), b.clone().into())).collect();
    if before.email_verified != after.email_verified {
        out.push(("email_verified", before.email_verified.into(), after.email_verified.into()));
    }
    out
}

/// Characters no profile text may hold: control characters (C0, DEL, C1), and those that
/// make text show other than it reads — bidirectional embeddings, overrides and isolates
/// (the "Trojan Source" characters), line and paragraph separators, zero-width space and no-
/// break, the byte-order mark, interlinear annotations. Joiners (U+200C, U+200D) stay: names
/// in Persian and in several Indic scripts need them.
fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}' | '\u{2028}'..='\u{202E}' | '\u{2060}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
        || matches!(c, '\u{FFF9}'..='\u{FFFB}')
}

/// Text of 1..=`max` characters, none of them [`unprintable`], without the spaces around it
/// (only spaces: a newline or a tab is refused, not trimmed away).
fn printable(s: &str, max: usize) -> Result<String, String> {
    let s = s.trim_matches(' ');
    let n = s.chars().count();
    if n == 0 || n > max {
        return Err(format!("must be 1 to {max} characters"));
    }
    if s.chars().any(unprintable) {
        return Err("must not contain control or invisible formatting characters".into());
    }
    Ok(s.to_owned())
}

/// `name`, `given_name`, `family_name`.
fn name_part(s: &str) -> Result<String, String> {
    printable(s, NAME_MAX)
}

/// `preferred_username`: printable, without spaces.
fn username(s: &str) -> Result<String, String> {
    let s = printable(s, USERNAME_MAX)?;
    if s.chars().any(char::is_whitespace) {
        return Err("must not contain spaces".into());
    }
    Ok(s)
}

/// A well-formed BCP 47 language tag (RFC 5646 §2.1, the `langtag` production: language,
/// then optional script, region, variants, extensions and private use, in that order), in
/// the case §2.1.1 recommends (`nl-NL`, `zh-Hant-TW`). Whether each subtag is registered is
/// not checked (that needs the IANA registry); the shape is.
fn locale(s: &str) -> Result<String, String> {
    const BAD: &str = "must be a BCP 47 language tag such as en or nl-NL";
    let s = s.trim_matches(' ');
    if s.is_empty() || s.len() > LOCALE_MAX {
        return Err(format!("must be 1 to {LOCALE_MAX} characters"));
    }
    let alpha = |t: &str| t.bytes().all(|b| b.is_ascii_alphabetic());
    let digit = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let alnum = |t: &str| t.bytes().all(|b| b.is_ascii_alphanumeric());
    let subtags: Vec<&str> = s.split('-').collect();
    if subtags.iter().any(|t| t.is_empty() || t.len() > 8 || !alnum(t)) {
        return Err(BAD.into());
    }
    let mut out: Vec<String> = Vec::with_capacity(subtags.len());
    let mut rest = subtags.iter().copied().peekable();
    // language: 2-3 letters (with up to three 3-letter extlangs), or 4-8 letters.
    match rest.next() {
        Some(l) if alpha(l) && (2..=8).contains(&l.len()) => out.push(l.to_ascii_lowercase()),
        _ => return Err(BAD.into()),
    }
    if out[0].len() <= 3 {
        let mut extlangs = 0;
        while let Some(e) = rest.next_if(|t| t.len() == 3 && alpha(t) && extlangs < 3) {
            out.push(e.to_ascii_lowercase());
            extlangs += 1;
        }
    }
    // script: 4 letters, title case.
    if let Some(sc) = rest.next_if(|t| t.len() == 4 && alpha(t)) {
        let lower = sc.to_ascii_lowercase();
        out.push(lower[..1].to_ascii_uppercase() + &lower[1..]);
    }
    // region: 2 letters or 3 digits, upper case.
    if let Some(r) = rest.next_if(|t| (t.len() == 2 && alpha(t)) || (t.len() == 3 && digit(t))) {
        out.push(r.to_ascii_uppercase());
    }
    // variants: 5-8 alphanumerics, or a digit and 3 alphanumerics.
    while let Some(v) =
        rest.next_if(|t| (5..=8).contains(&t.len()) || (t.len() == 4 && t.as_bytes()[0].is_ascii_digit()))
    {
        out.push(v.to_ascii_lowercase());
    }
    // extensions: a singleton (not x) and subtags of 2-8; then private use: x and 1-8.
    while let Some(single) = rest.next_if(|t| t.len() == 1 && !t.eq_ignore_ascii_case("x")) {
        out.push(single.to_ascii_lowercase());
        let mut n = 0;
        while let Some(t) = rest.next_if(|t| t.len() >= 2) {
            out.push(t.to_ascii_lowercase());
            n += 1;
        }
        if n == 0 {
            return Err(BAD.into());
        }
    }
    if let Some(x) = rest.next_if(|t| t.eq_ignore_ascii_case("x")) {
        out.push(x.to_ascii_lowercase());
        let before = out.len();
        out.extend(rest.by_ref().map(str::to_ascii_lowercase));
        if out.len() == before {
            return Err(BAD.into());
        }
    }
    if rest.next().is_some() {
        return Err(BAD.into());
    }
    Ok(out.join("-"))
}

/// The shape of an IANA time zone name (`Europe/Amsterdam`, `America/Argentina/Buenos_Aires`,
/// `Etc/GMT-5`): two or more `/`-separated parts of ASCII letters, digits, `_`, `+` and `-`,
/// each beginning with a letter. Whether the zone exists is not checked: that needs the time
/// zone database, which changes several times a year, and a relying party reads the name with
/// its own copy anyway.
fn zoneinfo(s: &str) -> Result<String, String> {
    let s = s.trim_matches(' ');
    if s.len() > ZONE_MAX {
        return Err(format!("must be at most {ZONE_MAX} characters"));
    }
    let parts: Vec<&str> = s.split('/').collect();
    let part_ok = |p: &str| {
        p.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
            && p.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-'))
    };
    if parts.len() < 2 || !parts.iter().all(|p| part_ok(p)) {
        return Err("must be an IANA time zone name such as Europe/Amsterdam".into());
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tags of every part of the grammar pass, in the recommended case; malformed ones do not.
    #[test]
    fn locales() {
        for (given, stored) in [
            ("en", "en"),
            ("nl-NL", "nl-NL"),
            ("NL-nl", "nl-NL"),
            ("zh-hant-tw", "zh-Hant-TW"),
            ("es-419", "es-419"),
            ("sl-rozaj-biske", "sl-rozaj-biske"),
            ("de-CH-1901", "de-CH-1901"),
            ("zh-yue-HK", "zh-yue-HK"),
            ("en-US-u-ca-gregory", "en-US-u-ca-gregory"),
            ("en-x-private", "en-x-private"),
        ] {
            assert_eq!(locale(given).as_deref(), Ok(stored), "{given}");
        }
        for bad in [
            "",
            "e",
            "en_US",
            "en--US",
            "-en",
            "en-",
            "123",
            "en-US-u",
            "en-x",
            "toolonglanguage",
            "nl NL",
            "nl-NL\n",
            "ü",
            "en-a-b",
            "en-US-US",
        ] {
            assert!(locale(bad).is_err(), "{bad:?}");
        }
        assert!(locale(&format!("en-{}", ["abcdefgh"; 4].join("-"))).is_err(), "over 35 characters");
    }

    /// Zone names of the database's shapes pass; others do not.
    #[test]
    fn zones() {
        for ok in
            ["Europe/Amsterdam", "America/Argentina/Buenos_Aires", "Etc/GMT-5", "Etc/GMT+10", "America/Port-au-Prince"]
        {
            assert!(zoneinfo(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "UTC",
            "Europe/",
            "/Amsterdam",
            "Europe//Amsterdam",
            "Europe/../etc",
            "Europe/Am sterdam",
            "Europe/Ämsterdam",
            "Europe/1x",
        ] {
            assert!(zoneinfo(bad).is_err(), "{bad:?}");
        }
        assert!(zoneinfo(&format!("Europe/{}", "A".repeat(60))).is_err());
    }

    /// Names keep letters of any script and joiners; controls, bidi overrides and over-long
    /// values are refused.
    #[test]
    fn names() {
        for ok in ["Ann Lee", "  José Ñúñez ", "李小龍", "می\u{200C}خواهم", "O'Brien-Smith"] {
            assert!(name_part(ok).is_ok(), "{ok}");
        }
        for bad in ["", "   ", "Ann\u{0}", "Ann\nLee", "Ann\u{202E}eeL", "Ann\u{2066}", "\u{FEFF}Ann", "Ann\u{85}"] {
            assert!(name_part(bad).is_err(), "{bad:?}");
        }
        assert!(name_part(&"é".repeat(200)).is_ok());
        assert!(name_part(&"é".repeat(201)).is_err());
        assert!(username("ann.lee").is_ok());
        assert!(username("ann lee").is_err());
        assert!(username("ann\u{3000}lee").is_err(), "an ideographic space is a space");
        assert!(username(&"a".repeat(101)).is_err());
    }
}
