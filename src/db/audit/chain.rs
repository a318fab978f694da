//! The chain's hashes, and walking a chain to find where it breaks.
//!
//! A row's `hash` is HMAC-SHA-256 (RFC 2104) under the audit key over a canonical encoding of
//! the row and the previous row's hash (ARCHITECTURE.md, "Audit log"). The key is derived from
//! the master key and is never in the database, so whoever can write rows (a superuser, who can
//! disable the append-only triggers) cannot compute a hash `audit verify` accepts.
//!
//! Rows written before migration 0011 carry plain SHA-256 (`mac_version` 0, "legacy"), which
//! anyone can recompute. They are accepted only as the first rows of a chain, before its first
//! keyed row: a keyed row's MAC covers the legacy head's hash, so the legacy prefix cannot be
//! changed without breaking the first keyed row, and a legacy row after a keyed one is a break.
//! What remains possible is rewriting a whole chain as legacy rows; an anchor kept outside
//! the database (`audit export`, `audit verify --against`) catches that.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::AuditRow;
use crate::master_key::AuditKey;

/// `mac_version` of rows hashed with plain SHA-256 (before migration 0011).
pub const LEGACY_SHA256: i16 = 0;
/// `mac_version` of rows MACed with HMAC-SHA-256 under the audit key.
pub const HMAC_SHA256_V1: i16 = 1;

/// Prefixed to the MACed message: binds the MAC to this encoding, so a future encoding (v2)
/// can never be read as this one.
const V1_DOMAIN: &[u8] = b"laventecare-auth audit row v1\n";

impl AuditRow {
    /// A canonical encoding of the row and the previous row's hash. Timestamps are
    /// microseconds, the precision PostgreSQL keeps; JSON objects have sorted keys.
    fn canonical(&self) -> String {
        serde_json::json!([
            self.tenant_id,
            self.seq,
            self.occurred_at.timestamp_micros(),
            self.actor_kind,
            self.actor_id,
            self.target_kind,
            self.target_id,
            self.action,
            self.outcome,
            self.ip,
            self.user_agent,
            self.request_id,
            sorted(&self.details),
            hex::encode(&self.prev_hash),
        ])
        .to_string()
    }

    /// The hash of a row written before migration 0011: plain SHA-256 of the canonical form.
    pub fn legacy_hash(&self) -> [u8; 32] {
        Sha256::digest(self.canonical().as_bytes()).into()
    }

    /// The keyed hash of the row: HMAC-SHA-256 under `key` of the canonical form.
    pub fn keyed_hash(&self, key: &AuditKey) -> [u8; 32] {
        self.mac(key).finalize().into_bytes().into()
    }

    fn mac(&self, key: &AuditKey) -> Hmac<Sha256> {
        // HMAC takes a key of any length; 32 bytes never fails.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.bytes()).expect("HMAC accepts a 32-byte key");
        mac.update(V1_DOMAIN);
        mac.update(self.canonical().as_bytes());
        mac
    }

    /// For a keyed row, whether it was written under `key`; `None` for a legacy row.
    pub fn written_under(&self, key: &AuditKey) -> Option<bool> {
        (self.mac_version == HMAC_SHA256_V1).then(|| self.mac_matches(key))
    }

    /// Whether the stored hash is this row's MAC under `key`, compared in constant time.
    fn mac_matches(&self, key: &AuditKey) -> bool {
        self.mac(key).verify_slice(&self.hash).is_ok()
    }
}

/// `value` with every object's keys in sorted order. PostgreSQL's jsonb reorders keys, and
/// serde_json keeps insertion order when a dependency turns on `preserve_order`, so the hash
/// must not depend on either.
fn sorted(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<(&String, &serde_json::Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), sorted(v))).collect())
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// The first place a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainBreak {
    /// The sequence number of the first row that does not fit.
    pub seq: i64,
    pub problem: &'static str,
}

/// What an intact chain holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ChainSummary {
    pub rows: usize,
    /// How many of them (the first ones) are legacy rows, checked with plain SHA-256 only.
    pub legacy_rows: usize,
}

/// Walks one tenant's rows (in `seq` order) and returns what verified, or the first break:
/// an edited row (its MAC), a deleted one (a gap), an inserted or reordered one (the link to
/// the previous hash), an unkeyed row after a keyed one.
pub fn verify_chain(rows: &[AuditRow], key: &AuditKey) -> Result<ChainSummary, ChainBreak> {
    match first_break(rows, key) {
        Some((_, b)) => Err(b),
        None => {
            let legacy_rows = rows.iter().take_while(|r| r.mac_version == LEGACY_SHA256).count();
            Ok(ChainSummary { rows: rows.len(), legacy_rows })
        }
    }
}

