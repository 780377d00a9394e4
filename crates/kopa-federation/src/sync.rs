//! What a pull does with one page of objects received from a peer, before anything is stored:
//! verify each object's provenance and sort it into accepted, already ours (loop prevention: nothing
//! comes back to its origin), and rejected with its reason. Pure: the sync loop (HTTP, cursors,
//! storing) calls [`triage`] per page and stores only [`Triage::accepted`].

use serde_json::Value;

use crate::identity::NodeId;
use crate::provenance::{verify, KnownKeys, Provenance, VerifyError};

/// One received page, sorted.
#[derive(Debug, Default)]
pub struct Triage {
    /// Verified objects of other origins, with their provenance, in the order received.
    pub accepted: Vec<(Value, Provenance)>,
    /// Objects originated by this node that came back (skipped, not an error).
    pub own: usize,
    /// Objects that must not be stored, with the reason; counted and logged by the caller.
    pub rejected: Vec<VerifyError>,
}

/// Counters of rejected objects by reason, for metrics and `peer list`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RejectCounts {
    pub unsigned: u64,
    pub malformed: u64,
    pub unknown_node: u64,
    pub bad_signature: u64,
    pub tampered: u64,
}

impl RejectCounts {
    pub fn add(&mut self, e: &VerifyError) {
        match e {
            VerifyError::Unsigned { .. } => self.unsigned += 1,
            VerifyError::NotAnObject
            | VerifyError::Malformed { .. }
            | VerifyError::InexactNumber { .. } => self.malformed += 1,
            VerifyError::UnknownNode { .. } => self.unknown_node += 1,
            VerifyError::BadSignature { .. } => self.bad_signature += 1,
            VerifyError::Tampered { .. } => self.tampered += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.unsigned + self.malformed + self.unknown_node + self.bad_signature + self.tampered
    }
}

/// Verify every object of a page received from a peer. `this_node` is the receiving node: objects it
/// originated are counted in [`Triage::own`] and skipped.
pub fn triage(objects: Vec<Value>, known: &KnownKeys, this_node: &NodeId) -> Triage {
    let mut t = Triage::default();
    for object in objects {
        match verify(&object, known) {
            Ok(p) if &p.origin_node == this_node => t.own += 1,
            Ok(p) => t.accepted.push((object, p)),
            Err(e) => t.rejected.push(e),
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::NodeKey;
    use crate::provenance::{sign, PROVENANCE_EXTENSION_ID};
    use serde_json::json;

    fn indicator(n: u32) -> Value {
        json!({
            "type": "indicator", "spec_version": "2.1",
            "id": format!("indicator--8e2e2d2b-17d4-4cbf-938f-{n:012}"),
            "created": "2016-04-06T20:03:48.000Z", "modified": "2016-04-06T20:03:48.000Z",
            "pattern": format!("[ipv4-addr:value = '203.0.113.{n}']"), "pattern_type": "stix",
            "valid_from": "2016-01-01T00:00:00Z",
        })
    }

    #[test]
    fn a_page_is_sorted_into_accepted_own_and_rejected() {
        let (a, b, c, stranger) = (
            NodeKey::from_seed([1; 32]),
            NodeKey::from_seed([2; 32]),
            NodeKey::from_seed([3; 32]),
            NodeKey::from_seed([4; 32]),
        );
        // Node C receives from B a page holding objects of A, B, C and a stranger.
        let known: KnownKeys = [a.public_key(), b.public_key(), c.public_key()]
            .into_iter()
            .collect();
        let from_a = sign(&indicator(1), &a, "org-a").unwrap();
        let from_b = sign(&indicator(2), &b, "org-b").unwrap();
        let back_home = sign(&indicator(3), &c, "org-c").unwrap();
        let by_stranger = sign(&indicator(4), &stranger, "org-x").unwrap();
        let mut tampered = sign(&indicator(5), &a, "org-a").unwrap();
        tampered["pattern"] = json!("[ipv4-addr:value = '198.51.100.1']");
        let mut relabelled = sign(&indicator(6), &b, "org-b").unwrap();
        relabelled["extensions"][PROVENANCE_EXTENSION_ID]["origin_org"] = json!("org-a");

        let page = vec![
            from_a.clone(),
            indicator(7),
            from_b.clone(),
            back_home,
            by_stranger,
            tampered,
            relabelled,
        ];
        let t = triage(page, &known, &c.node_id());
        let accepted: Vec<(&Value, &str)> = t
            .accepted
            .iter()
            .map(|(v, p)| (v, p.origin_org.as_str()))
            .collect();
        assert_eq!(accepted, [(&from_a, "org-a"), (&from_b, "org-b")]);
        assert_eq!(t.own, 1);
        let mut counts = RejectCounts::default();
        t.rejected.iter().for_each(|e| counts.add(e));
        assert_eq!(
            counts,
            RejectCounts {
                unsigned: 1,
                malformed: 0,
                unknown_node: 1,
                bad_signature: 0,
                tampered: 2
            }
        );
        assert_eq!(counts.total(), 4);
    }
}
