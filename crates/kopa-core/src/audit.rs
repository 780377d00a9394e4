//! The audit log: every write and administrative act, append-only and hash-chained.
//!
//! Each entry's hash is SHA-256 over the previous entry's hash and the entry's own fields, so that
//! changing, removing or reordering any entry breaks every link after it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hash that the first entry chains to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log, from 1.
    pub seq: i64,
    /// When, in TAXII timestamp form.
    pub at: String,
    /// Who: a user name, `cli` for the local command line, or `node` for the node itself.
    pub actor: String,
    /// What: a short verb such as `objects.add`, `user.add`, `token.revoke`.
    pub action: String,
    /// On what: a collection id, a user name, …
    pub target: String,
    /// From where: the client address, or `local`.
    pub origin: String,
    /// Details (JSON text), e.g. counts.
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The fields of a new entry; the store assigns `seq`, `at` and the hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub origin: String,
    pub detail: String,
}

/// The hash of an entry given the previous entry's hash.
pub fn entry_hash(prev_hash: &str, seq: i64, at: &str, e: &NewAuditEntry) -> String {
    let mut h = Sha256::new();
    for part in [
        prev_hash,
        &seq.to_string(),
        at,
        &e.actor,
        &e.action,
        &e.target,
        &e.origin,
        &e.detail,
    ] {
        // Length-prefix each field so that no two different entries hash the same.
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Where a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit log broken at entry {seq}: {reason}")]
pub struct BrokenLink {
    pub seq: i64,
    pub reason: String,
}

/// Checks a log entry by entry, so that a long log can be read in batches.
#[derive(Debug, Clone)]
pub struct Verifier {
    prev: String,
    expected_seq: i64,
    checked: u64,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Verifier {
    pub fn new() -> Self {
        Verifier {
            prev: GENESIS.to_string(),
            expected_seq: 1,
            checked: 0,
        }
    }

    /// How many entries have been checked and found intact.
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// Check the next entry of the log.
    pub fn push(&mut self, e: &AuditEntry) -> Result<(), BrokenLink> {
        let broken = |reason: String| BrokenLink { seq: e.seq, reason };
        if e.seq != self.expected_seq {
            return Err(broken(format!(
                "expected entry {}, found entry {} (an entry is missing or out of order)",
                self.expected_seq, e.seq
            )));
        }
        if e.prev_hash != self.prev {
            return Err(broken("does not chain to the entry before it".into()));
        }
        let fields = NewAuditEntry {
            actor: e.actor.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            origin: e.origin.clone(),
            detail: e.detail.clone(),
        };
        if entry_hash(&e.prev_hash, e.seq, &e.at, &fields) != e.hash {
            return Err(broken(
                "its contents do not match its hash (the entry was changed)".into(),
            ));
        }
        self.prev = e.hash.clone();
        self.expected_seq += 1;
        self.checked += 1;
        Ok(())
    }
}

/// Check a whole log, in order. Returns the number of entries checked, or the first broken link.
pub fn verify<'a>(entries: impl IntoIterator<Item = &'a AuditEntry>) -> Result<u64, BrokenLink> {
    let mut v = Verifier::new();
    for e in entries {
        v.push(e)?;
    }
    Ok(v.checked())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let e = NewAuditEntry {
                    actor: "admin".into(),
                    action: "user.add".into(),
                    target: format!("user{seq}"),
                    origin: "local".into(),
                    detail: "{}".into(),
                };
                let at = format!("2026-01-01T00:00:{seq:02}.000000Z");
                let hash = entry_hash(&prev, seq, &at, &e);
                let entry = AuditEntry {
                    seq,
                    at,
                    actor: e.actor,
                    action: e.action,
                    target: e.target,
                    origin: e.origin,
                    detail: e.detail,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                entry
            })
            .collect()
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify(&chain(5)), Ok(5));
        assert_eq!(verify(&chain(0)), Ok(0));
    }

    #[test]
    fn names_first_broken_link() {
        let mut c = chain(5);
        c[2].target = "mallory".into();
        assert_eq!(verify(&c).unwrap_err().seq, 3);

        let mut c = chain(5);
        c.remove(1);
        assert_eq!(verify(&c).unwrap_err().seq, 3);

        let mut c = chain(5);
        c[3].hash = GENESIS.into();
        assert_eq!(verify(&c).unwrap_err().seq, 4);
    }
}
