//! Signed checkpoints of the audit log: the node's own statement, under its Ed25519 key, that entry
//! `seq` of its audit log had hash `hash` at time `at`.
//!
//! The audit log's hash chain shows any change in the middle of the log, but not a log cut short,
//! nor one rewritten whole with every hash recomputed. A checkpoint anchors the chain: whoever
//! rewrites or truncates the log past a checkpoint must also forge the node's signature to hide it.
//! The node writes one at every clean stop and periodically while it runs (see `kopa serve`), one JSON
//! object per line in the data directory, beside its key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};

use crate::{NodeKey, PublicKey};

/// File name of the checkpoints, in the node's data directory.
pub const CHECKPOINT_FILE_NAME: &str = "audit-checkpoints.jsonl";

/// One signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The node id of the signer.
    pub node: String,
    /// The audit entry covered (its position in the log).
    pub seq: i64,
    /// That entry's hash.
    pub hash: String,
    /// When the checkpoint was made (TAXII timestamp form).
    pub at: String,
    /// Ed25519 signature over [`Checkpoint::message`], base64url without padding.
    pub signature: String,
}

impl Checkpoint {
    /// The bytes signed: a fixed label and each field on its own line.
    fn message(node: &str, seq: i64, hash: &str, at: &str) -> Vec<u8> {
        format!("kopa audit checkpoint v1\n{node}\n{seq}\n{hash}\n{at}").into_bytes()
    }

    /// Sign a checkpoint of entry `seq` with hash `hash`.
    pub fn sign(key: &NodeKey, seq: i64, hash: &str, at: &str) -> Checkpoint {
        let node = key.node_id().to_string();
        let sig = key.sign_bytes(&Self::message(&node, seq, hash, at));
        Checkpoint {
            node,
            seq,
            hash: hash.to_string(),
            at: at.to_string(),
            signature: URL_SAFE_NO_PAD.encode(sig.to_bytes()),
        }
    }

    /// Whether the checkpoint was signed by `key` (and names its node).
    pub fn verifies(&self, key: &PublicKey) -> bool {
        if self.node != key.node_id().as_str() {
            return false;
        }
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(&self.signature) else {
            return false;
        };
        let Ok(bytes) = <[u8; 64]>::try_from(bytes.as_slice()) else {
            return false;
        };
        key.verify_strict(
            &Self::message(&self.node, self.seq, &self.hash, &self.at),
            &Signature::from_bytes(&bytes),
        )
    }
}

impl Checkpoint {
    /// Whether this checkpoint can follow `earlier`, an earlier one of the same node's log (as a
    /// peer keeps them): the log only grows, so a checkpoint of an earlier entry means entries were
    /// removed, and another hash for the same entry means the log was rewritten. (Two checkpoints
    /// of different entries cannot be compared further without the entries between them.)
    pub fn follows(&self, earlier: &Checkpoint) -> Result<(), String> {
        if self.node != earlier.node {
            return Err(format!(
                "a checkpoint of node {} cannot follow one of node {}",
                self.node, earlier.node
            ));
        }
        if self.seq < earlier.seq {
            return Err(format!(
                "the audit log of node {} went back from entry {} (checkpointed at {}) to entry {} \
                 (at {}): entries were removed",
                self.node, earlier.seq, earlier.at, self.seq, self.at
            ));
        }
        if self.seq == earlier.seq && self.hash != earlier.hash {
            return Err(format!(
                "entry {} of the audit log of node {} changed between the checkpoints made at {} \
                 and {}: the log was rewritten",
                self.seq, self.node, earlier.at, self.at
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_verifies_only_unchanged_and_with_its_key() {
        let key = NodeKey::from_seed([7; 32]);
        let c = Checkpoint::sign(&key, 42, "ab12", "2026-12-07T00:00:00.000Z");
        assert!(c.verifies(&key.public_key()));
        let other = NodeKey::from_seed([8; 32]).public_key();
        assert!(!c.verifies(&other), "another node's key");
        for changed in [
            Checkpoint {
                seq: 43,
                ..c.clone()
            },
            Checkpoint {
                hash: "ab13".into(),
                ..c.clone()
            },
            Checkpoint {
                at: "2026-12-07T00:00:01.000Z".into(),
                ..c.clone()
            },
            Checkpoint {
                signature: "x".into(),
                ..c.clone()
            },
        ] {
            assert!(!changed.verifies(&key.public_key()), "{changed:?}");
        }
        let line = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Checkpoint>(&line).unwrap(), c);
    }

    #[test]
    fn a_later_checkpoint_follows_only_a_log_that_grew() {
        let key = NodeKey::from_seed([7; 32]);
        let first = Checkpoint::sign(&key, 10, "aa", "2026-12-07T00:00:00.000Z");
        let same = Checkpoint::sign(&key, 10, "aa", "2026-12-07T00:15:00.000Z");
        let grown = Checkpoint::sign(&key, 12, "bb", "2026-12-07T00:30:00.000Z");
        assert_eq!(same.follows(&first), Ok(()));
        assert_eq!(grown.follows(&first), Ok(()));
        let cut = Checkpoint::sign(&key, 9, "cc", "2026-12-07T00:45:00.000Z");
        assert!(cut
            .follows(&grown)
            .unwrap_err()
            .contains("entries were removed"));
        let rewritten = Checkpoint::sign(&key, 12, "dd", "2026-12-07T01:00:00.000Z");
        assert!(rewritten
            .follows(&grown)
            .unwrap_err()
            .contains("the log was rewritten"));
        let other = Checkpoint::sign(&NodeKey::from_seed([8; 32]), 20, "ee", "2026-12-07T01:00Z");
        assert!(other.follows(&first).is_err(), "another node's checkpoint");
    }
}
