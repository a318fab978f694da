//! Passkeys (WebAuthn Level 3) through `webauthn-rs`: registration from the account page (or
//! in place of TOTP when a sign-in must enrol a second factor), and the two ways of signing in
//! with one: as the second factor after the password, or alone, where the tenant allows it
//! (ARCHITECTURE.md, "Passkeys").
//!
//! `webauthn-rs` checks the ceremonies (challenge, origin, RP ID hash, user verification,
//! signature, counter); this module chooses its options, keeps its states serialisable for
//! the server-side session, and says what a verified assertion means (`amr`). Every passkey
//! requires user verification (a PIN or a biometric on the authenticator), so one alone is
//! two factors.

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Webauthn, WebauthnBuilder,
};

use crate::db::passkeys::StoredPasskey;

/// The longest name a passkey may be given (characters).
pub const NAME_MAX_CHARS: usize = 64;
/// How long the browser's authenticator prompt may take.
const CEREMONY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// The relying party every ceremony is for: the issuer's host is the RP ID, its origin the only
/// origin allowed. Cheap to clone.
#[derive(Clone)]
pub struct RelyingParty(std::sync::Arc<Webauthn>);

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RelyingParty")
    }
}

impl RelyingParty {
    /// The relying party of `issuer`, shown to people as `name`; `None` when the issuer's host
    /// is an IP address, which WebAuthn does not take as an RP ID (then no page offers
    /// passkeys).
    pub fn for_issuer(issuer: &str, name: &str) -> anyhow::Result<Option<Self>> {
        let url = Url::parse(issuer)?;
        let Some(host) = rp_id(&url) else { return Ok(None) };
        let origin = Url::parse(&url.origin().ascii_serialization())?;
        let webauthn = WebauthnBuilder::new(host, &origin)
            .map_err(|e| anyhow::anyhow!("WebAuthn relying party for {issuer}: {e}"))?
            .rp_name(name)
            .timeout(CEREMONY_TIMEOUT)
            .build()
            .map_err(|e| anyhow::anyhow!("WebAuthn relying party for {issuer}: {e}"))?;
        Ok(Some(Self(std::sync::Arc::new(webauthn))))
    }

    /// Starts registering a passkey for the user: the options for
    /// `navigator.credentials.create` (as JSON, binary fields base64url) and the state the
    /// session keeps until the answer comes. The user's passkeys are excluded, so one
    /// authenticator is not registered twice.
    pub fn begin_registration(
        &self,
        user_id: Uuid,
        email: &str,
        existing: &[StoredPasskey],
    ) -> anyhow::Result<(serde_json::Value, Registration)> {
        let exclude: Vec<_> = existing.iter().filter_map(|p| passkey(p).ok()).map(|k| k.cred_id().clone()).collect();
        let (options, state) = self
            .0
            .start_passkey_registration(user_id, email, email, Some(exclude))
            .map_err(|e| anyhow::anyhow!("passkey registration options: {e}"))?;
        let mut options = serde_json::to_value(options)?;
        // A passkey is a discoverable credential, so that it can sign in without an email
        // typed first; webauthn-rs leaves that to the caller.
        if let Some(selection) = options.pointer_mut("/publicKey/authenticatorSelection") {
            selection["residentKey"] = "required".into();
            selection["requireResidentKey"] = true.into();
        }
        Ok((options, Registration { user_id, state }))
    }

    /// Checks the authenticator's answer to [`Self::begin_registration`]: the new credential's
    /// id and its stored form.
    pub fn finish_registration(
        &self,
        registration: &Registration,
        answer: &RegisterPublicKeyCredential,
    ) -> Result<NewPasskey, Refused> {
        let key = self.0.finish_passkey_registration(answer, &registration.state).map_err(refused)?;
        let credential = serde_json::to_value(&key).map_err(|_| Refused("unstorable"))?;
        // webauthn-rs shows a credential's flags only in its stored form.
        let synced = credential.pointer("/cred/backup_eligible").and_then(serde_json::Value::as_bool).unwrap_or(false);
        let amr = vec![key_kind(synced), "user"];
        Ok(NewPasskey { credential_id: key.cred_id().to_vec(), credential, amr })
    }

