//! The second factor: TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps, ±1 step of
//! clock skew) through `totp-rs`, and single-use backup codes.
//!
//! `totp-rs` checks a code but does not remember it; the caller stores the step a code matched
//! ([`crate::db::mfa::accept_step`]) so that the same code, or an older one, never works twice.

use totp_rs::{Algorithm, Builder, Totp};

use crate::master_key::MasterKey;
use crate::tokens::seal;

/// Seal purpose of TOTP secrets (the id is the user's).
const SEAL_PURPOSE: &str = "users.totp_secret";
/// Secret length: 160 bits, as RFC 4226 §4 recommends.
const SECRET_BYTES: usize = 20;
/// Backup codes made at enrolment.
pub const BACKUP_CODES: usize = 10;
/// Characters of a backup code: 16 from a 32-letter alphabet = 80 random bits.
const BACKUP_CODE_CHARS: usize = 16;
/// Lower-case letters and digits without the look-alikes 0/o and l/i.
const BACKUP_ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz123456789";

/// A TOTP generator for a secret.
pub fn totp(secret: &[u8], issuer: &str, account: &str) -> anyhow::Result<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret.to_vec())
        // ':' separates issuer and account in otpauth URIs.
        .with_issuer(Some(issuer.replace(':', " ")))
        .with_account_name(account.replace(':', " "))
        .build()
        .map_err(|e| anyhow::anyhow!("TOTP parameters refused: {e}"))
}

/// A fresh random secret.
pub fn new_secret() -> Vec<u8> {
    crate::secrets::random_bytes::<SECRET_BYTES>().to_vec()
}

/// The secret as base32, for manual entry (grouped in fours for reading).
pub fn secret_for_display(secret: &[u8]) -> String {
    let encoded = totp_rs::Secret::from(secret.to_vec()).to_base32();
    let chars: Vec<char> = encoded.chars().collect();
    chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join(" ")
}

/// The time step a code matches now (±1 step), or `None`. Codes are digits only; spaces are
/// ignored, so "123 456" works.
pub fn check_code(totp: &Totp, code: &str, unix_time: u64) -> Option<u64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    totp.check(&code, unix_time)
}

/// The otpauth URI an authenticator app reads, as an inline SVG QR code (no external image,
/// so the page's CSP stays `img-src 'self'`).
pub fn qr_svg(totp: &Totp) -> anyhow::Result<String> {
    let uri = totp.to_url().map_err(|e| anyhow::anyhow!("otpauth URI: {e}"))?;
    let code = qrcode::QrCode::new(uri.as_bytes())?;
    let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build();
    // The XML declaration is not allowed inside HTML.
    Ok(svg.split_once("?>").map_or(svg.clone(), |(_, rest)| rest.to_owned()))
}

/// Seals a secret for the user's row.
pub fn seal_secret(master_key: &MasterKey, user_id: uuid::Uuid, secret: &[u8]) -> anyhow::Result<Vec<u8>> {
    seal::seal(master_key, SEAL_PURPOSE, &user_id.to_string(), secret)
}

/// Opens a sealed secret of the user's row.
pub fn open_secret(master_key: &MasterKey, user_id: uuid::Uuid, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
    seal::open(master_key, SEAL_PURPOSE, &user_id.to_string(), sealed).map_err(anyhow::Error::from)
}

/// Ten fresh backup codes, formatted `xxxx-xxxx-xxxx-xxxx`.
pub fn new_backup_codes() -> Vec<String> {
    (0..BACKUP_CODES)
        .map(|_| {
            let raw = crate::secrets::random_bytes::<BACKUP_CODE_CHARS>();
            // 256 is a multiple of 32: taking each byte modulo 32 has no bias.
            let chars: Vec<char> = raw.iter().map(|b| BACKUP_ALPHABET[usize::from(b % 32)] as char).collect();
            chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
        })
        .collect()
}

/// The stored form of a backup code: SHA-256 of the code without dashes, spaces or case.
pub fn backup_code_hash(code: &str) -> Option<[u8; 32]> {
    let normal: String =
        code.chars().filter(|c| *c != '-' && !c.is_whitespace()).flat_map(char::to_lowercase).collect();
    (normal.len() == BACKUP_CODE_CHARS && normal.bytes().all(|b| BACKUP_ALPHABET.contains(&b)))
        .then(|| crate::secrets::sha256(normal.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 test vectors (truncated to 6 digits), and the skew window.
    #[test]
    fn rfc6238_vectors_and_skew() {
        let t = totp(b"12345678901234567890", "LaventeCare: test", "a@example.com").unwrap();
        assert_eq!(check_code(&t, "287082", 59), Some(1));
        assert_eq!(check_code(&t, "081804", 1111111109), Some(1111111109 / 30));
        assert_eq!(check_code(&t, "081 804", 1111111109), Some(1111111109 / 30));
        // One step either side is accepted, two are not.
        assert!(check_code(&t, "081804", 1111111109 + 30).is_some());
        assert!(check_code(&t, "081804", 1111111109 - 30).is_some());
        assert!(check_code(&t, "081804", 1111111109 + 60).is_none());
        for bad in ["", "08180", "0818044", "abcdef", "08180x"] {
            assert!(check_code(&t, bad, 1111111109).is_none(), "{bad}");
        }
    }

    /// The QR code is an inline SVG element; the secret reads back from its display form.
    #[test]
    fn qr_and_display() {
        let secret = new_secret();
        let t = totp(&secret, "LaventeCare", "a@example.com").unwrap();
        let svg = qr_svg(&t).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        let shown = secret_for_display(&secret).replace(' ', "");
        assert_eq!(totp_rs::Secret::try_from_base32(&shown).unwrap().as_ref(), secret.as_slice());
    }

    /// Backup codes are distinct, and a code matches its hash however it is typed.
    #[test]
    fn backup_codes() {
        let codes = new_backup_codes();
        assert_eq!(codes.len(), 10);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), 10);
        let c = &codes[0];
        assert_eq!(c.len(), 19);
        let h = backup_code_hash(c).unwrap();
        assert_eq!(backup_code_hash(&c.to_uppercase().replace('-', " ")), Some(h));
        assert!(backup_code_hash("too-short").is_none());
        assert!(backup_code_hash("123456").is_none());
    }

    /// A sealed secret opens only for the same user.
    #[test]
    fn sealed_per_user() {
        let key = MasterKey::from_bytes([7; 32]);
        let (a, b) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let sealed = seal_secret(&key, a, b"secret").unwrap();
        assert_eq!(open_secret(&key, a, &sealed).unwrap(), b"secret");
        assert!(open_secret(&key, b, &sealed).is_err());
    }
}
