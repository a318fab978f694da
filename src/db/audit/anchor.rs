//! Anchors: a chain's head kept outside the database, to prove later that no row at or before
//! it was changed or cut off (`audit verify --against`).
//!
//! An anchor is written `TENANT:SEQ:HASH`: the tenant's slug (or id), the row's sequence
//! number, and its hash (64 hex digits), e.g. `acme:42:9f86d0…`. `audit export` prints the
//! head of what it wrote in this form. Because each keyed hash covers the previous row's
//! hash, a database chain that verifies and holds the anchor's hash at the anchor's `seq`
//! holds exactly the rows that were there when the anchor was taken, up to it; a chain that
//! ends before `seq` had rows cut off its end.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use super::AuditRow;

/// One row's place and hash in a tenant's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// The tenant's slug or its id (lower-case, hyphenated; both are valid slug text).
    pub tenant: String,
    pub seq: i64,
    pub hash: [u8; 32],
}

impl Anchor {
    /// The anchor of `row`, naming its tenant by `slug`.
    pub fn of(row: &AuditRow, slug: &str) -> Option<Self> {
        let hash = <[u8; 32]>::try_from(row.hash.as_slice()).ok()?;
        Some(Self { tenant: slug.to_owned(), seq: row.seq, hash })
    }

    /// Whether the tenant with this id and slug is the one the anchor names.
    pub fn names(&self, id: Uuid, slug: &str) -> bool {
        self.tenant == slug || self.tenant == id.hyphenated().to_string()
    }
}

impl fmt::Display for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.tenant, self.seq, hex::encode(self.hash))
    }
}

/// Why a string is not an anchor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorError {
    #[error("an anchor is TENANT:SEQ:HASH (three parts separated by ':')")]
    Shape,
    #[error("the anchor's tenant is neither a tenant id nor a slug (1-63 of a-z, 0-9, '-')")]
    Tenant,
    #[error("the anchor's SEQ is not a row number (1, 2, …)")]
    Seq,
    #[error("the anchor's HASH is not 64 hex digits")]
    Hash,
}

impl FromStr for Anchor {
    type Err = AnchorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split(':');
        let (Some(tenant), Some(seq), Some(hash), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AnchorError::Shape);
        };
        // A hyphenated lower-case id is valid slug text too; which one it is shows on lookup.
        if crate::vocabulary::Slug::parse(tenant).is_err() {
            return Err(AnchorError::Tenant);
        }
        let tenant = tenant.to_owned();
        // Digits only: `+3`, ` 3` and `03` are not how `audit export` writes a row number.
        let seq = (!seq.is_empty() && !seq.starts_with('0') && seq.bytes().all(|b| b.is_ascii_digit()))
            .then(|| seq.parse::<i64>().ok())
            .flatten()
            .ok_or(AnchorError::Seq)?;
        let mut bytes = [0u8; 32];
        if hash.len() != 64 || hex::decode_to_slice(hash, &mut bytes).is_err() {
            return Err(AnchorError::Hash);
        }
        Ok(Self { tenant, seq, hash: bytes })
    }
}

/// How an anchor compares with a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorCheck {
    /// The chain holds the anchor's hash at its `seq`.
    Holds,
    /// The chain ends before the anchor's row (`end` is its last `seq`, 0 when empty): rows were
    /// cut off its end.
    CutOff { end: i64 },
    /// The chain's row at the anchor's `seq` has another hash: it, or a row before it, was
    /// rewritten.
    Differs,
}

/// Compares `anchor` with a tenant's chain (which the caller has verified).
pub fn check_anchor(rows: &[AuditRow], anchor: &Anchor) -> AnchorCheck {
    match rows.iter().find(|r| r.seq == anchor.seq) {
        Some(row) if row.hash.as_slice() == anchor.hash.as_slice() => AnchorCheck::Holds,
        Some(_) => AnchorCheck::Differs,
        None => AnchorCheck::CutOff { end: rows.last().map_or(0, |r| r.seq) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    /// Slug and id anchors parse and print back the same; every malformed part is named.
    #[test]
    fn anchors_parse_and_print() {
        let a: Anchor = format!("acme-2:42:{HASH}").parse().unwrap();
        assert_eq!((a.tenant.as_str(), a.seq), ("acme-2", 42));
        assert_eq!(a.to_string(), format!("acme-2:42:{HASH}"));
        let id = Uuid::now_v7();
        let b: Anchor = format!("{id}:1:{}", HASH.to_uppercase()).parse().unwrap();
        assert_eq!(b.tenant, id.to_string());
        assert_eq!(b.to_string(), format!("{id}:1:{HASH}"));
        assert!(b.names(id, "whatever") && !a.names(id, "acme") && a.names(id, "acme-2"));

        let bad = |s: String| s.parse::<Anchor>().unwrap_err();
        assert_eq!(bad(String::new()), AnchorError::Shape);
        assert_eq!(bad("acme:42".into()), AnchorError::Shape);
        assert_eq!(bad(format!("acme:42:{HASH}:x")), AnchorError::Shape);
        assert_eq!(bad(format!("Acme:42:{HASH}")), AnchorError::Tenant);
        assert_eq!(bad(format!(":42:{HASH}")), AnchorError::Tenant);
        assert_eq!(bad(format!("{}:42:{HASH}", "a".repeat(64))), AnchorError::Tenant);
        for seq in ["0", "-1", "+1", "01", " 1", "1.0", "x", "", "9223372036854775808"] {
            assert_eq!(bad(format!("acme:{seq}:{HASH}")), AnchorError::Seq, "{seq:?}");
        }
        for hash in [&HASH[..62], &format!("{HASH}00"), &HASH.replace('9', "g"), ""] {
            assert_eq!(bad(format!("acme:1:{hash}")), AnchorError::Hash, "{hash:?}");
        }
    }

    /// An anchor holds, differs, or lies past the end of the chain.
    #[test]
    fn anchors_are_checked_against_a_chain() {
        let row = |seq: i64, h: u8| AuditRow {
            tenant_id: Uuid::nil(),
            seq,
            occurred_at: chrono::DateTime::UNIX_EPOCH,
            actor_kind: "system".into(),
            actor_id: None,
            target_kind: None,
            target_id: None,
            action: "x".into(),
            outcome: "success".into(),
            ip: None,
            user_agent: None,
            request_id: None,
            details: serde_json::json!({}),
            mac_version: 1,
            prev_hash: vec![0; 32],
            hash: vec![h; 32],
        };
        let rows = vec![row(1, 1), row(2, 2), row(3, 3)];
        let anchor = |seq, h| Anchor { tenant: "acme".into(), seq, hash: [h; 32] };
        assert_eq!(check_anchor(&rows, &anchor(2, 2)), AnchorCheck::Holds);
        assert_eq!(check_anchor(&rows, &anchor(3, 3)), AnchorCheck::Holds);
        assert_eq!(check_anchor(&rows, &anchor(2, 9)), AnchorCheck::Differs);
        assert_eq!(check_anchor(&rows, &anchor(4, 4)), AnchorCheck::CutOff { end: 3 });
        assert_eq!(check_anchor(&[], &anchor(1, 1)), AnchorCheck::CutOff { end: 0 });
        assert_eq!(Anchor::of(&rows[2], "acme"), Some(anchor(3, 3)));
    }
}