/// The first break of a chain read from a file in its own order, with the index of the row
/// where it shows (lines of an export may have been moved, not only edited or deleted).
pub fn first_break(rows: &[AuditRow], key: &AuditKey) -> Option<(usize, ChainBreak)> {
    let mut prev_hash = vec![0u8; 32];
    let mut keyed_seen = false;
    for (i, row) in rows.iter().enumerate() {
        let broken = |problem| Some((i, ChainBreak { seq: row.seq, problem }));
        let expected_seq = i64::try_from(i).unwrap_or(i64::MAX) + 1;
        if row.seq != expected_seq {
            let moved = rows.iter().any(|r| r.seq == expected_seq);
            return broken(if moved { "out of order (rows were moved)" } else { "a row before this one is missing" });
        }
        if row.prev_hash != prev_hash {
            return broken("does not follow the previous row (inserted or reordered)");
        }
        let intact = match row.mac_version {
            HMAC_SHA256_V1 => {
                keyed_seen = true;
                row.mac_matches(key)
            }
            // Anyone can recompute plain SHA-256: after a keyed row it can only be a forgery.
            LEGACY_SHA256 if keyed_seen => return broken("an unkeyed row after keyed ones (forged)"),
            LEGACY_SHA256 => row.legacy_hash().as_slice() == row.hash.as_slice(),
            _ => return broken("an unknown mac_version"),
        };
        if !intact {
            return broken("its content was changed");
        }
        prev_hash.clone_from(&row.hash);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master_key::MasterKey;

    fn key() -> AuditKey {
        MasterKey::from_bytes([1; 32]).audit_key()
    }

    /// A chain of `n` keyed rows after `legacy` legacy ones.
    fn chain(legacy: usize, n: usize, key: &AuditKey) -> Vec<AuditRow> {
        let mut rows: Vec<AuditRow> = Vec::new();
        for i in 0..legacy + n {
            let mut row = AuditRow {
                tenant_id: uuid::Uuid::nil(),
                seq: i64::try_from(i).unwrap() + 1,
                occurred_at: chrono::DateTime::from_timestamp_micros(1_700_000_000_000_000).unwrap(),
                actor_kind: "system".into(),
                actor_id: None,
                target_kind: None,
                target_id: None,
                action: "test.event".into(),
                outcome: "success".into(),
                ip: Some("192.0.2.1".into()),
                user_agent: None,
                request_id: None,
                details: serde_json::json!({ "b": 1, "a": [{ "z": 1, "y": 2 }] }),
                mac_version: if i < legacy { LEGACY_SHA256 } else { HMAC_SHA256_V1 },
                prev_hash: rows.last().map_or(vec![0; 32], |r| r.hash.clone()),
                hash: Vec::new(),
            };
            row.hash = if i < legacy { row.legacy_hash().to_vec() } else { row.keyed_hash(key).to_vec() };
            rows.push(row);
        }
        rows
    }

    /// The MAC is HMAC-SHA-256 (RFC 2104) of the domain label and the canonical form, and is
    /// not the plain SHA-256 of it.
    #[test]
    fn keyed_hash_is_hmac_of_the_canonical_form() {
        let key = key();
        let row = &chain(0, 1, &key)[0];
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.bytes()).unwrap();
        mac.update(b"laventecare-auth audit row v1\n");
        mac.update(row.canonical().as_bytes());
        assert_eq!(row.keyed_hash(&key), <[u8; 32]>::from(mac.finalize().into_bytes()));
        assert_ne!(row.keyed_hash(&key), row.legacy_hash());
        assert_ne!(row.keyed_hash(&key), row.keyed_hash(&MasterKey::from_bytes([2; 32]).audit_key()));
        // Key order in details does not matter (jsonb reorders keys).
        let mut reordered = row.clone();
        reordered.details = serde_json::json!({ "a": [{ "y": 2, "z": 1 }], "b": 1 });
        assert_eq!(reordered.keyed_hash(&key), row.keyed_hash(&key));
    }

    /// A legacy prefix then keyed rows verify; another key, an edit recomputed with plain
    /// SHA-256 (keyed or marked legacy), and an unknown version are each named.
    #[test]
    fn verify_accepts_a_legacy_prefix_and_names_forgeries() {
        let key = key();
        let rows = chain(2, 3, &key);
        assert_eq!(verify_chain(&rows, &key), Ok(ChainSummary { rows: 5, legacy_rows: 2 }));
        assert_eq!(verify_chain(&chain(0, 3, &key), &key), Ok(ChainSummary { rows: 3, legacy_rows: 0 }));
        let other = MasterKey::from_bytes([2; 32]).audit_key();
        assert_eq!(verify_chain(&rows, &other).unwrap_err().seq, 3, "the first keyed row");

        // Row 4 edited, then it and every later row recomputed with plain SHA-256.
        let forge = |rows: &mut Vec<AuditRow>, from: usize, mark_legacy: bool| {
            rows[from].action = "test.forged".into();
            for i in from..rows.len() {
                rows[i].prev_hash = rows[i - 1].hash.clone();
                if mark_legacy {
                    rows[i].mac_version = LEGACY_SHA256;
                }
                rows[i].hash = rows[i].legacy_hash().to_vec();
            }
        };
        let mut kept_version = rows.clone();
        forge(&mut kept_version, 3, false);
        let b = verify_chain(&kept_version, &key).unwrap_err();
        assert_eq!((b.seq, b.problem), (4, "its content was changed"));
        let mut downgraded = rows.clone();
        forge(&mut downgraded, 3, true);
        let b = verify_chain(&downgraded, &key).unwrap_err();
        assert_eq!((b.seq, b.problem), (4, "an unkeyed row after keyed ones (forged)"));
        // A legacy row edited and recomputed: the first keyed row no longer follows it.
        let mut legacy_edit = rows.clone();
        legacy_edit[1].action = "test.forged".into();
        legacy_edit[1].hash = legacy_edit[1].legacy_hash().to_vec();
        assert_eq!(verify_chain(&legacy_edit, &key).unwrap_err().seq, 3);

        let mut unknown = rows.clone();
        unknown[4].mac_version = 7;
        assert_eq!(verify_chain(&unknown, &key).unwrap_err().problem, "an unknown mac_version");
    }
}