    /// Starts a sign-in with one of `user_id`'s passkeys, as the second factor after their
    /// password.
    pub fn begin_second_factor(
        &self,
        user_id: Uuid,
        keys: &[StoredPasskey],
    ) -> anyhow::Result<(serde_json::Value, Ceremony)> {
        let keys: Vec<Passkey> = keys.iter().filter_map(|p| passkey(p).ok()).collect();
        let (options, state) =
            self.0.start_passkey_authentication(&keys).map_err(|e| anyhow::anyhow!("passkey sign-in options: {e}"))?;
        Ok((serde_json::to_value(options)?, Ceremony::SecondFactor { user_id, state }))
    }

    /// Starts a sign-in with any discoverable passkey, for the authorization request `req`
    /// ("" for none): the authenticator says whose it is.
    pub fn begin_passwordless(&self, req: &str) -> anyhow::Result<(serde_json::Value, Ceremony)> {
        let (mut options, state) =
            self.0.start_discoverable_authentication().map_err(|e| anyhow::anyhow!("passkey sign-in options: {e}"))?;
        // webauthn-rs asks for the autofill ("conditional") prompt; the page asks at a button's
        // press instead, which every browser with passkeys supports.
        options.mediation = None;
        Ok((serde_json::to_value(options)?, Ceremony::Passwordless { state, req: req.to_owned() }))
    }

    /// Checks an assertion against the passkey `stored` (the one of [`Ceremony::user`] with
    /// the assertion's credential id): what it proves, and the credential as it is to be
    /// stored now (its counter moved).
    pub fn finish_sign_in(
        &self,
        ceremony: Ceremony,
        answer: &PublicKeyCredential,
        stored: &StoredPasskey,
    ) -> Result<Verified, Refused> {
        let mut key = passkey(stored).map_err(|_| Refused("unreadable"))?;
        let (result, passwordless) = match ceremony {
            Ceremony::SecondFactor { state, .. } => {
                (self.0.finish_passkey_authentication(answer, &state).map_err(refused)?, false)
            }
            Ceremony::Passwordless { state, .. } => {
                (self.0.finish_discoverable_authentication_v2(answer, state, &key).map_err(refused)?, true)
            }
        };
        // The ceremony allowed any of the user's passkeys: it must have been this one.
        if result.cred_id() != key.cred_id() {
            return Err(Refused("other_credential"));
        }
        if !result.user_verified() {
            return Err(Refused("not_user_verified"));
        }
        key.update_credential(&result);
        let credential = serde_json::to_value(&key).map_err(|_| Refused("unstorable"))?;
        // User verification is a user presence test and more; alone, the passkey was both
        // factors.
        let mut amr = vec![key_kind(result.backup_eligible()), "user"];
        if passwordless {
            amr.push("mfa");
        }
        Ok(Verified { amr, credential })
    }
}

/// The relying party id of an issuer: its host, when that is a name.
fn rp_id(issuer: &Url) -> Option<&str> {
    match issuer.host() {
        Some(url::Host::Domain(host)) => Some(host),
        _ => None,
    }
}

/// Whether an issuer can have passkeys (its host is a name, not an IP address).
pub fn possible(issuer: &str) -> bool {
    Url::parse(issuer).is_ok_and(|url| rp_id(&url).is_some())
}

/// The RFC 8176 methods a sign-in here can show in `amr`.
pub fn amr_values(issuer: &str) -> &'static [&'static str] {
    if possible(issuer) { &["pwd", "otp", "hwk", "swk", "user", "mfa"] } else { &["pwd", "otp"] }
}

/// A registration in progress, kept in the server-side session (never sent to the browser).
#[derive(Serialize, Deserialize)]
pub struct Registration {
    pub user_id: Uuid,
    state: PasskeyRegistration,
}

