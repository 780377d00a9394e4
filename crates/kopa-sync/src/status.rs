//! A peer's sync status as the loop keeps it: written as JSON into the peer's `status` in the store
//! after every page and round (so `kopa peer list`, `GET /api/peers` and `/metrics` read it from
//! there, and counters survive restarts). `last_sync_at`, `last_error`, `last_error_at` and
//! `error_count` are the store's own columns (`record_peer_sync`), not repeated here.

use std::collections::BTreeMap;

use kopa_federation::Checkpoint;
use serde::{Deserialize, Serialize};

/// The JSON kept in `peers.status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PeerStatus {
    /// Objects the peer still holds for this node after the last page read (sum over its
    /// collections; 0 when the last round read everything).
    pub lag_objects: u64,
    /// Seconds since this node last held everything the peer offered (0 when caught up).
    pub lag_seconds: u64,
    /// When a round last ended with nothing left to read (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caught_up_at: Option<String>,
    /// Objects received from the peer and stored as new versions.
    pub received: u64,
    /// Objects received that were already held (no-ops).
    pub duplicates: u64,
    /// Objects that came back to this node, their origin (skipped).
    pub own: u64,
    /// Objects refused, by reason (`tampered`, `unknown_node`, `unsigned`, …).
    pub rejected: BTreeMap<String, u64>,
    /// Objects pushed to the peer (push peers) and accepted there.
    pub pushed: u64,
    /// Sightings sent home to the peer.
    pub sightings_sent: u64,
    /// Objects the peer refused when this node posted them, by message.
    pub refused_by_peer: u64,
    /// Remote collections this node could not store anywhere (no local collection with the same
    /// id or alias), as `"no local collection for remote <id>"`.
    pub skipped: Vec<String>,
    /// Failures of the last round, if any (pull, push and sightings are recorded separately).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_pull_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_push_error: Option<String>,
    /// Duration of the last pull round, milliseconds.
    pub last_round_ms: u64,
    /// The latest signed checkpoint of the peer's audit log this node obtained: kept as a witness,
    /// so that the peer's log cut short or rewritten later is seen here and can be shown to it
    /// (`kopa audit verify --checkpoint`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_checkpoint: Option<Checkpoint>,
    /// Why a checkpoint the peer gave did not follow the one kept (its log went back or was
    /// rewritten). Stays until the peer is declared again: it is evidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_alarm: Option<String>,
}

impl PeerStatus {
    /// Read a stored status; anything unreadable starts afresh (the status is derived data).
    pub fn from_stored(json: Option<&serde_json::Value>) -> PeerStatus {
        json.and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    pub fn reject(&mut self, reason: &str, n: u64) {
        *self.rejected.entry(reason.to_string()).or_default() += n;
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// Take `c`, a checkpoint of the peer's audit log whose signature was verified, as the witness
    /// kept, if it follows the one kept ([`Checkpoint::follows`]). Otherwise keep the old one,
    /// raise the alarm and return why.
    pub fn witness(&mut self, c: Checkpoint) -> Result<(), String> {
        if let Some(kept) = &self.audit_checkpoint {
            if let Err(why) = c.follows(kept) {
                self.audit_alarm = Some(why.clone());
                return Err(why);
            }
        }
        self.audit_checkpoint = Some(c);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_and_tolerates_old_or_bad_json() {
        let mut s = PeerStatus {
            received: 3,
            ..Default::default()
        };
        s.reject("tampered", 2);
        s.reject("tampered", 1);
        s.reject("unsigned", 1);
        assert_eq!(s.rejected_total(), 4);
        let back = PeerStatus::from_stored(Some(&s.to_json()));
        assert_eq!(back, s);
        assert_eq!(
            PeerStatus::from_stored(Some(&serde_json::json!({"received": 7, "future": 1})))
                .received,
            7
        );
        assert_eq!(
            PeerStatus::from_stored(Some(&serde_json::json!("garbage"))),
            PeerStatus::default()
        );
        assert_eq!(PeerStatus::from_stored(None), PeerStatus::default());
    }

    #[test]
    fn the_witness_keeps_the_longest_log_and_raises_the_alarm_when_it_shrinks() {
        let key = kopa_federation::NodeKey::from_seed([3; 32]);
        let at = |m: u32| format!("2026-12-08T00:{m:02}:00.000Z");
        let mut s = PeerStatus::default();
        s.witness(Checkpoint::sign(&key, 5, "h5", &at(0))).unwrap();
        s.witness(Checkpoint::sign(&key, 9, "h9", &at(15))).unwrap();
        assert_eq!(s.audit_checkpoint.as_ref().map(|c| c.seq), Some(9));
        assert!(s.audit_alarm.is_none());
        let why = s
            .witness(Checkpoint::sign(&key, 7, "h7", &at(30)))
            .unwrap_err();
        assert!(why.contains("entries were removed"), "{why}");
        assert_eq!(
            s.audit_checkpoint.as_ref().map(|c| c.seq),
            Some(9),
            "the evidence is kept"
        );
        assert_eq!(s.audit_alarm.as_deref(), Some(why.as_str()));
        let back = PeerStatus::from_stored(Some(&s.to_json()));
        assert_eq!(back, s, "the witness and the alarm survive a restart");
    }
}