/// A sign-in with a passkey in progress, kept in the server-side session.
#[derive(Serialize, Deserialize)]
pub enum Ceremony {
    /// After the password of `user_id`.
    SecondFactor { user_id: Uuid, state: PasskeyAuthentication },
    /// Alone: the passkey names its user. Begun for the authorization request `req`, whose
    /// tenant offered it; it finishes for that request only.
    Passwordless { state: DiscoverableAuthentication, req: String },
}

impl Ceremony {
    /// The user whose passkey answered: the one the ceremony was for, or (signing in with a
    /// passkey alone) the user handle the authenticator returned.
    pub fn user(&self, answer: &PublicKeyCredential) -> Option<Uuid> {
        match self {
            Ceremony::SecondFactor { user_id, .. } => Some(*user_id),
            Ceremony::Passwordless { .. } => answer.get_user_unique_id().and_then(|b| Uuid::from_slice(b).ok()),
        }
    }
}

/// RFC 8176's word for a passkey: one that may be synced to other devices (backup eligible)
/// is a software-secured key; one that cannot leave its authenticator is hardware-secured.
fn key_kind(backup_eligible: bool) -> &'static str {
    if backup_eligible { "swk" } else { "hwk" }
}

/// A credential the registration ceremony accepted.
pub struct NewPasskey {
    pub credential_id: Vec<u8>,
    pub credential: serde_json::Value,
    /// What the registration itself proved, when it completes a sign-in (`hwk` or `swk`,
    /// `user`).
    pub amr: Vec<&'static str>,
}

/// What a verified passkey sign-in proves.
pub struct Verified {
    /// RFC 8176 methods: `hwk` or `swk`, `user`, and `mfa` when the passkey was the whole
    /// sign-in.
    pub amr: Vec<&'static str>,
    pub credential: serde_json::Value,
}

/// A ceremony that did not verify, and why (for the log and the audit row only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused(pub &'static str);

fn refused(e: webauthn_rs::prelude::WebauthnError) -> Refused {
    tracing::info!(error = %e, "passkey ceremony refused");
    Refused("ceremony")
}

fn passkey(stored: &StoredPasskey) -> Result<Passkey, serde_json::Error> {
    serde_json::from_value(stored.credential.0.clone())
}

/// Why a passkey's name is refused, or `None`: 1 to [`NAME_MAX_CHARS`] characters after
/// trimming, no control characters.
pub fn name_problem(name: &str) -> Option<&'static str> {
    let name = name.trim();
    if name.is_empty() {
        return Some("empty");
    }
    if name.chars().count() > NAME_MAX_CHARS {
        return Some("too_long");
    }
    if name.chars().any(char::is_control) {
        return Some("control_character");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RP ID is the issuer's host; an IP address gives no relying party.
    #[test]
    fn relying_party_of_the_issuer() {
        assert!(RelyingParty::for_issuer("http://127.0.0.1:8080", "LaventeCare").unwrap().is_none());
        assert!(RelyingParty::for_issuer("http://[::1]:8080", "LaventeCare").unwrap().is_none());
        assert!(!possible("http://127.0.0.1:8080") && possible("http://localhost:8080"));
        let rp = RelyingParty::for_issuer("https://id.example.com", "LaventeCare").unwrap().unwrap();
        let (options, _) = rp.begin_registration(Uuid::now_v7(), "ann@example.com", &[]).unwrap();
        assert_eq!(options["publicKey"]["rp"]["id"], "id.example.com");
        assert_eq!(options["publicKey"]["authenticatorSelection"]["residentKey"], "required");
        assert_eq!(options["publicKey"]["authenticatorSelection"]["userVerification"], "required");
        let (options, _) = rp.begin_passwordless("").unwrap();
        assert!(options.get("mediation").is_none(), "{options}");
        assert_eq!(options["publicKey"]["allowCredentials"], serde_json::json!([]));
    }

    #[test]
    fn names() {
        assert_eq!(name_problem("  "), Some("empty"));
        assert_eq!(name_problem(&"x".repeat(65)), Some("too_long"));
        assert_eq!(name_problem("a\u{7}b"), Some("control_character"));
        assert_eq!(name_problem("Work laptop"), None);
        assert_eq!(name_problem(&"é".repeat(64)), None);
    }
}
